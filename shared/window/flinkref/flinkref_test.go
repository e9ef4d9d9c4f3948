package flinkref_test

import (
	"slices"
	"testing"
	"time"

	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/window/flinkref"
)

func TestWindowsAreFlinksSlidingWindows(t *testing.T) {
	const m = int64(time.Minute / time.Millisecond)
	cases := []struct {
		t    int64
		want []int64
	}{
		{t: 10 * m, want: []int64{10 * m, 8 * m, 6 * m, 4 * m, 2 * m}},    // on a boundary: starts there
		{t: 10*m - 1, want: []int64{8 * m, 6 * m, 4 * m, 2 * m, 0}},       // just before it
		{t: 11 * m, want: []int64{10 * m, 8 * m, 6 * m, 4 * m, 2 * m}},    // inside a slide
		{t: 12*m + 1, want: []int64{12 * m, 10 * m, 8 * m, 6 * m, 4 * m}}, // t-size < s <= t
	}
	for _, tc := range cases {
		if got := flinkref.Windows(tc.t, 10*m, 2*m); !slices.Equal(got, tc.want) {
			t.Errorf("Windows(%d) = %v, want %v", tc.t, got, tc.want)
		}
	}
}

func TestAlertsAreStrictlyOverTheThresholdAndDeduplicated(t *testing.T) {
	at := time.Date(2017, 7, 23, 1, 0, 0, 0, time.UTC)
	ts := []transfer.Transfer{
		{Source: "/s", ID: "1", Time: at, From: "a", To: "b", Amount: 5000_00},
		{Source: "/s", ID: "2", Time: at.Add(time.Minute), From: "a", To: "b", Amount: 5000_00},
		{Source: "/s", ID: "2", Time: at.Add(time.Minute), From: "a", To: "b", Amount: 5000_00}, // a redelivery
	}
	if got := flinkref.Alerts(ts, 10000_00, 10*time.Minute, 2*time.Minute); len(got) != 0 {
		t.Fatalf("exactly 10000.00 (the redelivery counted once) is no alert: %v", got)
	}
	ts = append(ts, transfer.Transfer{Source: "/s", ID: "3", Time: at.Add(90 * time.Second), From: "a", To: "b", Amount: 1})
	if got := flinkref.Alerts(ts, 10000_00, 10*time.Minute, 2*time.Minute); len(got) != 5 {
		t.Fatalf("10000.01 in the five windows holding all three: %v", got)
	}
}
