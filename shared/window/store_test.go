package window_test

import (
	"context"
	_ "embed"
	"fmt"
	"math/rand"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/redistest"
	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/window"
	"github.com/fintrans/fintrans/shared/window/flinkref"
	"github.com/fintrans/fintrans/shared/window/windowtest"
)

var defaultCfg = window.Config{
	Threshold:       money.Cents(10000_00),
	Size:            10 * time.Minute,
	Slide:           2 * time.Minute,
	Lateness:        time.Hour,
	MaxTransactions: 5,
	TTL:             24 * time.Hour,
}

type alertKey = flinkref.Key

func reference(ts []transfer.Transfer, cfg window.Config) map[alertKey]money.Cents {
	return flinkref.Alerts(ts, cfg.Threshold, cfg.Size, cfg.Slide)
}

// ---- Streams ----

var base = time.Date(2017, 7, 23, 1, 0, 0, 0, time.UTC)

// stream makes n transfers between the given accounts over span, in time
// order, with amounts up to maxCents.
func stream(rng *rand.Rand, n int, accounts []string, span time.Duration, maxCents int64) []transfer.Transfer {
	ts := make([]transfer.Transfer, n)
	for i := range ts {
		from := accounts[rng.Intn(len(accounts))]
		to := from
		for to == from {
			to = accounts[rng.Intn(len(accounts))]
		}
		ts[i] = transfer.Transfer{
			Source: "/test", ID: "tx-" + strconv.Itoa(i),
			Time: base.Add(time.Duration(rng.Int63n(int64(span)))).Truncate(time.Millisecond),
			From: from, To: to,
			Amount: money.Cents(1 + rng.Int63n(maxCents)),
		}
	}
	sort.SliceStable(ts, func(a, b int) bool { return ts[a].Time.Before(ts[b].Time) })
	return ts
}

func newStore(t *testing.T, rdb redis.UniversalClient, cfg window.Config) *window.Store {
	t.Helper()
	s, err := window.New(rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// collect applies transfers in batches and gathers every alert by key.
type collector struct {
	mu     sync.Mutex
	alerts map[alertKey][]transfer.Alert
	status map[window.Status]int
}

func newCollector() *collector {
	return &collector{alerts: map[alertKey][]transfer.Alert{}, status: map[window.Status]int{}}
}

func (c *collector) apply(t *testing.T, s *window.Store, ts []transfer.Transfer, batch int) {
	t.Helper()
	for len(ts) > 0 {
		n := min(batch, len(ts))
		out, err := s.Apply(context.Background(), ts[:n])
		if err != nil {
			t.Error(err)
			return
		}
		c.mu.Lock()
		for _, o := range out {
			c.status[o.Status]++
			for _, a := range o.Alerts {
				k := alertKey{From: a.From, To: a.To, Start: a.WindowStart.UnixMilli()}
				c.alerts[k] = append(c.alerts[k], a)
			}
		}
		c.mu.Unlock()
		ts = ts[n:]
	}
}

// check compares the alerts with the reference: the same set of (pair,
// window), one alert each, every total over the threshold and at most the
// window's final total.
func (c *collector) check(t *testing.T, want map[alertKey]money.Cents) {
	t.Helper()
	if len(want) == 0 {
		t.Fatal("the stream produced no reference alert: the test would prove nothing")
	}
	for k, total := range want {
		got := c.alerts[k]
		if len(got) != 1 {
			t.Errorf("%v: want exactly one alert (reference total %s), got %d", k, total, len(got))
			continue
		}
		a := got[0]
		if a.Total <= defaultCfg.Threshold || a.Total > total {
			t.Errorf("%v: alert total %s, want > threshold and <= final total %s", k, a.Total, total)
		}
		if a.ID() != transfer.AlertID(k.From, k.To, time.UnixMilli(k.Start)) {
			t.Errorf("%v: alert id not deterministic", k)
		}
	}
	for k, got := range c.alerts {
		if _, ok := want[k]; !ok {
			t.Errorf("%v: %d alerts that the reference does not have", k, len(got))
		}
	}
}

func flush(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		if err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return c.FlushAll(ctx).Err() }); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
}

// engines are the Redis servers the script runs on: a real redis-server,
// and miniredis (whose Lua is gopher-lua, not Redis's Lua 5.1), the embedded
// Redis of `fintrans run` and `fintrans replay` without REDIS_URL when no
// redis-server is on PATH. The
// script is one for both and must give the same results on both.
var engines = []struct {
	name  string
	start func(t testing.TB) *redis.Client
}{
	{"redis-server", func(t testing.TB) *redis.Client { return redistest.Start(t).Client(t) }},
	{"embedded", redistest.StartEmbedded},
}

// onEngines runs test once per engine, each on a fresh server.
func onEngines(t *testing.T, test func(t *testing.T, rdb *redis.Client)) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) { test(t, e.start(t)) })
	}
}

var weirdAccounts = []string{"66", "26", "a:b", "{x}", "}{", "with space", "Zürich", "東京", "{", "a.b", "x}:h", "ÿ"}
var plainAccounts = []string{"1", "2", "3", "4", "5", "6"}

// scenarios runs every order and delivery scenario against one Redis, with
// the default configuration and again with 2 transfers listed an alert
// (a bucket's evidence moves from the hash to a key of its own after 3
// entries: every path of both forms runs under every order).
func scenarios(t *testing.T, rdb redis.UniversalClient) {
	scenariosWith(t, rdb, defaultCfg)
	cfg := defaultCfg
	cfg.MaxTransactions = 2
	t.Run("cap 2", func(t *testing.T) { scenariosWith(t, rdb, cfg) })
}

