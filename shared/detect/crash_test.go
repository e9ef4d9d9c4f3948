package detect_test

// Crash and redelivery: SPEC §3 "A redelivered transfer that had fired an
// alert fires it again (same id), so an alert is never lost between Redis and
// the sink" and §4 "nothing is acknowledged before its effect is durable in
// Redis and its alert accepted by the sink".
//
// A seeded stream of ~3000 transfers over 120 pairs, spanning less than the
// allowed lateness and shuffled, is cut into batches. Each batch goes through
// Detector.Process; a fault injector picks, per attempt, whether the sink
// accepts, refuses after accepting a random prefix of the alerts, hangs until
// the context is cancelled (detect killed after the script ran), or whether
// the whole call is killed at a random moment (possibly between the scripts
// of one Redis pipeline). A failed batch is "redelivered": put back in the
// queue at a random place (sometimes split in two, as a consumer restarting
// from its committed offset may batch differently), re-run later interleaved
// with other batches, until every batch succeeded.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/fintrans/fintrans/shared/codec/cloudevent"
	"github.com/fintrans/fintrans/shared/detect"
	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/redistest"
	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/viewer"
	"github.com/fintrans/fintrans/shared/window"
	"github.com/fintrans/fintrans/shared/window/flinkref"
	"github.com/fintrans/fintrans/shared/window/windowtest"
)

// fault is what the injector does to one Process attempt.
type fault int

const (
	faultNone       fault = iota
	faultSinkRefuse       // the sink accepts a random prefix of the alerts, then fails
	faultSinkHang         // the sink hangs; the caller is killed (ctx cancelled)
	faultKill             // the call is killed at a random moment (ctx deadline of 0..3 ms)
)

type faultKey struct{}

// crashSink records every alert it accepted, in order, and fails as the
// attempt's fault (carried by the context) says.
type crashSink struct {
	mu       sync.Mutex
	rng      *rand.Rand
	accepted []ce.Event     // in acceptance order, repeats included
	offered  map[string]int // ids offered in attempts that failed
	calls    map[fault]int  // Send calls per fault
}

func (s *crashSink) Send(ctx context.Context, es []ce.Event) error {
	f, _ := ctx.Value(faultKey{}).(fault)
	s.mu.Lock()
	s.calls[f]++
	switch f {
	case faultSinkRefuse:
		n := s.rng.IntN(len(es) + 1)
		s.accepted = append(s.accepted, es[:n]...)
		for _, e := range es[n:] {
			s.offered[e.ID()]++
		}
		s.mu.Unlock()
		return errors.New("sink: injected failure")
	case faultSinkHang:
		for _, e := range es {
			s.offered[e.ID()]++
		}
		cancel, _ := ctx.Value(cancelKey{}).(context.CancelFunc)
		s.mu.Unlock()
		// detect is killed while the sink hangs: nothing was accepted.
		cancel()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Second):
			return errors.New("hang was not cancelled")
		}
	}
	if err := ctx.Err(); err != nil { // killed before the sink answered
		for _, e := range es {
			s.offered[e.ID()]++
		}
		s.mu.Unlock()
		return err
	}
	s.accepted = append(s.accepted, es...)
	s.mu.Unlock()
	return nil
}

func (s *crashSink) Close() error { return nil }

type cancelKey struct{}

var crashCfg = window.Config{
	Threshold:       money.Cents(10000_00),
	Size:            10 * time.Minute,
	Slide:           2 * time.Minute,
	Lateness:        time.Hour,
	MaxTransactions: 10,
	TTL:             24 * time.Hour,
}

// crashStream makes n transfers over pairs pairs spanning 50 minutes (less
// than the allowed lateness), one in ten on a window boundary, with about 5%
// delivered twice upstream (same source and id), shuffled.
func crashStream(rng *rand.Rand, n, pairs int) []transfer.Transfer {
	base := time.Date(2017, 7, 23, 1, 0, 0, 0, time.UTC)
	span := 50 * time.Minute
	ts := make([]transfer.Transfer, 0, n+n/20)
	for i := 0; i < n; i++ {
		p := rng.IntN(pairs)
		at := base.Add(time.Duration(rng.Int64N(int64(span)))).Truncate(time.Millisecond)
		if rng.IntN(10) == 0 {
			at = at.Truncate(2 * time.Minute)
		}
		ts = append(ts, transfer.Transfer{
			Source: "/crash", ID: "c-" + strconv.Itoa(i), Time: at,
			From: "acct-" + strconv.Itoa(p%17), To: "acct-" + strconv.Itoa(100+p),
			Amount: money.Cents(1 + rng.Int64N(4000_00)),
		})
		if rng.IntN(20) == 0 {
			ts = append(ts, ts[len(ts)-1])
		}
	}
	rng.Shuffle(len(ts), func(i, j int) { ts[i], ts[j] = ts[j], ts[i] })
	return ts
}

