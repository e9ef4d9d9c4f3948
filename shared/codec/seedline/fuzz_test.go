package seedline_test

import (
	"testing"

	"github.com/fintrans/fintrans/shared/codec/seedline"
	"github.com/fintrans/fintrans/shared/transfer"
)

func FuzzParseLine(f *testing.F) {
	for _, s := range []string{"2017-07-23T01:06:47Z;66;26;7810", "Sunday, 23-Jul-17 01:06:47 UTC;66;26;7810.5",
		"2017-07-23T01:06:47.123456789+02:00;a;b;0.01", ";;;", "x;y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		tr, err := seedline.Parse(line)
		if err != nil {
			if !transfer.IsInputError(err) {
				t.Fatalf("not an input error: %v", err)
			}
			return
		}
		if tr.Amount <= 0 || tr.Time.IsZero() {
			t.Fatalf("accepted %q as %+v", line, tr)
		}
	})
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2017-07-23T01:06:47Z", "Sunday, 23-Jul-17 01:06:47 UTC", "9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := seedline.ParseTime(s)
		if err != nil {
			return
		}
		if tm.Before(transfer.MinTime) || tm.After(transfer.MaxTime) {
			t.Fatalf("accepted %q as %s, outside the supported range", s, tm)
		}
	})
}