func scenariosWith(t *testing.T, rdb redis.UniversalClient, cfg window.Config) {
	cases := []struct {
		name     string
		accounts []string
		n        int
		span     time.Duration
		maxCents int64
		prepare  func(rng *rand.Rand, ts []transfer.Transfer) []transfer.Transfer
		workers  int
		batch    int // transfers per Apply (default 1 to 64 at random)
		// check runs after the reference comparison
		check func(t *testing.T, rdb redis.UniversalClient, s *window.Store, ts []transfer.Transfer)
	}{
		{name: "in order", accounts: plainAccounts, n: 3000, span: 3 * time.Hour, maxCents: 4000_00},
		// Batches larger than one script call, spread over more buckets than
		// one call formats: the store cuts them into several calls.
		{name: "in order, large batches", accounts: plainAccounts, n: 3000, span: 3 * time.Hour, maxCents: 4000_00, batch: 700},
		{name: "shuffled within lateness", accounts: plainAccounts, n: 2000, span: 50 * time.Minute, maxCents: 3000_00,
			prepare: func(rng *rand.Rand, ts []transfer.Transfer) []transfer.Transfer {
				rng.Shuffle(len(ts), func(i, j int) { ts[i], ts[j] = ts[j], ts[i] })
				return ts
			}},
		{name: "every transfer twice", accounts: plainAccounts, n: 1500, span: 50 * time.Minute, maxCents: 3000_00, batch: 300,
			prepare: func(rng *rand.Rand, ts []transfer.Transfer) []transfer.Transfer {
				twice := append(slices.Clone(ts), ts...)
				rng.Shuffle(len(twice), func(i, j int) { twice[i], twice[j] = twice[j], twice[i] })
				return twice
			}},
		{name: "8 concurrent workers", accounts: plainAccounts, n: 4000, span: 50 * time.Minute, maxCents: 3000_00, workers: 8,
			prepare: func(rng *rand.Rand, ts []transfer.Transfer) []transfer.Transfer {
				rng.Shuffle(len(ts), func(i, j int) { ts[i], ts[j] = ts[j], ts[i] })
				return ts
			}},
		{name: "odd account ids", accounts: weirdAccounts, n: 4000, span: 40 * time.Minute, maxCents: 4000_00,
			prepare: func(rng *rand.Rand, ts []transfer.Transfer) []transfer.Transfer {
				rng.Shuffle(len(ts), func(i, j int) { ts[i], ts[j] = ts[j], ts[i] })
				return ts
			}},
		// Many pairs over three days, in order: a pair's next transfer
		// often comes hours after its last, so the script prunes old
		// buckets, both bucket by bucket (up to 64 behind) and by listing
		// the hash's fields (further behind).
		{name: "many accounts, long gaps", accounts: manyAccounts, n: 8000, span: 72 * time.Hour, maxCents: 9500_00,
			check: pruned},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			flush(t, rdb)
			rng := rand.New(rand.NewSource(int64(42 + i)))
			ts := stream(rng, tc.n, tc.accounts, tc.span, tc.maxCents)
			want := reference(ts, cfg)
			if tc.prepare != nil {
				ts = tc.prepare(rng, ts)
			}
			s := newStore(t, rdb, cfg)
			c := newCollector()
			if tc.workers <= 1 {
				batch := tc.batch
				if batch == 0 {
					batch = 1 + rng.Intn(64)
				}
				c.apply(t, s, ts, batch)
			} else {
				var wg sync.WaitGroup
				for w := 0; w < tc.workers; w++ {
					var part []transfer.Transfer
					for k := w; k < len(ts); k += tc.workers {
						part = append(part, ts[k])
					}
					wg.Add(1)
					go func(batch int) { defer wg.Done(); c.apply(t, s, part, batch) }(1 + w*7)
				}
				wg.Wait()
			}
			if c.status[window.Late] != 0 {
				t.Fatalf("%d transfers refused as late in a stream inside the lateness", c.status[window.Late])
			}
			if tc.name == "every transfer twice" {
				if c.status[window.Duplicate] != tc.n || c.status[window.Counted] != tc.n {
					t.Fatalf("counted %d, duplicates %d; want %d each", c.status[window.Counted], c.status[window.Duplicate], tc.n)
				}
				// A duplicate fires again only the alerts its first delivery
				// fired: exactly two deliveries of each alert, same content.
				for k, as := range c.alerts {
					if len(as) != 2 || as[0].ID() != as[1].ID() || as[0].Total != as[1].Total || as[0].Count != as[1].Count {
						t.Errorf("%v: want the alert twice with the same id and total, got %d", k, len(as))
					}
					c.alerts[k] = as[:1]
				}
			}
			c.check(t, want)
			for k, as := range c.alerts {
				for _, a := range as {
					if a.Count < 1 || len(a.Transactions) != min(cfg.MaxTransactions, a.Count) || a.Truncated != (len(a.Transactions) < a.Count) {
						t.Errorf("%v: count %d, %d listed (cap %d), truncated %v", k, a.Count, len(a.Transactions), cfg.MaxTransactions, a.Truncated)
					}
				}
			}
			if tc.check != nil {
				tc.check(t, rdb, s, ts)
			}
		})
	}
}

var manyAccounts = func() []string {
	a := make([]string, 30)
	for i := range a {
		a[i] = "acct-" + strconv.Itoa(i)
	}
	return a
}()

// pruned checks each pair's state against its transfers: the lowest bucket
// kept (lo) is the one the newest transfer can still reach, the hash holds
// a total for exactly the buckets used from lo on, and no total, alert or
// evidence field below lo; and that buckets were pruned at all.
func pruned(t *testing.T, rdb redis.UniversalClient, s *window.Store, ts []transfer.Transfer) {
	t.Helper()
	ctx := context.Background()
	cfg := s.Config()
	g := gcd(cfg.Size.Milliseconds(), cfg.Slide.Milliseconds())
	newest := map[[2]string]int64{}
	buckets := map[[2]string]map[int64]bool{}
	for _, tr := range ts {
		p, ms := [2]string{tr.From, tr.To}, tr.Time.UnixMilli()
		if buckets[p] == nil {
			buckets[p] = map[int64]bool{}
		}
		buckets[p][floorDiv(ms, g)] = true
		newest[p] = max(newest[p], ms)
	}
	gone := 0
	listed := map[string]bool{} // evidence keys, by the pairs' k
	for p, used := range buckets {
		hk := s.Keys(p[0], p[1])[0]
		h, err := rdb.HGetAll(ctx, hk).Result()
		if err != nil {
			t.Fatal(err)
		}
		lo := floorDiv(newest[p]-cfg.Lateness.Milliseconds()-cfg.Size.Milliseconds(), g)
		if h["lo"] != strconv.FormatInt(lo, 10) {
			t.Errorf("pair %v: lo %q, want %d", p, h["lo"], lo)
		}
		if h["k"] != "" {
			for _, b := range strings.Split(h["k"], ",") {
				listed[strings.TrimSuffix(hk, "h")+"e"+b] = true
				if _, ok := h["c"+b]; !ok {
					t.Errorf("pair %v: evidence key of bucket %s without its header", p, b)
				}
			}
		}
		for f := range h {
			if !strings.ContainsRune("vaec", rune(f[0])) {
				continue
			}
			b, err := strconv.ParseInt(f[1:], 10, 64)
			if err != nil || b < lo {
				t.Errorf("pair %v: field %s left below lo %d", p, f, lo)
			}
			if f[0] == 'v' && !used[b] {
				t.Errorf("pair %v: total of bucket %d, which no transfer used", p, b)
			}
		}
		for b := range used {
			if b < lo {
				gone++
			} else if _, ok := h["v"+strconv.FormatInt(b, 10)]; !ok {
				t.Errorf("pair %v: total of bucket %d missing", p, b)
			}
		}
	}
	if gone == 0 {
		t.Error("no bucket was pruned: the stream does not test pruning")
	}
	// Every evidence key is listed by its pair (none left behind by pruning).
	var keys []string
	collect := func(ctx context.Context, c *redis.Client) error {
		k, err := c.Keys(ctx, cfg.KeyPrefix+"*}:e*").Result()
		keys = append(keys, k...)
		return err
	}
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, collect)
	} else {
		err = collect(ctx, rdb.(*redis.Client))
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !listed[k] {
			t.Errorf("evidence key %s listed by no pair", k)
		}
		delete(listed, k)
	}
	for k := range listed {
		t.Errorf("evidence key %s listed but missing", k)
	}
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func TestWindowsMatchReference(t *testing.T) {
	srv := redistest.Start(t)
	scenarios(t, srv.Client(t))
}

