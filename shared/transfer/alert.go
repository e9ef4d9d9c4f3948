package transfer

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/fintrans/fintrans/shared/money"
)

// The groups a rule aggregates over (SPEC section 3; rules.GroupBy names
// them for the rule set).
const (
	GroupPair = "pair" // the ordered pair (from, to)
	GroupFrom = "from" // the sender
	GroupTo   = "to"   // the receiver
)

// DefaultRule is the id of the seed's one rule (rules.DefaultRuleID): its
// pair alerts keep the ids they had before rules existed.
const DefaultRule = "structuring"

// Alert is a fraud alert: one rule's aggregate of one group's transfers
// inside one window went over the rule's threshold. The JSON tags are the
// alert event's data (SPEC section 2).
type Alert struct {
	Rule    string `json:"rule"`    // the id of the rule that fired
	GroupBy string `json:"groupBy"` // GroupPair, GroupFrom or GroupTo
	// The group: both for a pair rule, From for a sender rule, To for a
	// receiver rule.
	From        string      `json:"from,omitempty"`
	To          string      `json:"to,omitempty"`
	Aggregate   string      `json:"aggregate"` // "sum" or "count"
	Value       Measure     `json:"value"`     // the window's aggregate when the alert fired
	WindowStart time.Time   `json:"windowStart"`
	WindowEnd   time.Time   `json:"windowEnd"`
	Total       money.Cents `json:"total"` // the window's sum of amounts when it fired
	Count       int         `json:"count"` // its number of transfers
	Threshold   Measure     `json:"threshold"`
	// Transactions lists the window's transfers known when it fired,
	// oldest first, at most the rule's maxTransactions.
	Transactions []AlertTransfer `json:"transactions"`
	Truncated    bool            `json:"truncated"`

	// Time is when the transfer that crossed the threshold happened; it is
	// the event's time, not part of the data.
	Time time.Time `json:"-"`
}

// AlertTransfer is one transfer listed as evidence in an alert; From and To
// are set where the alert's group does not fix them (the receiver for a
// sender rule, the sender for a receiver rule).
type AlertTransfer struct {
	ID     string      `json:"id"`
	Time   time.Time   `json:"time"`
	Amount money.Cents `json:"amount"`
	From   string      `json:"from,omitempty"`
	To     string      `json:"to,omitempty"`
}

// Measure is a rule's aggregate or threshold: cents for a sum, a number of
// transfers for a count. In JSON a sum is a decimal with two fraction digits
// (10000.01) and a count an integer (21).
type Measure struct {
	N     int64 // cents for a sum, transfers for a count
	Count bool  // N counts transfers
}

// Cents is the measure of a sum.
func Cents(c money.Cents) Measure { return Measure{N: int64(c)} }

// Transfers is the measure of a count.
func Transfers(n int64) Measure { return Measure{N: n, Count: true} }

func (m Measure) String() string { return string(m.Append(make([]byte, 0, 24))) }

// Append appends the measure as String writes it to b.
func (m Measure) Append(b []byte) []byte {
	if m.Count {
		return strconv.AppendInt(b, m.N, 10)
	}
	return money.Cents(m.N).Append(b)
}

// MarshalJSON writes the measure as a JSON number.
func (m Measure) MarshalJSON() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalJSON reads a number with a fraction as cents and a whole number
// as a count (ToAlert settles it with the alert's aggregate).
func (m *Measure) UnmarshalJSON(b []byte) error {
	b = bytes.Trim(b, `"`)
	if n, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		*m = Transfers(n)
		return nil
	}
	var c money.Cents
	if err := c.UnmarshalJSON(b); err != nil {
		return err
	}
	*m = Cents(c)
	return nil
}

// AlertID is the id of the seed rule's alert of pair (from, to) and the
// window starting at windowStart: deterministic, every repeat of one alert
// carries the same id, and no two (pair, window) share one.
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

// RuleAlertID is deterministic in (rule, group, windowStart). The seed
// rule's pair alerts (rule "structuring" or none, group pair) keep AlertID,
// the ids they had before rules existed; every other alert's id hashes the
// rule id, the kind of group and its account(s) and the window start, each
// length-prefixed, so no two (rule, group, window) share one.
func RuleAlertID(rule, groupBy, from, to string, windowStart time.Time) string {
	if (rule == DefaultRule || rule == "") && (groupBy == GroupPair || groupBy == "") {
		return AlertID(from, to, windowStart)
	}
	h := sha256.New()
	var n [8]byte
	for _, s := range []string{"rule", rule, groupBy, from, to} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	binary.BigEndian.PutUint64(n[:], uint64(windowStart.UnixMilli()))
	h.Write(n[:])
	return "fraud-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// ID is the alert's id.
func (a Alert) ID() string { return RuleAlertID(a.Rule, a.GroupBy, a.From, a.To, a.WindowStart) }

// GroupKey names the alert's group: "<from>-><to>" for a pair,
// "from:<id>" for a sender, "to:<id>" for a receiver. It is the event's
// subject and partition key.
func (a Alert) GroupKey() string { return GroupKey(a.GroupBy, a.From, a.To) }

// GroupKey names a group (see Alert.GroupKey); groupBy "" is a pair.
func GroupKey(groupBy, from, to string) string {
	switch groupBy {
	case GroupFrom:
		return "from:" + from
	case GroupTo:
		return "to:" + to
	}
	return PairKey(from, to)
}

// String is a one-line summary for logs.
func (a Alert) String() string {
	rule := a.Rule
	if rule == "" {
		rule = DefaultRule
	}
	return fmt.Sprintf("%s %s [%s, %s) %s %s > %s (total %s in %d transfers)",
		rule, a.GroupKey(), a.WindowStart.Format(time.RFC3339), a.WindowEnd.Format(time.RFC3339),
		a.Aggregate, a.Value, a.Threshold, a.Total, a.Count)
}
