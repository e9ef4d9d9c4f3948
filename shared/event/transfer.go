// Package event decodes transfers from every input form fintrans accepts
// (CloudEvents over HTTP in binary, structured and batch mode, the seed's
// line format, Kafka records, the OpenFaaS kafka-connector's requests) into
// one validated Transfer, and encodes and decodes fraud alerts.
package event

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/fintrans/fintrans/shared/money"
)

// CloudEvent types and sources of fintrans.
const (
	TransactionType = "io.fintrans.transaction"
	FraudType       = "io.fintrans.fraud.detected"
	GeneratorSource = "/fintrans/generator"
	DetectSource    = "/fintrans/detect"
	// HTTPLineSource is the source given to seed lines posted as a plain body.
	HTTPLineSource = "/fintrans/http"
	// PartitionKey is the CloudEvents extension that carries the pair.
	PartitionKey = "partitionkey"
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
	Source string      // CloudEvent source
	ID     string      // CloudEvent id; (Source, ID) identifies the transfer
	Time   time.Time   // event time, UTC
	From   string      // account ids: 1..128 bytes of UTF-8, no control character
	To     string      //
	Amount money.Cents // > 0
}

// InputError is a refusal of bad input: the client's fault, never retried.
type InputError struct{ Reason string }

func (e *InputError) Error() string { return e.Reason }

func bad(format string, args ...any) error {
	return &InputError{Reason: fmt.Sprintf(format, args...)}
}

// IsInputError reports whether err is a refusal of bad input.
func IsInputError(err error) bool {
	var ie *InputError
	return errors.As(err, &ie)
}

// Validate checks every field of t.
func (t Transfer) Validate() error {
	if t.Source == "" || len(t.Source) > MaxSourceBytes {
		return bad("source must be 1 to %d bytes", MaxSourceBytes)
	}
	if t.ID == "" || len(t.ID) > MaxIDBytes {
		return bad("id must be 1 to %d bytes", MaxIDBytes)
	}
	if err := checkAccount("from", t.From); err != nil {
		return err
	}
	if err := checkAccount("to", t.To); err != nil {
		return err
	}
	if t.From == t.To {
		return bad("from and to are the same account")
	}
	if err := checkTime(t.Time); err != nil {
		return err
	}
	if t.Amount <= 0 {
		return bad("%s", money.ErrNotPos)
	}
	if t.Amount > money.Max {
		return bad("%s", money.ErrTooLarge)
	}
	return nil
}

// checkAccount holds an account id to SPEC section 2: 1 to 128 bytes of
// valid UTF-8 without control characters (C0, DEL, C1). Invalid UTF-8 is
// refused, never repaired (two different ids must never merge into one).
func checkAccount(field, a string) error {
	switch {
	case a == "":
		return bad("%s is missing or empty", field)
	case len(a) > MaxAccountBytes:
		return bad("%s is longer than %d bytes", field, MaxAccountBytes)
	case !utf8.ValidString(a):
		return bad("%s is not valid UTF-8 (refused, never repaired)", field)
	}
	for i, r := range a {
		if IsControl(r) {
			return bad("%s holds the control character U+%04X at byte %d: account ids may not hold control characters", field, r, i)
		}
	}
	return nil
}

// IsControl reports whether r is a control character an account id may not
// hold: C0 (U+0000-U+001F), DEL (U+007F) or C1 (U+0080-U+009F).
func IsControl(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r <= 0x9f)
}

func checkTime(t time.Time) error {
	if t.IsZero() {
		return bad("time is missing")
	}
	if t.Before(MinTime) || t.After(MaxTime) {
		return bad("time %s is outside 1970-01-01 to 9999-12-31", t.UTC().Format(time.RFC3339))
	}
	return nil
}

// PairKey is the partition key of a pair ("66->26"): it only has to send one
// pair's events to one Kafka partition, so ids containing "->" may share a
// partition with another pair, which costs nothing.
func PairKey(from, to string) string { return from + "->" + to }

// Subject is the human form of a pair, the alert's subject.
func Subject(from, to string) string { return from + "->" + to }
