package transfer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/fintrans/fintrans/shared/money"
)

// Alert is a fraud alert: the total moved from one account to another inside
// one window went over the threshold. The JSON tags are the alert event's
// data (SPEC section 2).
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
	// the event's time, not part of the data.
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

// ID is the alert's id.
func (a Alert) ID() string { return AlertID(a.From, a.To, a.WindowStart) }

// String is a one-line summary for logs.
func (a Alert) String() string {
	return fmt.Sprintf("%s [%s, %s) total %s > %s in %d transfers",
		PairKey(a.From, a.To), a.WindowStart.Format(time.RFC3339), a.WindowEnd.Format(time.RFC3339),
		a.Total, a.Threshold, a.Count)
}
