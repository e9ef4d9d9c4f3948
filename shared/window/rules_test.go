package window_test

import (
	"context"
	"math/rand"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/redistest"
	"github.com/fintrans/fintrans/shared/rules"
	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/window"
	"github.com/fintrans/fintrans/shared/window/flinkref"
)

// mixedRules mixes pair, sender and receiver rules, sums and counts, the
// windows 24h/1h, 30m/10m, 7m/3m, 4m/4m and 10m/2m, a threshold in cents,
// and a disabled rule.
var mixedRules = mustParse(`
rules:
  - id: structuring
    groupBy: pair
    aggregate: sum
    threshold: 10000
    window: 10m
    slide: 2m
  - id: daily-sender-total
    groupBy: from
    aggregate: sum
    threshold: 25000.01
    window: 24h
    slide: 1h
    lateness: 2h
    maxTransactions: 7
  - id: fan-in
    groupBy: to
    aggregate: count
    threshold: 12
    window: 30m
    slide: 10m
  - id: velocity
    groupBy: from
    aggregate: count
    threshold: 5
    window: 4m
    slide: 4m
    maxTransactions: 3
  - id: pair-7m
    groupBy: pair
    aggregate: sum
    threshold: "4999.99"
    window: 7m
    slide: 3m
  - id: receiver-sum
    groupBy: to
    aggregate: sum
    threshold: 20000.5
    window: 30m
    slide: 10m
  - id: off
    groupBy: from
    aggregate: count
    threshold: 0
    window: 4m
    slide: 4m
    enabled: false
`)

var ruleDefaults = rules.Defaults{Threshold: 10000_00, Window: 10 * time.Minute, Slide: 2 * time.Minute, Lateness: time.Hour, MaxTransactions: 5}

func mustParse(y string) []rules.Rule {
	s, err := rules.Parse([]byte(y), ruleDefaults)
	if err != nil {
		panic(err)
	}
	return s.Rules
}

func defaultRules() []rules.Rule {
	s, err := rules.Default(ruleDefaults)
	if err != nil {
		panic(err)
	}
	return s.Rules
}

