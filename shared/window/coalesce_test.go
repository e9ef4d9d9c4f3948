package window_test

import (
	"context"
	"errors"
	"math/rand"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/redistest"
	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/window"
)

// evalshaCalls reads how many script calls Redis has run.
func evalshaCalls(t *testing.T, rdb *redis.Client) int {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:calls="); ok {
			n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			return n
		}
	}
	return 0
}

// Many concurrent callers of one or a few transfers each: every caller gets
// the outcomes of its own transfers, the alerts are the reference's, and
// Redis runs fewer script calls than there were callers.
func TestCoalescerMergesConcurrentCallers(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	s := newStore(t, rdb, defaultCfg)
	c := &window.Coalescer{Store: s}
	rng := rand.New(rand.NewSource(7))
	ts := stream(rng, 3000, plainAccounts, 40*time.Minute, 3000_00)
	want := reference(ts, defaultCfg)
	rng.Shuffle(len(ts), func(i, j int) { ts[i], ts[j] = ts[j], ts[i] })
	before := evalshaCalls(t, rdb)

	col := newCollector()
	var next, callers int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if next >= len(ts) {
					mu.Unlock()
					return
				}
				n := min(1+next%3, len(ts)-next) // 1 to 3 transfers a caller
				mine := ts[next : next+n]
				next += n
				callers++
				mu.Unlock()
				out, err := c.Apply(context.Background(), mine)
				if err != nil {
					t.Error(err)
					return
				}
				if len(out) != len(mine) {
					t.Errorf("%d outcomes for %d transfers", len(out), len(mine))
					return
				}
				col.mu.Lock()
				for i, o := range out {
					col.status[o.Status]++
					for _, a := range o.Alerts {
						if a.From != mine[i].From || a.To != mine[i].To {
							t.Errorf("transfer %s->%s got an alert of %s->%s: outcomes crossed between callers", mine[i].From, mine[i].To, a.From, a.To)
						}
						k := alertKey{From: a.From, To: a.To, Start: a.WindowStart.UnixMilli()}
						col.alerts[k] = append(col.alerts[k], a)
					}
				}
				col.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if col.status[window.Counted] != len(ts) {
		t.Fatalf("counted %d of %d: %v", col.status[window.Counted], len(ts), col.status)
	}
	col.check(t, want)
	calls := evalshaCalls(t, rdb) - before
	t.Logf("%d callers, %d script calls", callers, calls)
	if calls >= callers {
		t.Errorf("%d script calls for %d concurrent callers: nothing was merged", calls, callers)
	}
}

// A caller that gives up stops waiting at once, and its transfer is still
// applied after the batch ahead of it; every caller of a batch that failed
// gets the error.
func TestCoalescerCancelAndFailure(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	s := newStore(t, rdb, defaultCfg)
	c := &window.Coalescer{Store: s, Limit: 1, Max: 100000}
	var big []transfer.Transfer
	for i := range 20000 {
		big = append(big, tx("big"+strconv.Itoa(i), at(time.Duration(i)*time.Millisecond), "X"+strconv.Itoa(i%500), "Y", 1))
	}
	bigDone := make(chan error, 1)
	go func() { _, err := c.Apply(context.Background(), big); bigDone <- err }()
	time.Sleep(20 * time.Millisecond) // the big batch is in Redis, holding the only slot
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := c.Apply(ctx, []transfer.Transfer{tx("late-caller", at(0), "A", "B", 7)})
	waited := time.Since(began)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller that gave up: %v", err)
	}
	if err := <-bigDone; err != nil {
		t.Fatal(err)
	}
	if waited > 200*time.Millisecond {
		t.Errorf("the caller waited %s after its deadline", waited)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ps, err := s.Inspect(context.Background(), "A", "B")
		if err == nil && ps.Seq == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the abandoned transfer was never applied: %+v %v", ps, err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	srv.Stop()
	c = &window.Coalescer{Store: s, Limit: 8}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Apply(context.Background(), []transfer.Transfer{tx("f"+strconv.Itoa(i), at(0), "A", "B", 1)})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err == nil {
			t.Error("a caller got no error with Redis down")
		}
	}
}
