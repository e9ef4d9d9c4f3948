// Package money holds exact amounts of money as integer cents. Amounts are
// never parsed through float64: "7810.25" is 781025 cents, exactly.
package money

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Cents is an amount of money in hundredths of the currency unit.
type Cents int64

// Max is the largest amount accepted for one transfer (one billion). It keeps
// every window total far inside the range that Redis's Lua numbers (IEEE
// doubles) hold exactly.
const Max Cents = 1_000_000_000_00

// ErrSyntax and friends describe why an amount was refused.
var (
	ErrSyntax   = errors.New("amount is not a decimal number such as 7810 or 7810.25")
	ErrFraction = errors.New("amount has more than two fraction digits")
	ErrNotPos   = errors.New("amount must be greater than zero")
	ErrTooLarge = fmt.Errorf("amount is larger than %s", Max)
)

// Parse reads a positive decimal with at most two fraction digits:
// "7810", "7810.5", "7810.25", "0.01". Signs, exponents, spaces, thousands
// separators, "NaN" and "Inf" are refused.
func Parse(s string) (Cents, error) {
	if s == "" || len(s) > 32 {
		return 0, ErrSyntax
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || !digits(whole) || (hasDot && (frac == "" || !digits(frac))) {
		return 0, ErrSyntax
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > 2 {
		return 0, ErrFraction
	}
	whole = strings.TrimLeft(whole, "0")
	if len(whole) > 12 {
		return 0, ErrTooLarge
	}
	var c int64
	if whole != "" {
		w, err := strconv.ParseInt(whole, 10, 64)
		if err != nil {
			return 0, ErrSyntax
		}
		c = w * 100
	}
	for len(frac) < 2 {
		frac += "0"
	}
	f, _ := strconv.ParseInt(frac, 10, 64)
	c += f
	if c <= 0 {
		return 0, ErrNotPos
	}
	if Cents(c) > Max {
		return 0, ErrTooLarge
	}
	return Cents(c), nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// String formats the amount with exactly two fraction digits: "7810.25".
func (c Cents) String() string { return string(c.Append(make([]byte, 0, 24))) }

// Append appends the amount as String writes it ("1234.05", "-0.50") to b.
func (c Cents) Append(b []byte) []byte {
	if c == math.MinInt64 { // -c would overflow
		return fmt.Appendf(b, "-%d.%02d", uint64(c)/100, uint64(c)%100)
	}
	if c < 0 {
		b = append(b, '-')
		c = -c
	}
	b = strconv.AppendInt(b, int64(c)/100, 10)
	b = append(b, '.', byte('0'+int64(c)%100/10), byte('0'+int64(c)%10))
	return b
}

// MarshalJSON writes the amount as a JSON number with two fraction digits.
func (c Cents) MarshalJSON() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalJSON accepts a JSON number or a JSON string holding a decimal.
func (c *Cents) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		u, err := strconv.Unquote(s)
		if err != nil {
			return ErrSyntax
		}
		s = u
	}
	v, err := Parse(s)
	if err != nil {
		return err
	}
	*c = v
	return nil
}