// The embedded Redis (miniredis) runs the same script with the same results.
func TestWindowsMatchReferenceOnEmbedded(t *testing.T) {
	scenarios(t, redistest.StartEmbedded(t))
}

func TestWindowsMatchReferenceOnCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	rdb := cl.Client(t)
	scenarios(t, rdb)

	// Every key of a pair lives in one hash slot, and pairs spread over nodes.
	s := newStore(t, rdb, defaultCfg)
	ctx := context.Background()
	slots := map[int64]bool{}
	for _, a := range weirdAccounts {
		for _, b := range weirdAccounts {
			keys := s.Keys(a, b)
			var first int64 = -1
			for _, k := range keys {
				slot, err := rdb.ClusterKeySlot(ctx, k).Result()
				if err != nil {
					t.Fatal(err)
				}
				if first >= 0 && slot != first {
					t.Fatalf("keys of pair %q->%q in slots %d and %d", a, b, first, slot)
				}
				first = slot
			}
			slots[first] = true
		}
	}
	if len(slots) < 50 {
		t.Errorf("pairs hash to only %d slots", len(slots))
	}
}

func at(d time.Duration) time.Time { return base.Add(d) }

func tx(id string, when time.Time, from, to string, cents int64) transfer.Transfer {
	return transfer.Transfer{Source: "/test", ID: id, Time: when, From: from, To: to, Amount: money.Cents(cents)}
}

func applyOne(t *testing.T, s *window.Store, tr transfer.Transfer) window.Outcome {
	t.Helper()
	out, err := s.Apply(context.Background(), []transfer.Transfer{tr})
	if err != nil {
		t.Fatal(err)
	}
	return out[0]
}

func TestThresholdIsStrictToTheCent(t *testing.T) {
	onEngines(t, func(t *testing.T, rdb *redis.Client) {
		s := newStore(t, rdb, defaultCfg)
		// base is 01:00, a multiple of 2 minutes: windows start at 00:52 .. 01:00.
		if o := applyOne(t, s, tx("a1", at(0), "A", "B", 6000_00)); len(o.Alerts) != 0 {
			t.Fatal("alert below threshold")
		}
		if o := applyOne(t, s, tx("a2", at(time.Minute), "A", "B", 4000_00)); len(o.Alerts) != 0 || o.Status != window.Counted {
			t.Fatalf("exactly 10000.00 must not alert: %+v", o)
		}
		o := applyOne(t, s, tx("a3", at(90*time.Second), "A", "B", 1))
		if len(o.Alerts) != 5 {
			t.Fatalf("10000.01 in five shared windows: want 5 alerts, got %d", len(o.Alerts))
		}
		for _, a := range o.Alerts {
			if a.Total != 10000_01 || a.Count != 3 || !a.Time.Equal(at(90*time.Second)) || a.Truncated {
				t.Errorf("alert %s: total %s count %d time %s truncated %v", a.WindowStart, a.Total, a.Count, a.Time, a.Truncated)
			}
			if len(a.Transactions) != 3 || a.Transactions[0].ID != "a1" || a.Transactions[2].ID != "a3" {
				t.Errorf("evidence %+v, want a1, a2, a3 oldest first", a.Transactions)
			}
		}
		// The same pair reversed is another pair.
		if o := applyOne(t, s, tx("b1", at(0), "B", "A", 10000_01)); len(o.Alerts) != 5 {
			t.Fatalf("reverse pair: %d alerts", len(o.Alerts))
		}
	})
}

func TestWindowBoundaries(t *testing.T) {
	onEngines(t, func(t *testing.T, rdb *redis.Client) {
		s := newStore(t, rdb, defaultCfg)
		// 6000 at 01:00:00.000 (windows 00:52..01:00) and 6000 at 01:09:59.999
		// (windows 01:00..01:08): they share only [01:00, 01:10).
		applyOne(t, s, tx("x1", at(0), "A", "B", 6000_00))
		o := applyOne(t, s, tx("x2", at(10*time.Minute-time.Millisecond), "A", "B", 6000_00))
		if len(o.Alerts) != 1 || !o.Alerts[0].WindowStart.Equal(at(0)) || !o.Alerts[0].WindowEnd.Equal(at(10*time.Minute)) {
			t.Fatalf("want one alert for [01:00, 01:10), got %+v", o.Alerts)
		}
		// 01:10:00.000 is outside [01:00, 01:10) but inside [01:02, 01:12) with x2.
		o = applyOne(t, s, tx("x3", at(10*time.Minute), "A", "B", 4000_01))
		var starts []time.Time
		for _, a := range o.Alerts {
			starts = append(starts, a.WindowStart)
		}
		if len(o.Alerts) != 4 {
			t.Fatalf("want alerts for windows 01:02..01:08, got %v", starts)
		}
		for _, a := range o.Alerts {
			if a.WindowStart.Before(at(2*time.Minute)) || a.WindowStart.After(at(8*time.Minute)) {
				t.Errorf("unexpected window %s", a.WindowStart)
			}
		}
	})
}

