package window

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/rules"
	"github.com/fintrans/fintrans/shared/transfer"
)

func planStore(t *testing.T, rdb redis.UniversalClient) *Store {
	t.Helper()
	s, err := New(rdb, Config{Threshold: 10000_00, Size: 10 * time.Minute, Slide: 2 * time.Minute,
		Lateness: time.Hour, MaxTransactions: 5, TTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkPlan asserts that calls cover every transfer once, each pair's in
// order, with at most MaxPerCall transfers and maxIndices bucket indices a
// call, and a pair's transfers of a call one after another.
func checkPlan(t *testing.T, s *Store, ts []transfer.Transfer, plan []call) {
	t.Helper()
	var all []int
	for _, pc := range plan {
		c := pc.idx
		if len(c) == 0 || len(c) > MaxPerCall {
			t.Fatalf("a call of %d transfers", len(c))
		}
		lo, hi := s.span(ts[c[0]])
		for _, i := range c {
			b0, b1 := s.span(ts[i])
			lo, hi = min(lo, b0), max(hi, b1)
		}
		if len(c) > 1 && hi-lo >= maxIndices {
			t.Errorf("a call of %d transfers spans %d buckets", len(c), hi-lo+1)
		}
		if lo != pc.lo || hi != pc.hi {
			t.Errorf("a call's bucket range %d..%d, its transfers cover %d..%d", pc.lo, pc.hi, lo, hi)
		}
		done := map[[2]string]bool{}
		for k, i := range c {
			p := [2]string{ts[i].From, ts[i].To}
			if k > 0 && p != [2]string{ts[c[k-1]].From, ts[c[k-1]].To} {
				if done[p] {
					t.Errorf("a call splits the transfers of pair %v", p)
				}
				done[[2]string{ts[c[k-1]].From, ts[c[k-1]].To}] = true
			}
		}
		all = append(all, c...)
	}
	last := map[[2]string]int{}
	for _, pc := range plan {
		for _, i := range pc.idx {
			p := [2]string{ts[i].From, ts[i].To}
			if j, ok := last[p]; ok && j > i {
				t.Errorf("pair %v: transfer %d planned after %d", p, j, i)
			}
			last[p] = i
		}
	}
	slices.Sort(all)
	for i, v := range all {
		if v != i {
			t.Fatalf("transfer %d planned twice or never", i)
		}
	}
	if len(all) != len(ts) {
		t.Fatalf("%d transfers planned, want %d", len(all), len(ts))
	}
}

func TestPlanStandaloneCutsBySizeAndTimeSpread(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	s := planStore(t, rdb)
	base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var ts []transfer.Transfer
	for i := range 200 { // same time, many pairs: cut by size only
		ts = append(ts, transfer.Transfer{ID: strconv.Itoa(i), Time: base, From: strconv.Itoa(i), To: "x", Amount: 1})
	}
	calls := s.plan(ts)
	checkPlan(t, s, ts, calls)
	if len(calls) != 4 || len(calls[3].idx) != 200-3*MaxPerCall {
		t.Errorf("200 transfers at one time: %d calls, want 4", len(calls))
	}
	ts = ts[:0]
	for i := range 100 { // a transfer every 10 minutes: cut by spread
		ts = append(ts, transfer.Transfer{ID: strconv.Itoa(i), Time: base.Add(time.Duration(i) * 10 * time.Minute), From: "a", To: "b", Amount: 1})
	}
	calls = s.plan(ts)
	checkPlan(t, s, ts, calls)
	if len(calls) < 10 {
		t.Errorf("16 hours of transfers in %d calls", len(calls))
	}
}

func TestPlanStandaloneGroupsAPairsTransfers(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	s := planStore(t, rdb)
	base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var ts []transfer.Transfer
	for i := range 60 { // three pairs interleaved
		ts = append(ts, transfer.Transfer{ID: strconv.Itoa(i), Time: base.Add(time.Duration(i) * time.Second), From: strconv.Itoa(i % 3), To: "x", Amount: 1})
	}
	calls := s.plan(ts)
	checkPlan(t, s, ts, calls)
	if len(calls) != 1 {
		t.Fatalf("%d calls, want 1", len(calls))
	}
	for k, i := range calls[0].idx {
		if want := k%20*3 + k/20; i != want {
			t.Fatalf("transfer %d at position %d, want %d", i, k, want)
		}
	}
}

// For a sender rule the group is the sender: its transfers to any receiver
// go one after another.
func TestPlanStandaloneGroupsBySenderForASenderRule(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	s, err := New(rdb, Config{Threshold: 5, Size: 10 * time.Minute, Slide: 2 * time.Minute, Lateness: time.Hour,
		MaxTransactions: 5, TTL: 24 * time.Hour, GroupBy: rules.From, Aggregate: rules.Count})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var ts []transfer.Transfer
	for i := range 40 { // two senders interleaved, a new receiver each time
		ts = append(ts, transfer.Transfer{ID: strconv.Itoa(i), Time: base.Add(time.Duration(i) * time.Second),
			From: strconv.Itoa(i % 2), To: "r" + strconv.Itoa(i), Amount: 1})
	}
	calls := s.plan(ts)
	if len(calls) != 1 {
		t.Fatalf("%d calls, want 1", len(calls))
	}
	for k, i := range calls[0].idx {
		if want := k%20*2 + k/20; i != want {
			t.Fatalf("transfer %d at position %d, want %d", i, k, want)
		}
	}
}

func TestPlanClusterKeepsOnePairACall(t *testing.T) {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	defer rdb.Close()
	s := planStore(t, rdb)
	base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var ts []transfer.Transfer
	for i := range 300 {
		ts = append(ts, transfer.Transfer{ID: strconv.Itoa(i), Time: base.Add(time.Duration(i) * time.Second), From: strconv.Itoa(i % 3), To: "x", Amount: 1})
	}
	calls := s.plan(ts)
	checkPlan(t, s, ts, calls)
	for _, c := range calls {
		for _, i := range c.idx {
			if ts[i].From != ts[c.idx[0]].From {
				t.Fatalf("a cluster call mixes pairs %s and %s", ts[i].From, ts[c.idx[0]].From)
			}
		}
	}
	if len(calls) != 6 { // 100 a pair: 64 + 36
		t.Errorf("%d calls, want 6", len(calls))
	}
}
