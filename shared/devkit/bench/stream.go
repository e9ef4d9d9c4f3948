package bench

import (
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/fintrans/fintrans/shared/codec/cloudevent"
	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/transfer"
)

// Synthetic transfers for the Redis and detect stages.
//
// The stream spreads transfers over many pairs at random, with event time
// advancing so that each pair sees one transfer every PairInterval of event
// time on average (arrivals up to Jitter out of order, well inside the
// allowed lateness), and amounts uniform in [1, 900] dollars: a full 10-minute
// window of a pair holds about 20 transfers and $9000, so a share of windows
// goes over $10000 and fires, as a realistic mix of quiet and alerting pairs.
// streamSkew is the MAX_CLOCK_SKEW of the detectors the synthetic stream
// feeds: its event time starts an hour back and runs ahead of the wall clock
// as fast as the stages apply it (30 s of event time per pair count of
// transfers), so it is allowed to be dated any time ahead.
const streamSkew = 100 * 365 * 24 * time.Hour

const (
	pairInterval = 30 * time.Second
	jitter       = 10 * time.Second
	minCents     = 1_00
	maxCents     = 900_00
)

// stream hands out transfers; it is safe for concurrent use (each caller
// passes its own rng).
type stream struct {
	runID  string
	base   int64   // event time of transfer 0, ms
	stepUs float64 // event time between consecutive transfers, µs
	from   []string
	to     []string
	seq    atomic.Int64
}

func newStream(pairs int, base time.Time) *stream {
	s := &stream{
		runID:  uuid.NewString(),
		base:   base.UnixMilli(),
		stepUs: float64(pairInterval.Microseconds()) / float64(pairs),
		from:   make([]string, pairs),
		to:     make([]string, pairs),
	}
	for p := range pairs {
		s.from[p], s.to[p] = pairAccounts(p)
	}
	return s
}

// pairAccounts names pair p's accounts like the generator's numeric ids.
func pairAccounts(p int) (string, string) {
	return strconv.Itoa(100000 + p), strconv.Itoa(200000 + p)
}

// next fills buf with the next len(buf) transfers.
func (s *stream) next(rng *rand.Rand, buf []transfer.Transfer) {
	n := int64(len(buf))
	first := s.seq.Add(n) - n
	for i := range buf {
		q := first + int64(i)
		p := rng.IntN(len(s.from))
		ms := s.base + int64(float64(q)*s.stepUs/1000) - rng.Int64N(jitter.Milliseconds())
		buf[i] = transfer.Transfer{
			Source: cloudevent.GeneratorSource,
			ID:     s.runID + "-" + strconv.FormatInt(q, 10),
			Time:   time.UnixMilli(ms).UTC(),
			From:   s.from[p], To: s.to[p],
			Amount: money.Cents(minCents + rng.Int64N(maxCents-minCents+1)),
		}
	}
}
