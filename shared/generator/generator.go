// Package generator is the generator function: on every cron tick it makes a
// batch of random transfers between a fixed set of accounts (like the seed's
// generator), with a share of them arranged as structuring episodes (a few
// transfers, each under the threshold, that together go over it inside one
// window), and sends the batch to Kafka or to an HTTP sink in one call.
package generator

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/fintrans/fintrans/shared/codec/cloudevent"
	"github.com/fintrans/fintrans/shared/metrics"
	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/sink"
	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/window"
)

// Limits of the generated data.
const (
	// MaxJitter is how far before "now" a transfer's event time may lie.
	MaxJitter = 30 * time.Second
	// EpisodeSpan bounds the spread of one episode's event times, so that
	// all of them share at least one sliding window.
	EpisodeSpan = 60 * time.Second
	// MinEpisode and MaxEpisode bound the number of transfers of an episode.
	MinEpisode = 3
	MaxEpisode = 6
)

// Episode is one injected structuring episode: MinEpisode..MaxEpisode
// transfers of one pair, each under the threshold, whose sum is over it, all
// inside one window of the configured size and slide. Detect must alert it.
type Episode struct {
	From    string        `json:"from"`
	To      string        `json:"to"`
	IDs     []string      `json:"ids"`
	Times   []time.Time   `json:"times"`
	Amounts []money.Cents `json:"amounts"`
	Total   money.Cents   `json:"total"`
	First   time.Time     `json:"first"` // earliest event time
	Last    time.Time     `json:"last"`  // latest event time
	// WindowStart is the start of a window that holds every transfer of the
	// episode (with the configured size and slide).
	WindowStart time.Time `json:"windowStart"`
}

// Produced is what one Tick made and sent.
type Produced struct {
	Transfers []transfer.Transfer // every transfer of the batch, episodes included
	Episodes  []Episode
	Sent      int // transfers accepted by the sink: len(Transfers), or 0 on error
}

// Generator makes batches of transfers. Tick is safe for concurrent use.
type Generator struct {
	cfg   Config
	out   sink.Sink
	now   func() time.Time
	runID string
	seq   atomic.Uint64

	mu    sync.Mutex // guards rng and carry
	rng   *rand.Rand
	carry float64    // fraud transfers owed by earlier ticks (keeps the long-run share exact)
	book  *payeeBook // each account's regular payees (realistic profile; nil for seed)

	// Observe, when set (before the first Tick), is called with every batch
	// the sink accepted: the local run scores its episodes against the
	// alerts, whether the tick came from its cron or over HTTP.
	Observe func(Produced)
}

// Config is what the generator takes from the configuration
// (GENERATOR_* and the detection settings its episodes must cross).
type Config struct {
	Profile              string        // ProfileRealistic or ProfileSeed
	Accounts, Transfers  int           // accounts, transfers a tick
	MinAmount, MaxAmount money.Cents   // everyday amounts
	FraudRate            float64       // share of a tick's transfers in episodes
	Threshold            money.Cents   // an episode's total goes over it
	WindowSize           time.Duration // and fits one window
	WindowSlide          time.Duration
}

// The traffic profiles.
const (
	// ProfileRealistic: accounts paying a few regular payees everyday
	// amounts, with structuring episodes.
	ProfileRealistic = "realistic"
	// ProfileSeed: the seed's generator (uniform pairs and amounts).
	ProfileSeed = "seed"
)

