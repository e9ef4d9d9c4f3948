package flinkref_test

import (
	"testing"
	"time"

	"github.com/fintrans/fintrans/shared/rules"
	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/window/flinkref"
)

func TestRuleAlertsPerGroupAndAggregate(t *testing.T) {
	at := time.Date(2017, 7, 23, 1, 0, 0, 0, time.UTC)
	set := []rules.Rule{
		{ID: "pair", GroupBy: rules.Pair, Aggregate: rules.Sum, Threshold: 100_00, Window: 4 * time.Minute, Slide: 4 * time.Minute, Enabled: true},
		{ID: "sender", GroupBy: rules.From, Aggregate: rules.Count, Threshold: 2, Window: 4 * time.Minute, Slide: 4 * time.Minute, Enabled: true},
		{ID: "receiver", GroupBy: rules.To, Aggregate: rules.Sum, Threshold: 100_00, Window: 4 * time.Minute, Slide: 4 * time.Minute, Enabled: true},
		{ID: "off", GroupBy: rules.From, Aggregate: rules.Count, Threshold: 0, Window: 4 * time.Minute, Slide: 4 * time.Minute},
	}
	ts := []transfer.Transfer{
		{Source: "/s", ID: "1", Time: at, From: "a", To: "b", Amount: 60_00},
		{Source: "/s", ID: "2", Time: at.Add(time.Minute), From: "a", To: "c", Amount: 60_00},
		{Source: "/s", ID: "3", Time: at.Add(2 * time.Minute), From: "d", To: "b", Amount: 50_00},
		{Source: "/s", ID: "3", Time: at.Add(2 * time.Minute), From: "d", To: "b", Amount: 50_00}, // a redelivery
		{Source: "/s", ID: "4", Time: at.Add(3 * time.Minute), From: "a", To: "b", Amount: 1},
	}
	got := flinkref.RuleAlerts(ts, set)
	start := at.UnixMilli()
	want := map[flinkref.RuleKey]flinkref.Window{
		// a sends three transfers: over a count of 2.
		{Rule: "sender", GroupBy: rules.From, From: "a", Start: start}: {Value: 3, Total: 120_01, Count: 3},
		// b receives 60 + 50 + 0.01 (the redelivery once): over 100.
		{Rule: "receiver", GroupBy: rules.To, To: "b", Start: start}: {Value: 110_01, Total: 110_01, Count: 3},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%+v: %+v, want %+v", k, got[k], w)
		}
	}
	// In arrival order, the sender's window goes over with its third
	// transfer, the receiver's with d's 50.
	x := flinkref.Crossings(ts, set)
	if c := x[flinkref.RuleKey{Rule: "sender", GroupBy: rules.From, From: "a", Start: start}]; c.Value != 3 || !c.Time.Equal(at.Add(3*time.Minute)) {
		t.Errorf("sender crossing %+v", c)
	}
	if c := x[flinkref.RuleKey{Rule: "receiver", GroupBy: rules.To, To: "b", Start: start}]; c.Value != 110_00 || c.Count != 2 || !c.Time.Equal(at.Add(2*time.Minute)) {
		t.Errorf("receiver crossing %+v", c)
	}
}