func TestLateTransferChangesNothing(t *testing.T) {
	onEngines(t, func(t *testing.T, rdb *redis.Client) {
		s := newStore(t, rdb, defaultCfg)
		applyOne(t, s, tx("n1", at(2*time.Hour), "A", "B", 100))
		applyOne(t, s, tx("n2", at(time.Hour), "A", "B", 100)) // exactly 1 h behind: in time
		before := windowtest.Take(t, rdb)
		o := applyOne(t, s, tx("old", at(time.Hour-time.Millisecond), "A", "B", 20000_00))
		if o.Status != window.Late || !o.Newest.Equal(at(2*time.Hour)) || len(o.Alerts) != 0 {
			t.Fatalf("want late with newest 03:00, got %+v", o)
		}
		if !before.Equal(windowtest.Take(t, rdb)) {
			t.Fatal("a late transfer changed Redis")
		}
		// Lateness is per pair: another pair takes the same old time.
		if o := applyOne(t, s, tx("other", at(time.Hour-time.Millisecond), "C", "B", 20000_00)); o.Status != window.Counted || len(o.Alerts) != 5 {
			t.Fatalf("other pair: %+v", o)
		}
	})
}

func TestRedeliveryFiresTheSameAlertAgain(t *testing.T) {
	onEngines(t, func(t *testing.T, rdb *redis.Client) {
		s := newStore(t, rdb, defaultCfg)
		applyOne(t, s, tx("r1", at(0), "A", "B", 9000_00))
		fired := applyOne(t, s, tx("r2", at(time.Minute), "A", "B", 2000_00))
		applyOne(t, s, tx("r3", at(time.Minute+time.Second), "A", "B", 5000_00))
		if len(fired.Alerts) != 5 {
			t.Fatalf("want 5 alerts, got %d", len(fired.Alerts))
		}
		// The sink failed: the transport redelivers r2, then r1 and r3.
		again := applyOne(t, s, tx("r2", at(time.Minute), "A", "B", 2000_00))
		if again.Status != window.Duplicate || len(again.Alerts) != 5 {
			t.Fatalf("redelivered r2: %+v", again)
		}
		for i := range again.Alerts {
			a, b := fired.Alerts[i], again.Alerts[i]
			if a.ID() != b.ID() || a.Total != b.Total || a.Count != b.Count || !a.Time.Equal(b.Time) || len(a.Transactions) != len(b.Transactions) {
				t.Errorf("re-fired alert differs: %+v vs %+v", a, b)
			}
		}
		for _, id := range []string{"r1", "r3"} {
			if o := applyOne(t, s, tx(id, at(0), "A", "B", 1)); o.Status != window.Duplicate || len(o.Alerts) != 0 {
				t.Errorf("redelivered %s: %+v", id, o)
			}
		}
		// Same id from another source is another transfer.
		o := applyOne(t, s, transfer.Transfer{Source: "/other", ID: "r2", Time: at(time.Minute), From: "A", To: "B", Amount: 1})
		if o.Status != window.Counted {
			t.Fatalf("same id, other source: %+v", o)
		}
	})
}

// Event times that are round numbers of milliseconds: the embedded Redis
// prints the score 2000000000000 as "2e+12" (ZSCORE), which gopher-lua's
// tonumber does not read; the redelivery path reads the earlier delivery's
// time from there.
func TestRoundTimesRedelivered(t *testing.T) {
	onEngines(t, func(t *testing.T, rdb *redis.Client) {
		s := newStore(t, rdb, defaultCfg)
		round := time.UnixMilli(2_000_000_000_000).UTC()
		applyOne(t, s, tx("p1", round, "A", "B", 6000_00))
		fired := applyOne(t, s, tx("p2", round, "A", "B", 5000_00))
		if fired.Status != window.Counted || len(fired.Alerts) != 5 {
			t.Fatalf("crossing transfer: %+v", fired)
		}
		again := applyOne(t, s, tx("p2", round, "A", "B", 5000_00))
		if again.Status != window.Duplicate || len(again.Alerts) != 5 || again.Alerts[0].ID() != fired.Alerts[0].ID() {
			t.Fatalf("redelivered at a round time: %+v", again)
		}
		if o := applyOne(t, s, tx("p1", round, "A", "B", 6000_00)); o.Status != window.Duplicate || len(o.Alerts) != 0 {
			t.Fatalf("first transfer redelivered: %+v", o)
		}
	})
}

func TestEvidenceIsCappedOldestFirst(t *testing.T) {
	onEngines(t, func(t *testing.T, rdb *redis.Client) {
		cfg := defaultCfg
		cfg.MaxTransactions = 3
		s := newStore(t, rdb, cfg)
		// Seven transfers of 2000 arrive newest first; the sixth crosses.
		var o window.Outcome
		for i := 6; i >= 0; i-- {
			o = applyOne(t, s, tx(fmt.Sprintf("e%d", i), at(time.Duration(i)*time.Second), "A", "B", 2000_00))
			if i == 1 {
				break
			}
		}
		if len(o.Alerts) == 0 {
			t.Fatal("no alert")
		}
		a := o.Alerts[0]
		if a.Count != 6 || !a.Truncated || len(a.Transactions) != 3 {
			t.Fatalf("count %d truncated %v listed %d", a.Count, a.Truncated, len(a.Transactions))
		}
		for i, want := range []string{"e1", "e2", "e3"} {
			if a.Transactions[i].ID != want {
				t.Errorf("listed %v, want e1 e2 e3", a.Transactions)
			}
		}
	})
}

// With no evidence listed (ALERT_MAX_TRANSACTIONS 0, "none"), an alert
// still counts its window's transfers, whether they came one call at a
// time or in one batch, and fires again on redelivery.
func TestNoEvidenceStillCounts(t *testing.T) {
	onEngines(t, func(t *testing.T, rdb *redis.Client) {
		cfg := defaultCfg
		cfg.MaxTransactions = 0
		s := newStore(t, rdb, cfg)
		for i := range 2 {
			applyOne(t, s, tx(fmt.Sprintf("n%d", i), at(time.Duration(i)*time.Second), "A", "B", 4000_00))
		}
		o := applyOne(t, s, tx("n2", at(2*time.Second), "A", "B", 4000_00))
		if len(o.Alerts) != 5 {
			t.Fatalf("12000.00 in five windows: want 5 alerts, got %+v", o)
		}
		for _, a := range o.Alerts {
			if a.Count != 3 || a.Total != 12000_00 || len(a.Transactions) != 0 || !a.Truncated {
				t.Errorf("alert %s: count %d total %s listed %d truncated %v", a.WindowStart, a.Count, a.Total, len(a.Transactions), a.Truncated)
			}
		}
		if again := applyOne(t, s, tx("n2", at(2*time.Second), "A", "B", 4000_00)); again.Status != window.Duplicate || len(again.Alerts) != 5 || again.Alerts[0].Count != 3 {
			t.Fatalf("redelivered: %+v", again)
		}
		// The same in one batch, enough of the pair's transfers for the
		// script to keep its state in a table while it applies them.
		var batch []transfer.Transfer
		for i := range 6 {
			batch = append(batch, tx(fmt.Sprintf("m%d", i), at(time.Duration(i)*time.Second), "C", "D", 2500_00))
		}
		out, err := s.Apply(context.Background(), batch)
		if err != nil {
			t.Fatal(err)
		}
		if a := out[4].Alerts; len(a) != 5 || a[0].Count != 5 || a[0].Total != 12500_00 {
			t.Fatalf("the fifth of a batch: %+v", out[4])
		}
		// A first transfer that crosses alone.
		if a := applyOne(t, s, tx("x", at(0), "E", "F", 10000_01)).Alerts; len(a) != 5 || a[0].Count != 1 {
			t.Fatalf("a first transfer over the threshold: %+v", a)
		}
	})
}