// New makes a generator writing to out. rng drives every random choice (nil:
// a randomly seeded one; it is only used under the generator's lock); now
// gives the current time (nil: time.Now). Event ids are "<run id>-<seq>" with
// a random (crypto) run id per Generator, so they are unique across restarts.
func New(cfg Config, out sink.Sink, rng *rand.Rand, now func() time.Time) *Generator {
	if rng == nil {
		rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if now == nil {
		now = time.Now
	}
	g := &Generator{cfg: cfg, out: out, rng: rng, now: now, runID: uuid.NewString()}
	if realistic(cfg) {
		g.book = newPayeeBook(max(cfg.Accounts, 2), rng)
	}
	return g
}

// Tick makes one batch of cfg.Transfers transfers and sends it with
// one out.Send call. On a sink error the batch is returned too (Sent = 0).
func (g *Generator) Tick(ctx context.Context) (Produced, error) {
	p := g.make()
	events := make([]ce.Event, len(p.Transfers))
	for i, t := range p.Transfers {
		events[i] = cloudevent.Transfer(t)
	}
	if err := g.out.Send(ctx, events); err != nil {
		metrics.Errors.WithLabelValues("sink").Inc()
		return p, err
	}
	p.Sent = len(events)
	metrics.Generated.Add(float64(p.Sent))
	if g.Observe != nil {
		g.Observe(p)
	}
	return p, nil
}

// make builds the batch (under the lock: rng is not safe for concurrent use).
func (g *Generator) make() Produced {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.cfg.Transfers
	now := g.now().UTC()
	var p Produced
	p.Transfers = make([]transfer.Transfer, 0, n)

	// Episodes first: their share accumulates across ticks, so that a rate
	// of 0.05 with 10 transfers a tick still yields one episode in ~6 ticks.
	if g.episodesPossible() {
		g.carry += g.cfg.FraudRate * float64(n)
		if limit := float64(max(n, 2*MaxEpisode)); g.carry > limit {
			g.carry = limit
		}
		for {
			room := n - len(p.Transfers)
			owed := int(g.carry)
			size := MinEpisode + g.rng.IntN(MaxEpisode-MinEpisode+1)
			size = min(size, owed, room)
			if size < MinEpisode {
				break
			}
			ep := g.episode(size, now)
			p.Episodes = append(p.Episodes, ep)
			for i := range ep.IDs {
				p.Transfers = append(p.Transfers, transfer.Transfer{
					Source: cloudevent.GeneratorSource, ID: ep.IDs[i], Time: ep.Times[i],
					From: ep.From, To: ep.To, Amount: ep.Amounts[i],
				})
			}
			g.carry -= float64(size)
		}
	}
	for len(p.Transfers) < n {
		from, to := g.everydayPair()
		p.Transfers = append(p.Transfers, transfer.Transfer{
			Source: cloudevent.GeneratorSource, ID: g.nextID(),
			Time: now.Add(-g.jitter(MaxJitter)).Truncate(time.Second),
			From: from, To: to, Amount: g.amount(),
		})
	}
	// Mix the episodes into the batch.
	g.rng.Shuffle(len(p.Transfers), func(i, j int) { p.Transfers[i], p.Transfers[j] = p.Transfers[j], p.Transfers[i] })
	return p
}

// episodesPossible: an episode needs at least MinEpisode transfers a tick
// and a threshold of at least 0.02 (each transfer must be under it).
func (g *Generator) episodesPossible() bool {
	return g.cfg.FraudRate > 0 && g.cfg.Transfers >= MinEpisode && g.cfg.Threshold >= 2
}

// episode makes size transfers of one pair: each amount is in
// [ceil((T+1)/size), min(T-1, 2*that)], so each is under the threshold T and
// their sum is at least T+1; the times lie within EpisodeSpan of each other
// and inside one window [ws, ws+size) of the configured geometry.
func (g *Generator) episode(size int, now time.Time) Episode {
	from, to := g.pair()
	ep := Episode{From: from, To: to}
	threshold := int64(g.cfg.Threshold)
	lo := (threshold + 1 + int64(size) - 1) / int64(size)
	hi := min(threshold-1, 2*lo)

	// The anchor is the episode's latest time; the earliest window that
	// holds it leaves the most room before it.
	anchor := now.Add(-g.jitter(MaxJitter)).Truncate(time.Second)
	ws := window.FirstStart(anchor, g.cfg.WindowSize, g.cfg.WindowSlide)
	span := EpisodeSpan
	if g.book != nil {
		span = RealisticEpisodeSpan
	}
	earliest := anchor.Add(-span + time.Second)
	if earliest.Before(ws) {
		earliest = ws
	}
	if r := earliest.Truncate(time.Second); r.Before(earliest) {
		earliest = r.Add(time.Second)
	}
	spread := anchor.Sub(earliest) // >= 0: anchor is whole seconds and >= ws
	ep.WindowStart = ws
	for i := range size {
		amt := money.Cents(lo + g.rng.Int64N(hi-lo+1))
		t := anchor
		if i > 0 && spread > 0 {
			t = anchor.Add(-time.Duration(g.rng.Int64N(int64(spread/time.Second)+1)) * time.Second)
		}
		ep.IDs = append(ep.IDs, g.nextID())
		ep.Times = append(ep.Times, t)
		ep.Amounts = append(ep.Amounts, amt)
		ep.Total += amt
		if ep.First.IsZero() || t.Before(ep.First) {
			ep.First = t
		}
		if t.After(ep.Last) {
			ep.Last = t
		}
	}
	return ep
}

// pair picks two different accounts among "0".."N-1".
func (g *Generator) pair() (string, string) {
	n := g.cfg.Accounts
	if n < 2 {
		n = 2
	}
	from := g.rng.IntN(n)
	to := g.rng.IntN(n - 1)
	if to >= from {
		to++
	}
	return strconv.Itoa(from), strconv.Itoa(to)
}

// everydayPair is the pair of a transfer outside episodes: an account and
// one of its regular payees (realistic), or any two accounts (seed).
func (g *Generator) everydayPair() (string, string) {
	if g.book != nil {
		return g.book.pick(g.rng)
	}
	return g.pair()
}

// amount is an everyday amount: skewed (realistic), or uniform in
// [GeneratorMinAmount, GeneratorMaxAmount) (seed; the minimum when both are
// equal).
func (g *Generator) amount() money.Cents {
	if g.book != nil {
		return realisticAmount(g.cfg, g.rng)
	}
	lo, hi := g.cfg.MinAmount, g.cfg.MaxAmount
	if hi <= lo {
		return lo
	}
	return lo + money.Cents(g.rng.Int64N(int64(hi-lo)))
}

func (g *Generator) jitter(d time.Duration) time.Duration {
	return time.Duration(g.rng.Int64N(int64(d) + 1))
}

func (g *Generator) nextID() string {
	return g.runID + "-" + strconv.FormatUint(g.seq.Add(1), 10)
}

// String names the generator's run for logs.
func (g *Generator) String() string {
	return fmt.Sprintf("generator run %s (%s profile, %d transfers a tick between %d accounts)", g.runID, g.cfg.Profile, g.cfg.Transfers, g.cfg.Accounts)
}
