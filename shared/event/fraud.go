package event

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/fintrans/fintrans/shared/money"
)

// Alert is a fraud alert: the total moved from one account to another inside
// one window went over the threshold.
type Alert struct {
	From         string          `json:"from"`
	To           string          `json:"to"`
	WindowStart  time.Time       `json:"windowStart"`
	WindowEnd    time.Time       `json:"windowEnd"`
	Total        money.Cents     `json:"total"`
	Threshold    money.Cents     `json:"threshold"`
	Count        int             `json:"count"`
	Transactions []AlertTransfer `json:"transactions"`
	Truncated    bool            `json:"truncated"`

	// Time is when the transfer that crossed the threshold happened; it is
	// the CloudEvent's time, not part of the data.
	Time time.Time `json:"-"`
}

// AlertTransfer is one transfer listed as evidence in an alert.
type AlertTransfer struct {
	ID     string      `json:"id"`
	Time   time.Time   `json:"time"`
	Amount money.Cents `json:"amount"`
}

// AlertID is deterministic in (from, to, windowStart): every repeat of one
// alert carries the same id, and no two (pair, window) share one.
func AlertID(from, to string, windowStart time.Time) string {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(from)))
	h.Write(n[:])
	h.Write([]byte(from))
	binary.BigEndian.PutUint64(n[:], uint64(len(to)))
	h.Write(n[:])
	h.Write([]byte(to))
	binary.BigEndian.PutUint64(n[:], uint64(windowStart.UnixMilli()))
	h.Write(n[:])
	return "fraud-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// ID is the alert's CloudEvent id.
func (a Alert) ID() string { return AlertID(a.From, a.To, a.WindowStart) }

// CloudEvent builds the io.fintrans.fraud.detected event of the alert.
func (a Alert) CloudEvent() ce.Event {
	e := ce.New(ce.CloudEventsVersionV1)
	e.SetID(a.ID())
	e.SetType(FraudType)
	e.SetSource(DetectSource)
	e.SetTime(a.Time.UTC())
	// Set the subject as it is: SetSubject trims white space, and account
	// ids may begin or end with characters Unicode counts as space (U+00A0,
	// U+2028), which would make the subject name another pair.
	subject := Subject(a.From, a.To)
	if ec, ok := e.Context.(*ce.EventContextV1); ok {
		ec.Subject = &subject
	} else {
		e.SetSubject(subject)
	}
	e.SetExtension(PartitionKey, PairKey(a.From, a.To))
	a.WindowStart, a.WindowEnd = a.WindowStart.UTC(), a.WindowEnd.UTC()
	if a.Transactions == nil {
		a.Transactions = []AlertTransfer{}
	}
	// Marshalling this struct cannot fail.
	_ = e.SetData(ce.ApplicationJSON, a)
	return e
}

// AlertFromCloudEvent reads an alert back (the viewer's side).
func AlertFromCloudEvent(e ce.Event) (Alert, error) {
	if e.Type() != FraudType {
		return Alert{}, bad("event type %q is not %s", e.Type(), FraudType)
	}
	var a Alert
	if err := json.Unmarshal(e.Data(), &a); err != nil {
		return Alert{}, bad("fraud event %s has malformed data: %s", e.ID(), oneLine(err))
	}
	if a.From == "" || a.To == "" || a.WindowStart.IsZero() {
		return Alert{}, bad("fraud event %s lacks from, to or windowStart", e.ID())
	}
	a.Time = e.Time()
	return a, nil
}

// String is a one-line summary for logs.
func (a Alert) String() string {
	return fmt.Sprintf("%s [%s, %s) total %s > %s in %d transfers",
		Subject(a.From, a.To), a.WindowStart.Format(time.RFC3339), a.WindowEnd.Format(time.RFC3339),
		a.Total, a.Threshold, a.Count)
}
