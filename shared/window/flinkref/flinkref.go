// Package flinkref is the reference the tests hold the detector to: the
// Flink job's semantics (keyBy(from, to), SlidingEventTimeWindows of size and
// slide, sum, filter > threshold) computed directly in memory, with no Redis.
//
// Test tooling, not product: no function image and no serving path of the
// binary (serve, consume) links it (go list -deps proves it; see README).
package flinkref

import (
	"time"

	"github.com/fintrans/fintrans/shared/money"
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
