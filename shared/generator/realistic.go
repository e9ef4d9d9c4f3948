package generator

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/fintrans/fintrans/shared/money"
)

// The realistic profile (GENERATOR_PROFILE=realistic, the default): every
// account pays a few regular payees, so pairs repeat, and amounts look like
// everyday money: most are small, a few are bills, rare ones are large, and
// none reaches the threshold alone. Structuring episodes are spread over a
// few minutes, as a launderer splitting a sum would.
const (
	// MinPayees and MaxPayees bound each account's regular payees.
	MinPayees = 2
	MaxPayees = 6
	// RealisticEpisodeSpan bounds the spread of a realistic episode's event
	// times ("within minutes"); every episode still fits one window.
	RealisticEpisodeSpan = 4 * time.Minute
)

// spending is one component of the everyday amount mixture: a share of the
// transfers with log-normally distributed amounts around a median.
type spending struct {
	share  float64 // cumulative probability up to and including this one
	median float64 // dollars
	sigma  float64
}

// everyday: groceries and coffee, bills, and rare large payments.
var everyday = []spending{
	{share: 0.90, median: 30, sigma: 0.9},
	{share: 0.99, median: 350, sigma: 0.6},
	{share: 1.00, median: 1500, sigma: 0.5},
}

// payeeBook holds each account's regular payees: account i pays
// payees[i][k] (never itself).
type payeeBook struct {
	payees [][]int32
}

// newPayeeBook draws MinPayees..MaxPayees distinct payees for each of n
// accounts (fewer when n is small).
func newPayeeBook(n int, rng *rand.Rand) *payeeBook {
	b := &payeeBook{payees: make([][]int32, n)}
	for i := range n {
		k := min(MinPayees+rng.IntN(MaxPayees-MinPayees+1), n-1)
		seen := make(map[int]bool, k)
		for len(b.payees[i]) < k {
			p := rng.IntN(n - 1)
			if p >= i {
				p++
			}
			if !seen[p] {
				seen[p] = true
				b.payees[i] = append(b.payees[i], int32(p))
			}
		}
	}
	return b
}

// pick is an everyday pair: a random account paying one of its payees.
func (b *payeeBook) pick(rng *rand.Rand) (string, string) {
	from := rng.IntN(len(b.payees))
	ps := b.payees[from]
	return strconv.Itoa(from), strconv.Itoa(int(ps[rng.IntN(len(ps))]))
}

// realisticAmount draws an everyday amount from the mixture, kept in
// [GENERATOR_MIN_AMOUNT, GENERATOR_MAX_AMOUNT) and under the threshold.
func realisticAmount(cfg Config, rng *rand.Rand) money.Cents {
	lo, hi := cfg.MinAmount, cfg.MaxAmount
	if cfg.Threshold < hi {
		hi = cfg.Threshold
	}
	if hi <= lo {
		return lo
	}
	u := rng.Float64()
	c := everyday[len(everyday)-1]
	for _, s := range everyday {
		if u < s.share {
			c = s
			break
		}
	}
	dollars := c.median * math.Exp(c.sigma*rng.NormFloat64())
	cents := money.Cents(math.Round(dollars * 100))
	return min(max(cents, lo), hi-1)
}

// realistic reports whether cfg asks for the realistic profile.
func realistic(cfg Config) bool { return cfg.Profile != ProfileSeed }