func newRules(t *testing.T, rdb redis.UniversalClient, set []rules.Rule) *window.Rules {
	t.Helper()
	r, err := window.NewRules(rdb, window.Config{TTL: 24 * time.Hour}, set)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

type ruleCollector struct {
	mu     sync.Mutex
	alerts map[flinkref.RuleKey][]transfer.Alert
	status map[window.Status]int
}

func keyOf(a transfer.Alert) flinkref.RuleKey {
	return flinkref.RuleKey{Rule: a.Rule, GroupBy: rules.GroupBy(a.GroupBy), From: a.From, To: a.To, Start: a.WindowStart.UnixMilli()}
}

func (c *ruleCollector) apply(t *testing.T, ap window.Applier, ts []transfer.Transfer, batch int) {
	t.Helper()
	for len(ts) > 0 {
		n := min(batch, len(ts))
		out, err := ap.Apply(context.Background(), ts[:n])
		if err != nil {
			t.Error(err)
			return
		}
		c.mu.Lock()
		for _, o := range out {
			c.status[o.Status]++
			for _, a := range o.Alerts {
				c.alerts[keyOf(a)] = append(c.alerts[keyOf(a)], a)
			}
		}
		c.mu.Unlock()
		ts = ts[n:]
	}
}

// check holds the alerts to the reference: one alert per (rule, group,
// window) over its threshold and none other; each with the rule's fields,
// a value over the threshold and at most the window's final one, its id,
// evidence from the window and the group (with the other account where the
// group does not fix it). With exact (one worker, transfers applied in the
// order given), each alert is the crossing's: value, total, count and time
// of the transfer that took the window over.
func (c *ruleCollector) check(t *testing.T, set []rules.Rule, all []transfer.Transfer, arrival []transfer.Transfer, exact bool) {
	t.Helper()
	want := flinkref.RuleAlerts(all, set)
	if len(want) == 0 {
		t.Fatal("the stream produced no reference alert: the test would prove nothing")
	}
	byRule := map[string]rules.Rule{}
	for _, r := range set {
		byRule[r.ID] = r
	}
	var cross map[flinkref.RuleKey]flinkref.Crossing
	if exact {
		cross = flinkref.Crossings(arrival, set)
	}
	byID := map[string]transfer.Transfer{}
	for _, tr := range all {
		byID[tr.ID] = tr
	}
	fired := map[string]int{}
	for k, w := range want {
		fired[k.Rule]++
		got := c.alerts[k]
		if len(got) != 1 {
			t.Errorf("%+v: want exactly one alert (reference %+v), got %d", k, w, len(got))
			continue
		}
		a, r := got[0], byRule[k.Rule]
		if a.Aggregate != string(r.Aggregate) || a.Threshold.N != r.Threshold || a.Value.Count != (r.Aggregate == rules.Count) ||
			a.Threshold.Count != a.Value.Count || !a.WindowEnd.Equal(a.WindowStart.Add(r.Window)) {
			t.Errorf("%+v: alert fields %+v do not match rule %+v", k, a, r)
		}
		if a.Value.N <= r.Threshold || a.Value.N > w.Value || a.Total > w.Total || a.Count > w.Count || a.Count <= 0 {
			t.Errorf("%+v: alert value %s total %s count %d, want over %d and at most the final %+v", k, a.Value, a.Total, a.Count, r.Threshold, w)
		}
		if (r.Aggregate == rules.Count && a.Value.N != int64(a.Count)) || (r.Aggregate == rules.Sum && a.Value.N != int64(a.Total)) {
			t.Errorf("%+v: value %s is not the window's %s (total %s, count %d)", k, a.Value, r.Aggregate, a.Total, a.Count)
		}
		if a.ID() != k.AlertID() {
			t.Errorf("%+v: alert id %s, want %s", k, a.ID(), k.AlertID())
		}
		if exact {
			x := cross[k]
			if a.Value.N != x.Value || a.Total != x.Total || a.Count != x.Count || !a.Time.Equal(x.Time) {
				t.Errorf("%+v: alert %s/%s/%d at %s, want the crossing's %+v", k, a.Value, a.Total, a.Count, a.Time, x)
			}
		}
		if len(a.Transactions) > r.MaxTransactions || a.Truncated != (len(a.Transactions) < a.Count) {
			t.Errorf("%+v: %d listed of %d (cap %d), truncated %v", k, len(a.Transactions), a.Count, r.MaxTransactions, a.Truncated)
		}
		for i, e := range a.Transactions {
			tr, ok := byID[e.ID]
			in := !e.Time.Before(a.WindowStart) && e.Time.Before(a.WindowEnd)
			var group bool
			switch r.GroupBy {
			case rules.Pair:
				group = tr.From == k.From && tr.To == k.To && e.From == "" && e.To == ""
			case rules.From:
				group = tr.From == k.From && e.To == tr.To && e.From == ""
			case rules.To:
				group = tr.To == k.To && e.From == tr.From && e.To == ""
			}
			if !ok || !in || !group || e.Amount != tr.Amount || !e.Time.Equal(tr.Time) {
				t.Errorf("%+v: listed transfer %+v is not one of the window's (%+v)", k, e, tr)
			}
			if i > 0 && e.Time.Before(a.Transactions[i-1].Time) {
				t.Errorf("%+v: evidence not oldest first", k)
			}
		}
	}
	for k, got := range c.alerts {
		if _, ok := want[k]; !ok {
			t.Errorf("%+v: %d alerts that the reference does not have", k, len(got))
		}
	}
	for _, r := range set {
		if r.Enabled && fired[r.ID] == 0 {
			t.Errorf("rule %s fired no alert in the reference: the stream does not test it", r.ID)
		}
		if !r.Enabled && fired[r.ID] != 0 {
			t.Errorf("disabled rule %s fired", r.ID)
		}
	}
}

// ruleScenarios runs the order and delivery scenarios of a rule set against
// one Redis.
func ruleScenarios(t *testing.T, rdb redis.UniversalClient, set []rules.Rule) {
	shuffle := func(rng *rand.Rand, ts []transfer.Transfer) []transfer.Transfer {
		rng.Shuffle(len(ts), func(i, j int) { ts[i], ts[j] = ts[j], ts[i] })
		return ts
	}
	cases := []struct {
		name     string
		accounts []string
		n        int
		span     time.Duration
		maxCents int64
		prepare  func(rng *rand.Rand, ts []transfer.Transfer) []transfer.Transfer
		workers  int
		twice    bool
	}{
		{name: "in order", accounts: plainAccounts, n: 1500, span: 3 * time.Hour, maxCents: 4000_00},
		{name: "shuffled within lateness", accounts: plainAccounts, n: 1200, span: 50 * time.Minute, maxCents: 3000_00, prepare: shuffle},
		{name: "every transfer twice", accounts: plainAccounts, n: 800, span: 50 * time.Minute, maxCents: 3000_00, twice: true,
			prepare: func(rng *rand.Rand, ts []transfer.Transfer) []transfer.Transfer {
				return shuffle(rng, append(slices.Clone(ts), ts...))
			}},
		{name: "4 concurrent workers", accounts: plainAccounts, n: 1500, span: 50 * time.Minute, maxCents: 3000_00, workers: 4, prepare: shuffle},
		{name: "odd account ids", accounts: weirdAccounts, n: 1500, span: 40 * time.Minute, maxCents: 4000_00, prepare: shuffle},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			flush(t, rdb)
			rng := rand.New(rand.NewSource(int64(7 + i)))
			ts := stream(rng, tc.n, tc.accounts, tc.span, tc.maxCents)
			all := slices.Clone(ts)
			if tc.prepare != nil {
				ts = tc.prepare(rng, ts)
			}
			r := newRules(t, rdb, set)
			c := &ruleCollector{alerts: map[flinkref.RuleKey][]transfer.Alert{}, status: map[window.Status]int{}}
			if tc.workers <= 1 {
				c.apply(t, r, ts, 1+rng.Intn(64))
			} else {
				var wg sync.WaitGroup
				for w := 0; w < tc.workers; w++ {
					var part []transfer.Transfer
					for k := w; k < len(ts); k += tc.workers {
						part = append(part, ts[k])
					}
					wg.Add(1)
					go func(batch int) { defer wg.Done(); c.apply(t, r, part, batch) }(1 + w*7)
				}
				wg.Wait()
			}
			if c.status[window.Late] != 0 {
				t.Fatalf("%d transfers refused as late in a stream inside the lateness", c.status[window.Late])
			}
			if tc.twice {
				if c.status[window.Duplicate] != tc.n || c.status[window.Counted] != tc.n {
					t.Fatalf("counted %d, duplicates %d; want %d each", c.status[window.Counted], c.status[window.Duplicate], tc.n)
				}
				// A redelivery fires again exactly the alerts its first
				// delivery fired.
				for k, as := range c.alerts {
					if len(as) != 2 || as[0].ID() != as[1].ID() || as[0].Value != as[1].Value || as[0].Count != as[1].Count || as[0].Total != as[1].Total {
						t.Errorf("%+v: want the alert twice with the same id and content, got %d", k, len(as))
					}
					c.alerts[k] = as[:1]
				}
			}
			c.check(t, set, all, ts, tc.workers <= 1 && !tc.twice)
		})
	}
}