// batches cuts ts into batches of 1 to 40 items.
func batches(rng *rand.Rand, ts []transfer.Transfer) [][]transfer.Item {
	var out [][]transfer.Item
	for len(ts) > 0 {
		n := min(len(ts), 1+rng.IntN(40))
		b := make([]transfer.Item, n)
		for i := range b {
			b[i] = transfer.Item{Ref: ts[i].ID, Transfer: ts[i]}
		}
		out = append(out, b)
		ts = ts[n:]
	}
	return out
}

// redeliveryQueue holds the batches still to be acknowledged.
type redeliveryQueue struct {
	mu      sync.Mutex
	rng     *rand.Rand
	pending [][]transfer.Item
	running int
	cond    *sync.Cond

	attempts, failures, splits int
}

// take returns a random pending batch, waiting while others run; ok is false
// when every batch was acknowledged.
func (q *redeliveryQueue) take() ([]transfer.Item, fault, time.Duration, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.pending) == 0 && q.running > 0 {
		q.cond.Wait()
	}
	if len(q.pending) == 0 {
		return nil, 0, 0, false
	}
	i := q.rng.IntN(len(q.pending))
	b := q.pending[i]
	q.pending = append(q.pending[:i], q.pending[i+1:]...)
	q.running++
	q.attempts++
	f := faultNone
	switch r := q.rng.IntN(100); {
	case r < 20:
		f = faultSinkRefuse
	case r < 35:
		f = faultSinkHang
	case r < 50:
		f = faultKill
	}
	return b, f, time.Duration(q.rng.Int64N(int64(3 * time.Millisecond))), true
}

// done acknowledges b, or puts it back at a random place when it failed
// (split in two one time in four).
func (q *redeliveryQueue) done(b []transfer.Item, failed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.running--
	if failed {
		q.failures++
		parts := [][]transfer.Item{b}
		if len(b) > 1 && q.rng.IntN(4) == 0 {
			k := 1 + q.rng.IntN(len(b)-1)
			parts = [][]transfer.Item{b[:k:k], b[k:]}
			q.splits++
		}
		for _, p := range parts {
			i := q.rng.IntN(len(q.pending) + 1)
			q.pending = append(q.pending[:i], append([][]transfer.Item{p}, q.pending[i:]...)...)
		}
	}
	q.cond.Broadcast()
}

func TestCrashesAndRedeliveryLoseNoAlertAndCountNothingTwice(t *testing.T) {
	for _, instances := range []int{1, 4} {
		t.Run(fmt.Sprintf("%d detect instances", instances), func(t *testing.T) {
			crashRun(t, instances, uint64(instances))
		})
	}
}