func TestScriptReloadedAfterFlush(t *testing.T) {
	onEngines(t, func(t *testing.T, rdb *redis.Client) {
		s := newStore(t, rdb, defaultCfg)
		ctx := context.Background()
		if err := rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		out, err := s.Apply(ctx, []transfer.Transfer{tx("f1", at(0), "A", "B", 1), tx("f2", at(0), "A", "C", 1)})
		if err != nil || out[0].Status != window.Counted || out[1].Status != window.Counted {
			t.Fatalf("after SCRIPT FLUSH: %v %+v", err, out)
		}
	})
}

func TestStateIsBoundedAndExpires(t *testing.T) {
	onEngines(t, func(t *testing.T, rdb *redis.Client) {
		s := newStore(t, rdb, defaultCfg)
		ctx := context.Background()
		// One pair, a transfer every 30 s for 10 hours of event time.
		var batch []transfer.Transfer
		for i := 0; i < 1200; i++ {
			batch = append(batch, tx("m"+strconv.Itoa(i), at(time.Duration(i)*30*time.Second), "A", "B", 100_00))
		}
		if _, err := s.Apply(ctx, batch); err != nil {
			t.Fatal(err)
		}
		k := s.Keys("A", "B")
		h, _ := rdb.HGetAll(ctx, k[0]).Result()
		seen, _ := rdb.ZCard(ctx, k[1]).Result()
		// (lateness + size) / 2 min = 35 windows still reachable (36 while one
		// is filling), each a total and maybe an alert, and as many buckets, each
		// with its evidence (in the hash, or a header there); plus t, lo, n, k
		// (the buckets with an evidence key) and x; the transfers seen in the
		// last 70 minutes (one every 30 s), plus up to one bucket not yet
		// pruned.
		if len(h) > 3*36+5 || seen > 141+4 {
			t.Errorf("state not bounded: %d hash fields, %d seen", len(h), seen)
		}
		checkEvidenceKeys(t, rdb, s, "A", "B", defaultCfg.MaxTransactions)
		for _, key := range k {
			ttl, err := rdb.PTTL(ctx, key).Result()
			if err != nil || ttl <= 0 || ttl > defaultCfg.TTL {
				t.Errorf("%s: ttl %v %v", key, ttl, err)
			}
		}
		// A jump of days prunes everything older in one go.
		applyOne(t, s, tx("jump", at(100*time.Hour), "A", "B", 1))
		if n, _ := rdb.HLen(ctx, k[0]).Result(); n != 5 {
			t.Errorf("after a jump: %d fields, want t, lo, n and the new transfer's bucket total and evidence", n)
		}
		if ek := checkEvidenceKeys(t, rdb, s, "A", "B", defaultCfg.MaxTransactions); len(ek) != 0 {
			t.Errorf("after a jump: evidence keys %v left", ek)
		}
		// The same in a batch of the pair's transfers (read and written once
		// for all of them): the first prunes, the others see it pruned.
		if _, err := s.Apply(ctx, []transfer.Transfer{tx("jump2", at(200*time.Hour), "A", "B", 1),
			tx("jump3", at(200*time.Hour+time.Second), "A", "B", 2), tx("jump2", at(200*time.Hour), "A", "B", 1),
			tx("jump4", at(200*time.Hour+2*time.Second), "A", "B", 3), tx("jump5", at(200*time.Hour+3*time.Second), "A", "B", 4)}); err != nil {
			t.Fatal(err)
		}
		if n, _ := rdb.HLen(ctx, k[0]).Result(); n != 5 {
			t.Errorf("after a jump in a batch: %d fields, want t, lo, n and the new transfers' bucket total and evidence", n)
		}
		if ek := checkEvidenceKeys(t, rdb, s, "A", "B", defaultCfg.MaxTransactions); len(ek) != 0 {
			t.Errorf("after a jump in a batch: evidence keys %v left", ek)
		}
		if ps, _ := s.Inspect(ctx, "A", "B"); ps.Seen != 4 || ps.Seq != 1205 || ps.Windows[at(200*time.Hour).Truncate(2*time.Minute)] != 10 {
			t.Errorf("after a jump in a batch: %+v", ps)
		}
	})
}