func TestRulesMatchReference(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	t.Run("default", func(t *testing.T) { ruleScenarios(t, rdb, defaultRules()) })
	t.Run("mixed", func(t *testing.T) { ruleScenarios(t, rdb, mixedRules) })
}

func TestRulesMatchReferenceOnEmbedded(t *testing.T) {
	rdb := redistest.StartEmbedded(t)
	t.Run("default", func(t *testing.T) { ruleScenarios(t, rdb, defaultRules()) })
	t.Run("mixed", func(t *testing.T) { ruleScenarios(t, rdb, mixedRules) })
}

func TestRulesMatchReferenceOnCluster(t *testing.T) {
	rdb := redistest.StartCluster(t, 3).Client(t)
	t.Run("mixed", func(t *testing.T) { ruleScenarios(t, rdb, mixedRules) })

	// One group's keys share a slot; rules and groups never share keys.
	r := newRules(t, rdb, mixedRules)
	ctx := context.Background()
	seen := map[string]string{}
	for _, s := range r.Stores() {
		for _, a := range weirdAccounts {
			for _, b := range weirdAccounts {
				keys := s.Keys(a, b)
				s0, _ := rdb.ClusterKeySlot(ctx, keys[0]).Result()
				s1, _ := rdb.ClusterKeySlot(ctx, keys[1]).Result()
				if s0 != s1 {
					t.Fatalf("rule %s, %q->%q: keys in slots %d and %d", s.Rule().ID, a, b, s0, s1)
				}
				group := transfer.GroupKey(string(s.Rule().GroupBy), a, b)
				who := s.Rule().ID + " " + group
				if prev, ok := seen[keys[0]]; ok && prev != who {
					t.Fatalf("%s and %s share key %s", prev, who, keys[0])
				}
				seen[keys[0]] = who
			}
		}
	}
}