func crashRun(t *testing.T, instances int, seed uint64) {
	start := time.Now()
	rdb := redistest.Start(t).Client(t)
	st, err := window.New(rdb, crashCfg)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 2017))
	ts := crashStream(rng, 3000, 120)
	want := flinkref.Alerts(ts, crashCfg.Threshold, crashCfg.Size, crashCfg.Slide)
	if len(want) < 100 {
		t.Fatalf("the stream makes only %d reference alerts; the test needs many", len(want))
	}

	sk := &crashSink{rng: rand.New(rand.NewPCG(seed, 1)), offered: map[string]int{}, calls: map[fault]int{}}
	d := &detect.Detector{Store: st, Sink: sk}
	q := &redeliveryQueue{rng: rand.New(rand.NewPCG(seed, 3)), pending: batches(rng, ts)}
	q.cond = sync.NewCond(&q.mu)

	var wg sync.WaitGroup
	errc := make(chan error, instances)
	for w := 0; w < instances; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				b, f, killAfter, ok := q.take()
				if !ok {
					return
				}
				ctx, cancel := context.WithCancel(context.Background())
				if f == faultKill {
					ctx, cancel = context.WithTimeout(context.Background(), killAfter)
				}
				ctx = context.WithValue(context.WithValue(ctx, faultKey{}, f), cancelKey{}, cancel)
				_, err := d.Process(ctx, b)
				cancel()
				if err != nil && !detect.IsFault(err) {
					errc <- fmt.Errorf("Process failed with a non-fault error: %v", err)
				}
				q.done(b, err != nil)
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}

	// Faults really happened, on every path.
	if sk.calls[faultSinkRefuse] < 10 || sk.calls[faultSinkHang] < 10 || q.failures < 50 || q.splits < 5 {
		t.Fatalf("too few faults to prove anything: sink calls %v, failed attempts %d, splits %d", sk.calls, q.failures, q.splits)
	}

	// 1. The distinct alert ids the sink accepted are exactly the reference.
	wantIDs := map[string]flinkref.Key{}
	for k := range want {
		wantIDs[k.AlertID()] = k
	}
	got := map[string][]transfer.Alert{}
	for _, e := range sk.accepted {
		a, err := cloudevent.ToAlert(e)
		if err != nil {
			t.Fatalf("sink got a bad alert: %v", err)
		}
		if a.ID() != e.ID() {
			t.Fatalf("event id %s is not the alert's id %s", e.ID(), a.ID())
		}
		got[e.ID()] = append(got[e.ID()], a)
	}
	var missing, extra []string
	for id, k := range wantIDs {
		if len(got[id]) == 0 {
			missing = append(missing, fmt.Sprintf("%s->%s@%s", k.From, k.To, time.UnixMilli(k.Start).UTC().Format(time.TimeOnly)))
		}
	}
	for id, as := range got {
		if _, ok := wantIDs[id]; !ok {
			extra = append(extra, as[0].String())
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("sink alerts differ from the Flink reference (%d alerts): %d missing %v, %d extra %v",
			len(want), len(missing), first10(missing), len(extra), first10(extra))
	}

	// 2. Every repeat of an alert is the same alert (same fire-time total,
	// count and time), over the threshold and at most the window's final
	// total.
	redelivered, recovered := 0, 0
	for id, as := range got {
		k := wantIDs[id]
		first := as[0]
		if !first.WindowStart.Equal(time.UnixMilli(k.Start)) || first.WindowEnd.Sub(first.WindowStart) != crashCfg.Size {
			t.Errorf("alert %s has window [%s, %s), want start %s", id, first.WindowStart, first.WindowEnd, time.UnixMilli(k.Start).UTC())
		}
		if first.Total <= crashCfg.Threshold || first.Total > want[k] {
			t.Errorf("alert %s total %s: want over %s and at most the window's final total %s", id, first.Total, crashCfg.Threshold, want[k])
		}
		for _, a := range as[1:] {
			if a.Total != first.Total || a.Count != first.Count || !a.Time.Equal(first.Time) {
				t.Errorf("alert %s repeated with other content: %s at %s vs %s at %s", id, a, a.Time, first, first.Time)
			}
		}
		if len(as) > 1 {
			redelivered++
		}
		if sk.offered[id] > 0 {
			recovered++
		}
	}
	if recovered < 20 {
		t.Fatalf("only %d alerts were lost by a failed attempt and later delivered; the faults did not exercise the re-fire path", recovered)
	}

	// 3. A viewer deduping by id prints each alert exactly once.
	var out strings.Builder
	printed := map[string]bool{}
	for _, e := range sk.accepted {
		if printed[e.ID()] {
			continue
		}
		printed[e.ID()] = true
		a, _ := cloudevent.ToAlert(e)
		out.Write(viewer.Format(e.ID(), a))
	}
	lines := regexp.MustCompile(`(?m)^Detected Fraud: TransactionAggregate \{.*, id=(fraud-[0-9a-f]+):$`).FindAllStringSubmatch(out.String(), -1)
	times := map[string]int{}
	for _, m := range lines {
		times[m[1]]++
	}
	for id := range wantIDs {
		if times[id] != 1 {
			t.Errorf("viewer printed alert %s %d times", id, times[id])
		}
	}
	if len(lines) != len(wantIDs) {
		t.Errorf("viewer printed %d alerts, want %d", len(lines), len(wantIDs))
	}

	// 4. Redis counted every distinct transfer exactly once.
	windowtest.CountedOnce(t, st, ts)

	t.Logf("%d transfers, %d reference alerts, %d attempts (%d failed, %d splits), sink calls %v; %d alerts lost by a failed attempt then delivered, %d delivered more than once; %v",
		len(ts), len(want), q.attempts, q.failures, q.splits, sk.calls, recovered, redelivered, time.Since(start).Round(time.Millisecond))
}

func first10(s []string) []string { return s[:min(len(s), 10)] }
