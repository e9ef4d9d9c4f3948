// Package transfer is fintrans's domain: a money transfer, the fraud alert
// it may fire, their ids and their validation. Plain types only: no
// transport (HTTP, Kafka, CloudEvents) is known here; the codecs under
// codec/ map each transport's form onto these types and back.
package transfer

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fintrans/fintrans/shared/money"
)

// Limits on what one transfer may hold.
const (
	MaxAccountBytes = 128
	MaxIDBytes      = 256
	MaxSourceBytes  = 1024
)

// Times outside [MinTime, MaxTime] are refused.
var (
	MinTime = time.Unix(0, 0).UTC()
	MaxTime = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// Transfer is one validated money transfer.
type Transfer struct {
	Source string      // where it came from (a CloudEvent's source)
	ID     string      // its id there; (Source, ID) identifies the transfer
	Time   time.Time   // event time, UTC
	From   string      // account ids: 1..128 bytes of UTF-8, no control character
	To     string      //
	Amount money.Cents // > 0
}

// Item is one decoded element of a request or record: a transfer, or the
// reason it was refused. Ref names it in answers (its id, or its position).
type Item struct {
	Ref      string
	Transfer Transfer
	Err      error
}

// InputError is a refusal of bad input: the client's fault, never retried.
type InputError struct{ Reason string }

func (e *InputError) Error() string { return e.Reason }

// Bad is an *InputError with a formatted reason.
func Bad(format string, args ...any) error {
	return &InputError{Reason: fmt.Sprintf(format, args...)}
}

// IsInputError reports whether err is a refusal of bad input.
func IsInputError(err error) bool {
	var ie *InputError
	return errors.As(err, &ie)
}

// OneLine folds a message onto one line (reasons and answers are one line).
func OneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Clip shortens input quoted in a reason to 80 bytes.
func Clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// Validate checks every field of t.
func (t Transfer) Validate() error {
	if t.Source == "" || len(t.Source) > MaxSourceBytes {
		return Bad("source must be 1 to %d bytes", MaxSourceBytes)
	}
	if t.ID == "" || len(t.ID) > MaxIDBytes {
		return Bad("id must be 1 to %d bytes", MaxIDBytes)
	}
	if err := checkAccount("from", t.From); err != nil {
		return err
	}
	if err := checkAccount("to", t.To); err != nil {
		return err
	}
	if t.From == t.To {
		return Bad("from and to are the same account")
	}
	if err := CheckTime(t.Time); err != nil {
		return err
	}
	if t.Amount <= 0 {
		return Bad("%s", money.ErrNotPos)
	}
	if t.Amount > money.Max {
		return Bad("%s", money.ErrTooLarge)
	}
	return nil
}

// checkAccount holds an account id to SPEC section 2: 1 to 128 bytes of
// valid UTF-8 without control characters (C0, DEL, C1). Invalid UTF-8 is
// refused, never repaired (two different ids must never merge into one).
func checkAccount(field, a string) error {
	switch {
	case a == "":
		return Bad("%s is missing or empty", field)
	case len(a) > MaxAccountBytes:
		return Bad("%s is longer than %d bytes", field, MaxAccountBytes)
	case !utf8.ValidString(a):
		return Bad("%s is not valid UTF-8 (refused, never repaired)", field)
	}
	for i, r := range a {
		if IsControl(r) {
			return Bad("%s holds the control character U+%04X at byte %d: account ids may not hold control characters", field, r, i)
		}
	}
	return nil
}

// IsControl reports whether r is a control character an account id may not
// hold: C0 (U+0000-U+001F), DEL (U+007F) or C1 (U+0080-U+009F).
func IsControl(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r <= 0x9f)
}

// CheckTime refuses a missing time and one outside [MinTime, MaxTime].
func CheckTime(t time.Time) error {
	if t.IsZero() {
		return Bad("time is missing")
	}
	if t.Before(MinTime) || t.After(MaxTime) {
		return Bad("time %s is outside 1970-01-01 to 9999-12-31", t.UTC().Format(time.RFC3339))
	}
	return nil
}

// PairKey names a pair ("66->26"): the alert's subject, and the partition
// key that sends one pair's events to one Kafka partition (ids containing
// "->" may share a partition with another pair, which costs nothing).
func PairKey(from, to string) string { return from + "->" + to }