// A rule changed at runtime keeps its windows when its threshold (or
// lateness, maxTransactions) changes, and starts afresh when its group,
// aggregate, window or slide change (its StateKey, in every key).
func TestRuleChangeKeepsOrRestartsWindows(t *testing.T) {
	onEngines(t, func(t *testing.T, rdb *redis.Client) {
		rule := rules.Rule{ID: "r", GroupBy: rules.From, Aggregate: rules.Sum, Threshold: 100_00, Window: 4 * time.Minute,
			Slide: 4 * time.Minute, Lateness: time.Hour, MaxTransactions: 5, Enabled: true}
		r := newRules(t, rdb, []rules.Rule{rule})
		apply := func(tr transfer.Transfer) window.Outcome {
			t.Helper()
			out, err := r.Apply(context.Background(), []transfer.Transfer{tr})
			if err != nil {
				t.Fatal(err)
			}
			return out[0]
		}
		if o := apply(tx("k1", at(0), "A", "B", 80_00)); len(o.Alerts) != 0 {
			t.Fatalf("under 100: %+v", o)
		}
		// Threshold 100 -> 150: the window keeps its 80.
		rule.Threshold = 150_00
		if err := r.Set([]rules.Rule{rule}); err != nil {
			t.Fatal(err)
		}
		if o := apply(tx("k2", at(time.Minute), "A", "C", 60_00)); len(o.Alerts) != 0 {
			t.Fatalf("140 is under the new 150: %+v", o)
		}
		o := apply(tx("k3", at(2*time.Minute), "A", "D", 10_01))
		if len(o.Alerts) != 1 || o.Alerts[0].Total != 150_01 || o.Alerts[0].Count != 3 || o.Alerts[0].Threshold.N != 150_00 {
			t.Fatalf("the kept window crosses the new threshold: %+v", o)
		}
		if o := apply(tx("k1", at(0), "A", "B", 80_00)); o.Status != window.Duplicate {
			t.Fatalf("dedupe kept across the change: %+v", o)
		}
		// Window 4m -> 2m/2m: new state; the earlier transfers are not in it.
		rule.Window, rule.Slide = 2*time.Minute, 2*time.Minute
		if err := r.Set([]rules.Rule{rule}); err != nil {
			t.Fatal(err)
		}
		if o := apply(tx("k4", at(3*time.Minute), "A", "E", 150_00)); len(o.Alerts) != 0 || o.Status != window.Counted {
			t.Fatalf("a fresh window holds only its own 150: %+v", o)
		}
		if o := apply(tx("k1", at(0), "A", "B", 80_00)); o.Status != window.Counted {
			t.Fatalf("a fresh state has not seen k1: %+v", o)
		}
		// Disabled: evaluates nothing.
		rule.Enabled = false
		if err := r.Set([]rules.Rule{rule}); err != nil {
			t.Fatal(err)
		}
		if o := apply(tx("k5", at(3*time.Minute), "A", "E", 1000_00)); len(o.Alerts) != 0 || len(r.Stores()) != 0 {
			t.Fatalf("a disabled rule fired: %+v", o)
		}
	})
}

// A transfer late for one rule's group and in time for another's counts
// for the other, names the rule it was late for, and fires only there.
func TestLateForOneRuleOnly(t *testing.T) {
	onEngines(t, func(t *testing.T, rdb *redis.Client) {
		set := []rules.Rule{
			{ID: "pair", GroupBy: rules.Pair, Aggregate: rules.Sum, Threshold: 100_00, Window: 4 * time.Minute, Slide: 4 * time.Minute, Lateness: time.Hour, MaxTransactions: 5, Enabled: true},
			{ID: "sender", GroupBy: rules.From, Aggregate: rules.Count, Threshold: 0, Window: 4 * time.Minute, Slide: 4 * time.Minute, Lateness: time.Minute, MaxTransactions: 5, Enabled: true},
		}
		r := newRules(t, rdb, set)
		ctx := context.Background()
		if _, err := r.Apply(ctx, []transfer.Transfer{tx("l1", at(time.Hour), "A", "B", 1)}); err != nil {
			t.Fatal(err)
		}
		out, err := r.Apply(ctx, []transfer.Transfer{tx("l2", at(10*time.Minute), "A", "C", 200_00)})
		if err != nil {
			t.Fatal(err)
		}
		o := out[0]
		if o.Status != window.Counted || !slices.Equal(o.LateFor, []string{"sender"}) || len(o.Alerts) != 1 || o.Alerts[0].Rule != "pair" {
			t.Fatalf("late for the sender rule only: %+v", o)
		}
		// Late for every rule: Late, nothing changed.
		out, err = r.Apply(ctx, []transfer.Transfer{tx("l3", at(-time.Millisecond), "A", "B", 200_00)})
		if err != nil || out[0].Status != window.Late || len(out[0].LateFor) != 2 || len(out[0].Alerts) != 0 {
			t.Fatalf("late for both: %v %+v", err, out)
		}
	})
}
