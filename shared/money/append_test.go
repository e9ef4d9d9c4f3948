package money

import (
	"fmt"
	"math"
	"testing"
)

// Append writes what the formatting String had before it (fmt's
// "%d.%02d" with the sign in front) for every kind of value.
func TestAppendIsTheDecimalForm(t *testing.T) {
	old := func(c Cents) string {
		neg := c < 0
		if neg {
			c = -c
		}
		s := fmt.Sprintf("%d.%02d", int64(c)/100, int64(c)%100)
		if neg {
			return "-" + s
		}
		return s
	}
	for _, c := range []Cents{0, 1, 5, 9, 10, 99, 100, 101, 1234505, -1, -5, -50, -100, -12345, Max, -Max, math.MaxInt64, math.MinInt64 + 1} {
		if got := string(c.Append(nil)); got != old(c) || c.String() != got {
			t.Errorf("%d: Append %q, String %q, want %q", int64(c), got, c.String(), old(c))
		}
	}
	if got := Cents(math.MinInt64).String(); got != "-92233720368547758.08" {
		t.Errorf("MinInt64: %q", got)
	}
}
