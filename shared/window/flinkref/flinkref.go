// Package flinkref is the reference the tests hold the detector to: the
// Flink job's semantics (keyBy(from, to), SlidingEventTimeWindows of size and
// slide, sum, filter > threshold) computed directly in memory, with no Redis;
// and the same per rule of a rule set (RuleAlerts: keyBy the rule's group,
// sum or count).
//
// Test tooling, not product: no function image and no serving path of the
// binary (serve, consume) links it (go list -deps proves it; see README).
package flinkref

import (
	"time"

	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/rules"
	"github.com/fintrans/fintrans/shared/transfer"
)

// Key is one (pair, window).
type Key struct {
	From, To string
	Start    int64 // window start, Unix ms
}

// AlertID is the id the detector gives the alert of this key.
func (k Key) AlertID() string { return transfer.AlertID(k.From, k.To, time.UnixMilli(k.Start)) }

// Windows is SlidingEventTimeWindows.assignWindows with offset 0: the starts
// of every window [s, s+size) holding t (all in ms).
func Windows(t, size, slide int64) []int64 {
	var out []int64
	last := t - (t+slide)%slide // TimeWindow.getWindowStartWithOffset
	for s := last; s > t-size; s -= slide {
		out = append(out, s)
	}
	return out
}

// Alerts sums every transfer (deduplicated by source and id) into every
// window holding it and returns the (pair, window)s whose total is strictly
// over the threshold, with their final totals.
func Alerts(ts []transfer.Transfer, threshold money.Cents, size, slide time.Duration) map[Key]money.Cents {
	out := map[Key]money.Cents{}
	for k, v := range Sums(ts, size, slide) {
		if v > threshold {
			out[k] = v
		}
	}
	return out
}

// Sums is the total of every (pair, window) that holds a transfer.
func Sums(ts []transfer.Transfer, size, slide time.Duration) map[Key]money.Cents {
	seen := map[[2]string]bool{}
	sums := map[Key]money.Cents{}
	for _, t := range ts {
		id := [2]string{t.Source, t.ID}
		if seen[id] {
			continue
		}
		seen[id] = true
		for _, s := range Windows(t.Time.UnixMilli(), size.Milliseconds(), slide.Milliseconds()) {
			sums[Key{From: t.From, To: t.To, Start: s}] += t.Amount
		}
	}
	return sums
}

// RuleKey is one (rule, group, window): From and To are the group (both for
// a pair rule, From for a sender rule, To for a receiver rule).
type RuleKey struct {
	Rule     string
	GroupBy  rules.GroupBy
	From, To string
	Start    int64 // window start, Unix ms
}

// AlertID is the id the detector gives the alert of this key.
func (k RuleKey) AlertID() string {
	return transfer.RuleAlertID(k.Rule, string(k.GroupBy), k.From, k.To, time.UnixMilli(k.Start))
}

// Window is a window's final content: its aggregate (cents for a sum,
// transfers for a count), its sum of amounts and its number of transfers.
type Window struct {
	Value int64
	Total money.Cents
	Count int
}

// RuleWindows computes every enabled rule's windows as Flink would
// (keyBy the rule's group, SlidingEventTimeWindows of its window and slide,
// sum or count): every (rule, group, window) holding a transfer. A
// transfer delivered more than once (same source and id) counts once per
// group.
func RuleWindows(ts []transfer.Transfer, set []rules.Rule) map[RuleKey]Window {
	return walk(ts, set, nil)
}

// walk applies ts in their order to the windows of every enabled rule of
// set, each transfer once per group (a redelivery counts once), calls step,
// when set, with a window's content before and after each transfer, and
// returns the windows' final content.
func walk(ts []transfer.Transfer, set []rules.Rule, step func(r rules.Rule, k RuleKey, before, after Window, t transfer.Transfer)) map[RuleKey]Window {
	out := map[RuleKey]Window{}
	for _, r := range set {
		if !r.Enabled {
			continue
		}
		seen := map[[4]string]bool{}
		for _, t := range ts {
			g := groupOf(r, t)
			id := [4]string{g.From, g.To, t.Source, t.ID}
			if seen[id] {
				continue
			}
			seen[id] = true
			for _, s := range Windows(t.Time.UnixMilli(), r.Window.Milliseconds(), r.Slide.Milliseconds()) {
				k := g
				k.Start = s
				before := out[k]
				w := before
				w.Total += t.Amount
				w.Count++
				if r.Aggregate == rules.Count {
					w.Value = int64(w.Count)
				} else {
					w.Value = int64(w.Total)
				}
				out[k] = w
				if step != nil {
					step(r, k, before, w, t)
				}
			}
		}
	}
	return out
}

// RuleAlerts is the (rule, group, window)s whose aggregate ends strictly
// over the rule's threshold, with their final content.
func RuleAlerts(ts []transfer.Transfer, set []rules.Rule) map[RuleKey]Window {
	thr := map[string]int64{}
	for _, r := range set {
		thr[r.ID] = r.Threshold
	}
	out := map[RuleKey]Window{}
	for k, w := range RuleWindows(ts, set) {
		if w.Value > thr[k.Rule] {
			out[k] = w
		}
	}
	return out
}

// Crossing is what the alert of a (rule, group, window) holds when the
// transfers are applied one after another in the given order: the window's
// content just after the transfer that took its aggregate over the
// threshold, and that transfer's time.
type Crossing struct {
	Window
	Time time.Time
}

// Crossings applies ts in their order (arrival order, not event time) and
// returns, per (rule, group, window) that goes over its rule's threshold,
// the crossing: exactly what the detector's alert must carry when it
// applies the transfers in this order.
func Crossings(ts []transfer.Transfer, set []rules.Rule) map[RuleKey]Crossing {
	out := map[RuleKey]Crossing{}
	walk(ts, set, func(r rules.Rule, k RuleKey, before, after Window, t transfer.Transfer) {
		if before.Value <= r.Threshold && after.Value > r.Threshold {
			out[k] = Crossing{Window: after, Time: t.Time}
		}
	})
	return out
}

// groupOf is the group of r that t belongs to (no window start yet).
func groupOf(r rules.Rule, t transfer.Transfer) RuleKey {
	g := RuleKey{Rule: r.ID, GroupBy: r.GroupBy}
	switch r.GroupBy {
	case rules.From:
		g.From = t.From
	case rules.To:
		g.To = t.To
	default:
		g.From, g.To = t.From, t.To
	}
	return g
}