// checkEvidenceKeys checks a group's evidence against its state hash: a
// bucket's is in the hash (e<b>: header and entries) or in a key (header
// c<b>, entries in the key), never both; the keys are those its k lists,
// each with an expiry past the hash's; each bucket lists as many entries
// as its header counts, at most twice cap less one. It returns the keys.
func checkEvidenceKeys(t *testing.T, rdb *redis.Client, s *window.Store, from, to string, cap int) []string {
	t.Helper()
	ctx := context.Background()
	k := s.Keys(from, to)
	prefix := strings.TrimSuffix(k[0], "h")
	keys, err := rdb.Keys(ctx, strings.NewReplacer("{", "\\{", "}", "\\}").Replace(prefix)+"e*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	h, _ := rdb.HGetAll(ctx, k[0]).Result()
	var listed []string
	if h["k"] != "" {
		for _, b := range strings.Split(h["k"], ",") {
			listed = append(listed, prefix+"e"+b)
		}
	}
	slices.Sort(listed)
	if !slices.Equal(keys, listed) {
		t.Errorf("evidence keys %v, k lists %v", keys, listed)
	}
	headers := 0
	hashTTL, _ := rdb.PTTL(ctx, k[0]).Result()
	for f, v := range h {
		if f[0] == 'e' {
			if _, key := h["c"+f[1:]]; key {
				// Its list is in a key: e<b> is the header an earlier script
				// reads, no entries.
				if v != strconv.Itoa(cap)+",99999999999999|" {
					t.Errorf("bucket %s has its evidence in a key and %q in the hash", f[1:], v)
				}
				continue
			}
			count, _, _ := strings.Cut(v, ",")
			if n, err := strconv.Atoi(count); err != nil || n >= 2*cap || strings.Count(v, ":") != n {
				t.Errorf("bucket %s lists %s transfers in the hash, cap %d (at most twice that, less one): %q", f[1:], count, cap, v)
			}
		}
		if f[0] != 'c' {
			continue
		}
		headers++
		count, _, _ := strings.Cut(v, ",")
		key := prefix + "e" + f[1:]
		es, err := rdb.Get(ctx, key).Result()
		n, cerr := strconv.Atoi(count)
		if err != nil || cerr != nil || n >= 2*cap || strings.Count(es, ":") != n {
			t.Errorf("bucket %s: header %q, key %s holds %q (%v): want as many entries as counted, under twice the cap %d", f[1:], v, key, es, err, cap)
		}
		if ttl, _ := rdb.PTTL(ctx, key).Result(); ttl < hashTTL {
			t.Errorf("%s expires in %v, before its hash (%v)", key, ttl, hashTTL)
		}
	}
	if headers != len(keys) {
		t.Errorf("%d evidence headers, %d keys", headers, len(keys))
	}
	return keys
}

// A bucket's evidence key outlives its pair's hash while the pair is busy
// long after the key was made (its expiry is pushed out with the hash's,
// at most once in half a TTL): here a pair's transfers come for longer
// than a key's first expiry (2 * TTL), one new bucket at a time, and the
// alert at the end still lists the first bucket's transfers.
func TestEvidenceKeysLiveAsLongAsTheirHash(t *testing.T) {
	onEngines(t, func(t *testing.T, rdb *redis.Client) {
		cfg := window.Config{Threshold: 1000_00, Size: time.Second, Slide: 50 * time.Millisecond,
			MaxTransactions: 20, TTL: time.Second}
		s := newStore(t, rdb, cfg)
		ctx := context.Background()
		// The first bucket: more transfers than its hash keeps, so an
		// evidence key.
		for i := range 12 {
			applyOne(t, s, tx(fmt.Sprintf("first%d", i), at(0), "A", "B", 10_00))
		}
		keys := checkEvidenceKeys(t, rdb, s, "A", "B", cfg.MaxTransactions)
		if len(keys) != 1 {
			t.Fatalf("evidence keys %v, want one", keys)
		}
		start := time.Now()
		i := 1
		for time.Since(start) < 2*cfg.TTL+500*time.Millisecond {
			time.Sleep(150 * time.Millisecond)
			// One bucket later each time, all within the first window.
			applyOne(t, s, tx(fmt.Sprintf("next%d", i), at(time.Duration(i)*50*time.Millisecond), "A", "B", 1))
			i++
			checkEvidenceKeys(t, rdb, s, "A", "B", cfg.MaxTransactions)
		}
		if n, _ := rdb.Exists(ctx, keys[0]).Result(); n != 1 {
			t.Fatalf("the first bucket's evidence key expired while its pair was busy")
		}
		o := applyOne(t, s, tx("over", at(time.Duration(i)*50*time.Millisecond), "A", "B", 1000_00))
		if len(o.Alerts) == 0 {
			t.Fatalf("no alert: %+v", o)
		}
		listed := 0
		for _, a := range o.Alerts { // the windows holding the first bucket list its two first
			if !a.WindowStart.After(at(0)) {
				listed++
				if len(a.Transactions) != 20 || a.Transactions[0].ID != "first0" || a.Transactions[11].ID != "first11" {
					t.Errorf("alert %s lists %+v, want first0 to first11 first", a.WindowStart, a.Transactions)
				}
			}
		}
		if listed == 0 {
			t.Errorf("no alert of a window holding the first bucket: %+v", o.Alerts)
		}
		// A transfer an hour on leaves every bucket behind: their keys go
		// with them, not at their expiry.
		applyOne(t, s, tx("later", at(time.Hour), "A", "B", 1))
		if ek := checkEvidenceKeys(t, rdb, s, "A", "B", cfg.MaxTransactions); len(ek) != 0 {
			t.Errorf("evidence keys %v kept after their buckets were pruned", ek)
		}
	})
}

// A pair's first transfer lives in its state hash alone (one key); the
// second creates the dedupe set and moves the first there. Dedupe, refiring
// and counts hold across the move.
func TestFirstTransferOfAPairCostsOneKey(t *testing.T) {
	onEngines(t, func(t *testing.T, rdb *redis.Client) {
		s := newStore(t, rdb, defaultCfg)
		ctx := context.Background()
		k := s.Keys("A", "B")
		first := tx("one", at(0), "A", "B", 12000_00) // over the threshold on its own
		o := applyOne(t, s, first)
		if o.Status != window.Counted || len(o.Alerts) != 5 {
			t.Fatalf("first transfer: %+v", o)
		}
		for _, a := range o.Alerts {
			if a.Count != 1 || len(a.Transactions) != 1 || a.Transactions[0].ID != "one" || a.Truncated {
				t.Errorf("alert %s: count %d, listed %v", a.WindowStart, a.Count, a.Transactions)
			}
		}
		if n, _ := rdb.Exists(ctx, k[1]).Result(); n != 0 {
			t.Errorf("a pair seen once has a dedupe set")
		}
		if ps, _ := s.Inspect(ctx, "A", "B"); ps.Seen != 1 || ps.Seq != 1 {
			t.Errorf("after one transfer: %+v", ps)
		}
		again := applyOne(t, s, first)
		if again.Status != window.Duplicate || len(again.Alerts) != 5 || again.Alerts[0].ID() != o.Alerts[0].ID() {
			t.Fatalf("first transfer redelivered: %+v", again)
		}

		if o := applyOne(t, s, tx("two", at(time.Minute), "A", "B", 1)); o.Status != window.Counted || len(o.Alerts) != 0 {
			t.Fatalf("second transfer: %+v", o)
		}
		if ps, _ := s.Inspect(ctx, "A", "B"); ps.Seen != 2 || ps.Seq != 2 {
			t.Errorf("after two transfers: %+v", ps)
		}
		if n, _ := rdb.ZCard(ctx, k[1]).Result(); n != 2 {
			t.Errorf("dedupe set holds %d ids, want 2", n)
		}
		if ttl, _ := rdb.PTTL(ctx, k[1]).Result(); ttl <= 0 {
			t.Errorf("dedupe set without expiry: %v", ttl)
		}
		if f, _ := rdb.HExists(ctx, k[0], "f").Result(); f {
			t.Error("the first transfer is still in the hash after the move")
		}
		for _, tr := range []transfer.Transfer{first, tx("two", at(time.Minute), "A", "B", 1)} {
			o := applyOne(t, s, tr)
			if o.Status != window.Duplicate {
				t.Errorf("%s redelivered after the move: %v", tr.ID, o.Status)
			}
			if tr.ID == "one" && (len(o.Alerts) != 5 || o.Alerts[0].Count != 1) {
				t.Errorf("the first transfer's alerts not fired again after the move: %+v", o.Alerts)
			}
		}
		// The second transfer of another pair crosses: its count includes the
		// first, just moved to the dedupe set.
		applyOne(t, s, tx("c1", at(0), "B", "C", 6000_00))
		o = applyOne(t, s, tx("c2", at(30*time.Second), "B", "C", 5000_00))
		if o.Status != window.Counted || len(o.Alerts) != 5 {
			t.Fatalf("crossing second transfer: %+v", o)
		}
		for _, a := range o.Alerts {
			if a.Count != 2 || len(a.Transactions) != 2 || a.Transactions[0].ID != "c1" {
				t.Errorf("alert %s: count %d, listed %v", a.WindowStart, a.Count, a.Transactions)
			}
		}
	})
}

// outOfOrder makes 1200 transfers from senders A0, A1, ... (round robin) to
// B at random whole seconds over 14 minutes: many a bucket, out of order.
func outOfOrder(seed int64, senders int, idPrefix string, cents func(i int) int64) []transfer.Transfer {
	rng := rand.New(rand.NewSource(seed))
	ts := make([]transfer.Transfer, 0, 1200)
	for i := range 1200 {
		when := at(time.Duration(rng.Int63n(int64(14 * time.Minute)))).Truncate(time.Second)
		ts = append(ts, tx(idPrefix+strconv.Itoa(i), when, "A"+strconv.Itoa(i%senders), "B", cents(i)))
	}
	return ts
}

// checkListsOldest checks an alert against the transfers known when it
// fired (indices into ts): it counts those of its pair and window, and
// lists the cap oldest of them (by time, then the order known).
func checkListsOldest(t *testing.T, a transfer.Alert, ts []transfer.Transfer, known []int, cap int) {
	t.Helper()
	var in []int
	for _, k := range known {
		if ts[k].From == a.From && ts[k].To == a.To && !ts[k].Time.Before(a.WindowStart) && ts[k].Time.Before(a.WindowEnd) {
			in = append(in, k)
		}
	}
	slices.SortStableFunc(in, func(x, y int) int { return ts[x].Time.Compare(ts[y].Time) })
	if a.Count != len(in) || len(a.Transactions) != min(cap, len(in)) {
		t.Fatalf("alert %s %s: count %d listed %d, want %d and %d", a.From, a.WindowStart, a.Count, len(a.Transactions), len(in), min(cap, len(in)))
	}
	for x, lt := range a.Transactions {
		if lt.ID != ts[in[x]].ID || lt.Amount != ts[in[x]].Amount {
			t.Fatalf("alert %s %s: listed %v, want the oldest %d of %v", a.From, a.WindowStart, a.Transactions, cap, in)
		}
	}
}

// checkCount checks that an alert counts the transfers of its pair and
// window known when it fired.
func checkCount(t *testing.T, a transfer.Alert, ts []transfer.Transfer, known []int) {
	t.Helper()
	n := 0
	for _, k := range known {
		if ts[k].From == a.From && ts[k].To == a.To && !ts[k].Time.Before(a.WindowStart) && ts[k].Time.Before(a.WindowEnd) {
			n++
		}
	}
	if a.Count != n {
		t.Fatalf("alert %s %s: count %d, want %d", a.From, a.WindowStart, a.Count, n)
	}
}

// Out-of-order arrivals, many transfers a bucket: each alert lists the cap
// oldest (by time, then arrival) of the transfers of its window known when
// it fired, whether a pair's transfers come one a call or many a call.
func TestEvidenceOldestOutOfOrder(t *testing.T) {
	onEngines(t, func(t *testing.T, rdb *redis.Client) {
		for _, batch := range []int{1, 500} {
			cfg := defaultCfg
			cfg.MaxTransactions = 4
			cfg.KeyPrefix = fmt.Sprintf("ev%d:", batch)
			s := newStore(t, rdb, cfg)
			ts := outOfOrder(int64(batch), 20, "o", func(int) int64 { return 400_00 })
			inOrder := make([]int, len(ts)) // the transfers known: all before, in order
			for i := range inOrder {
				inOrder[i] = i
			}
			fired := 0
			for i := 0; i < len(ts); i += batch {
				part := ts[i:min(i+batch, len(ts))]
				out, err := s.Apply(context.Background(), part)
				if err != nil {
					t.Fatal(err)
				}
				for j, o := range out {
					for _, a := range o.Alerts {
						fired++
						// The window's transfers of the pair known at the crossing one.
						checkListsOldest(t, a, ts, inOrder[:i+j+1], 4)
					}
				}
			}
			if fired < 20 {
				t.Fatalf("batch %d: %d alerts", batch, fired)
			}
		}
	})
}

// Earlier releases of the script: before a pair's first transfer kept its
// evidence entry in f (it wrote "idkey:time" and the bucket's evidence
// string), and before evidence moved from the hash (e<b>) to keys.
var (
	//go:embed testdata/window-before-f-entry.lua
	scriptBeforeFEntry string
	//go:embed testdata/window-before-evidence-keys.lua
	scriptBeforeEvidenceKeys string
)

// An upgrade in the middle of a stream: a part applied by the earlier
// script (pairs seen once among them), the rest by this one. Every alert,
// before and after, counts the window's transfers and lists its oldest, as
// without an upgrade, and a redelivery of a transfer that fired before the
// upgrade fires its alert again.
func TestUpgradeFromTheEarlierScript(t *testing.T) {
	for _, before := range []struct{ name, src string }{
		{"before f entry", scriptBeforeFEntry},
		{"before evidence keys", scriptBeforeEvidenceKeys},
	} {
		t.Run(before.name, func(t *testing.T) { upgradeFrom(t, before.src) })
	}
}

// A rolling upgrade: for a while, detect instances with the earlier script
// and with this one apply a stream's batches in turn, on the same state.
// Every alert, whichever script fired it, counts the window's transfers,
// and every alert this script fires lists its oldest (the earlier script
// does not know evidence keys: its own alerts may list fewer while both run).
func TestRollingUpgradeSharesTheState(t *testing.T) {
	onEngines(t, func(t *testing.T, rdb *redis.Client) {
		cfg := defaultCfg
		cfg.MaxTransactions = 4
		ts := outOfOrder(7, 10, "r", func(i int) int64 { return 500_00 + int64(i%5) })
		current := window.Script
		defer func() { window.Script = current }()
		earlier := redis.NewScript(scriptBeforeEvidenceKeys)
		s := newStore(t, rdb, cfg)
		fired, firedNew := 0, 0
		for i, n := 0, 0; i < len(ts); i, n = i+n, n%13+1 {
			n = min(n, len(ts)-i)
			if n == 0 {
				n = 1
			}
			old := (i/n)%2 == 0
			window.Script = current
			if old {
				window.Script = earlier
			}
			if err := window.Script.Load(context.Background(), rdb).Err(); err != nil {
				t.Fatal(err)
			}
			out, err := s.Apply(context.Background(), ts[i:i+n])
			if err != nil {
				t.Fatal(err)
			}
			for x, o := range out {
				for _, a := range o.Alerts {
					fired++
					known := make([]int, i+x+1)
					for k := range known {
						known[k] = k
					}
					if old {
						checkCount(t, a, ts, known)
					} else {
						firedNew++
						checkListsOldest(t, a, ts, known, 4)
					}
				}
			}
		}
		if firedNew < 10 || fired == firedNew {
			t.Fatalf("%d alerts, %d by this script: the test would prove little", fired, firedNew)
		}
	})
}

// During a rolling upgrade, the earlier script appends to a bucket whose
// list this one moved to a key (under STUB); an alert this script fires in
// another bucket of the window lists that entry too.
func TestEarlierScriptsEntriesAreListed(t *testing.T) {
	onEngines(t, func(t *testing.T, rdb *redis.Client) {
		cfg := defaultCfg
		cfg.MaxTransactions = 2
		current := window.Script
		defer func() { window.Script = current }()
		s := newStore(t, rdb, cfg)
		use := func(sc *redis.Script) {
			window.Script = sc
			if err := sc.Load(context.Background(), rdb).Err(); err != nil {
				t.Fatal(err)
			}
		}
		// Newest first, so each is among the oldest 2: the fourth moves the
		// bucket's list to a key.
		for i := 10; i >= 7; i-- {
			applyOne(t, s, tx(fmt.Sprintf("y%d", i), at(time.Duration(i)*time.Second), "A", "B", 100_00))
		}
		if ek := checkEvidenceKeys(t, rdb, s, "A", "B", cfg.MaxTransactions); len(ek) != 1 {
			t.Fatalf("evidence keys %v, want one", ek)
		}
		use(redis.NewScript(scriptBeforeEvidenceKeys))
		applyOne(t, s, tx("old", at(0), "A", "B", 100_00))
		use(current)
		o := applyOne(t, s, tx("fires", at(3*time.Minute), "A", "B", 9700_00))
		if len(o.Alerts) == 0 {
			t.Fatalf("no alert: %+v", o)
		}
		for _, a := range o.Alerts {
			if !a.WindowStart.After(at(0)) {
				if a.Count != 6 || len(a.Transactions) != 2 || a.Transactions[0].ID != "old" || a.Transactions[1].ID != "y7" {
					t.Errorf("alert %s: count %d, listed %+v; want 6, old and y7", a.WindowStart, a.Count, a.Transactions)
				}
			}
		}
	})
}

func upgradeFrom(t *testing.T, scriptBefore string) {
	onEngines(t, func(t *testing.T, rdb *redis.Client) {
		for _, batch := range []int{1, 500} {
			cfg := defaultCfg
			cfg.MaxTransactions = 4
			cfg.KeyPrefix = fmt.Sprintf("up%d:", batch)
			// 40 senders, so that many pairs are seen once before the upgrade
			// and again after it.
			ts := outOfOrder(int64(batch), 40, "u", func(i int) int64 { return 1000_00 + int64(i%7) })
			current := window.Script
			window.Script = redis.NewScript(scriptBefore)
			before := newStore(t, rdb, cfg)
			window.Script = current
			// Before the upgrade: each pair's first transfer alone (a pair seen
			// once), then the first half of the stream of senders A0 to A19
			// only; so A20 to A39 are pairs seen once when it comes.
			var order []int
			for i := range ts {
				if i < 40 || (i < len(ts)/2 && i%40 < 20) {
					order = append(order, i)
				}
			}
			upgradeAt := len(order)
			for i := range ts {
				if !(i < 40 || (i < len(ts)/2 && i%40 < 20)) {
					order = append(order, i)
				}
			}
			fired := 0
			var firedBefore []transfer.Transfer
			// apply runs order[i:j] through st, checking each alert against
			// the transfers applied up to the one that fired it.
			apply := func(st *window.Store, i, j int) {
				part := make([]transfer.Transfer, 0, j-i)
				for _, k := range order[i:j] {
					part = append(part, ts[k])
				}
				out, err := st.Apply(context.Background(), part)
				if err != nil {
					t.Fatal(err)
				}
				for x, o := range out {
					if len(o.Alerts) > 0 && i < upgradeAt {
						firedBefore = append(firedBefore, part[x])
					}
					for _, a := range o.Alerts {
						fired++
						checkListsOldest(t, a, ts, order[:i+x+1], 4)
					}
				}
			}
			window.Script = redis.NewScript(scriptBefore)
			for i := range 40 {
				apply(before, i, i+1)
			}
			for i := 40; i < upgradeAt; i += batch {
				apply(before, i, min(i+batch, upgradeAt))
			}
			window.Script = current
			if len(firedBefore) == 0 {
				t.Fatalf("batch %d: no alert before the upgrade: the test would prove little", batch)
			}
			after := newStore(t, rdb, cfg)
			for _, tr := range firedBefore[:min(3, len(firedBefore))] {
				if o := applyOne(t, after, tr); o.Status != window.Duplicate || len(o.Alerts) == 0 {
					t.Fatalf("batch %d: redelivery of %s after the upgrade: %+v", batch, tr.ID, o)
				}
			}
			firedAtUpgrade := fired
			for i := upgradeAt; i < len(order); i += batch {
				apply(after, i, min(i+batch, len(order)))
			}
			if fired == firedAtUpgrade {
				t.Fatalf("batch %d: no alert after the upgrade", batch)
			}
		}
	})
}
