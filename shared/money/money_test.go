package money_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/fintrans/fintrans/shared/money"
)

func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		want money.Cents
		err  error
	}{
		{"7810", 781000, nil}, {"7810.25", 781025, nil}, {"7810.5", 781050, nil}, {"0.01", 1, nil},
		{"00012.10", 1210, nil}, {"7810.250", 781025, nil}, {"1000000000", money.Max, nil},
		{"0", 0, money.ErrNotPos}, {"0.00", 0, money.ErrNotPos}, {"1.001", 0, money.ErrFraction},
		{"-1", 0, money.ErrSyntax}, {"+1", 0, money.ErrSyntax}, {"1e3", 0, money.ErrSyntax}, {"1,000", 0, money.ErrSyntax},
		{".5", 0, money.ErrSyntax}, {"5.", 0, money.ErrSyntax}, {"", 0, money.ErrSyntax}, {" 1", 0, money.ErrSyntax},
		{"NaN", 0, money.ErrSyntax}, {"1000000000.01", 0, money.ErrTooLarge}, {"99999999999999", 0, money.ErrTooLarge},
	}
	for _, tc := range cases {
		got, err := money.Parse(tc.in)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("Parse(%q) = %d, %v; want %d, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestJSON(t *testing.T) {
	var v struct{ A, B money.Cents }
	if err := json.Unmarshal([]byte(`{"A":7810.25,"B":"0.1"}`), &v); err != nil || v.A != 781025 || v.B != 10 {
		t.Fatalf("%v %+v", err, v)
	}
	b, _ := json.Marshal(v)
	if string(b) != `{"A":7810.25,"B":0.10}` {
		t.Fatalf("%s", b)
	}
	// 0.1 + 0.2 in float64 is not 0.3; in cents it is.
	var x, y money.Cents
	_ = json.Unmarshal([]byte("0.1"), &x)
	_ = json.Unmarshal([]byte("0.2"), &y)
	if (x + y).String() != "0.30" {
		t.Fatal("not exact")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"7810", "7810.25", "0.01", "1000000000", "1e3", "-0", "00.10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := money.Parse(s)
		if err != nil {
			return
		}
		if c <= 0 || c > money.Max {
			t.Fatalf("Parse(%q) = %d out of range", s, c)
		}
		back, err := money.Parse(c.String())
		if err != nil || back != c {
			t.Fatalf("round trip of %q: %s -> %d, %v", s, c, back, err)
		}
	})
}
