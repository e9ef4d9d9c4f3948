package viewer

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fintrans/fintrans/shared/transfer"
)

// Format renders an alert like the seed's viewer did, with the real window
// bounds (the seed printed startTimestamp=0) and the rule that fired:
//
//	Detected Fraud: TransactionAggregate {startTimestamp=2017-07-23T01:00:00Z, endTimestamp=2017-07-23T01:10:00Z, totalAmount=10000.01, count=3, threshold=10000.00, from='66', to='26', rule=structuring, groupBy=pair, aggregate=sum, id=fraud-...:
//	Transaction{timestamp=2017-07-23T01:06:47Z, origin='66', target='26', amount=7810.00, id=...}
//	... and 2 more
//	}
//
// A sender rule's line has from and no to, a receiver rule's to and no
// from; each transaction names both accounts. A count's threshold is a
// number of transfers.
//
// Account ids are printed between single quotes with Go-style escapes for
// quotes, backslashes and anything unprintable, so an id can never start a
// line of its own; ids made of anything but [A-Za-z0-9._:/@+=-] are quoted
// the same way.
func Format(id string, a transfer.Alert) []byte {
	var b strings.Builder
	b.WriteString("Detected Fraud: TransactionAggregate {startTimestamp=")
	b.WriteString(stamp(a.WindowStart))
	b.WriteString(", endTimestamp=")
	b.WriteString(stamp(a.WindowEnd))
	b.WriteString(", totalAmount=")
	b.WriteString(a.Total.String())
	b.WriteString(", count=")
	b.WriteString(strconv.Itoa(a.Count))
	b.WriteString(", threshold=")
	b.WriteString(a.Threshold.String())
	if a.GroupBy != transfer.GroupTo {
		b.WriteString(", from=")
		b.WriteString(Quote(a.From))
	}
	if a.GroupBy != transfer.GroupFrom {
		b.WriteString(", to=")
		b.WriteString(Quote(a.To))
	}
	if a.Rule != "" {
		b.WriteString(", rule=")
		b.WriteString(ID(a.Rule))
		b.WriteString(", groupBy=")
		b.WriteString(ID(a.GroupBy))
		b.WriteString(", aggregate=")
		b.WriteString(ID(a.Aggregate))
	}
	b.WriteString(", id=")
	b.WriteString(ID(id))
	b.WriteString(":\n")
	for _, t := range a.Transactions {
		b.WriteString("Transaction{timestamp=")
		b.WriteString(stamp(t.Time))
		from, to := a.From, a.To
		if t.From != "" {
			from = t.From
		}
		if t.To != "" {
			to = t.To
		}
		b.WriteString(", origin=")
		b.WriteString(Quote(from))
		b.WriteString(", target=")
		b.WriteString(Quote(to))
		b.WriteString(", amount=")
		b.WriteString(t.Amount.String())
		b.WriteString(", id=")
		b.WriteString(ID(t.ID))
		b.WriteString("}\n")
	}
	if more := a.Count - len(a.Transactions); more > 0 {
		b.WriteString("... and ")
		b.WriteString(strconv.Itoa(more))
		b.WriteString(" more\n")
	} else if a.Truncated {
		b.WriteString("... and more\n")
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

// jsonAlert is the JSON line of an alert: its id, its time and its data.
type jsonAlert struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	transfer.Alert
}

// FormatJSON renders an alert as one JSON line (LOG_FORMAT=json).
func FormatJSON(id string, a transfer.Alert) []byte {
	b, _ := json.Marshal(jsonOf(id, a))
	return append(b, '\n')
}

func jsonOf(id string, a transfer.Alert) jsonAlert {
	a.WindowStart, a.WindowEnd, a.Time = a.WindowStart.UTC(), a.WindowEnd.UTC(), a.Time.UTC()
	if a.Transactions == nil {
		a.Transactions = []transfer.AlertTransfer{}
	}
	return jsonAlert{ID: id, Time: a.Time, Alert: a}
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Quote puts s between single quotes, escaping quotes, backslashes, control
// characters, unprintable runes and invalid UTF-8 as Go does.
func Quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\x`)
			b.WriteString(hex2(s[i]))
		case r == '\'':
			b.WriteString(`\'`)
		case r == '\\':
			b.WriteString(`\\`)
		case strconv.IsPrint(r):
			b.WriteString(s[i : i+n])
		default:
			q := strconv.QuoteRuneToASCII(r) // 'x' with x escaped
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	b.WriteByte('\'')
	return b.String()
}

// ID prints an event id as is when it is made of safe characters, otherwise
// quoted like an account id.
func ID(s string) string {
	if s == "" {
		return "''"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._:/@+=-", c) >= 0) {
			return Quote(s)
		}
	}
	return s
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&15]})
}
