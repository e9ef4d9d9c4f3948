package cloudevent

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/transfer"
)

// Strings an alert may carry: ids and rule names are client input.
var hostileStrings = []string{
	"", "alice", `"quoted"`, `back\slash`, "<script>alert(1)</script>", "a&b", "tab\there", "new\nline",
	"cr\rlf", "\b\f\x00\x01\x1f\x7f", "\u2028\u2029", "\u00a0nbsp\u00a0", "\u202eevil", "😀 emoji", "é", "中文",
	"\xff\xfe invalid", "trail\xc3", "\xed\xa0\x80 surrogate", strings.Repeat("x", 300), "a->b", "from:x",
}

func randomAlert(rng *rand.Rand) transfer.Alert {
	pick := func() string { return hostileStrings[rng.IntN(len(hostileStrings))] }
	at := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(48 * time.Hour))))
	if rng.IntN(3) == 0 {
		at = at.Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
	}
	measure := func() transfer.Measure {
		if rng.IntN(2) == 0 {
			return transfer.Transfers(rng.Int64N(1000))
		}
		return transfer.Cents(money.Cents(rng.Int64N(1 << 40)))
	}
	a := transfer.Alert{Rule: pick(), GroupBy: pick(), From: pick(), To: pick(), Aggregate: pick(), Value: measure(),
		WindowStart: at.Truncate(2 * time.Minute), WindowEnd: at.Truncate(2 * time.Minute).Add(10 * time.Minute),
		Total: money.Cents(rng.Int64N(1 << 50)), Count: rng.IntN(100000), Threshold: measure(), Truncated: rng.IntN(2) == 0}
	switch rng.IntN(3) {
	case 0: // nil: encoding/json writes null
	case 1:
		a.Transactions = []transfer.AlertTransfer{}
	default:
		for range 1 + rng.IntN(5) {
			t := at.Add(-time.Duration(rng.Int64N(int64(time.Hour))))
			if rng.IntN(4) == 0 {
				t = t.In(time.FixedZone("x", 3600))
			}
			a.Transactions = append(a.Transactions, transfer.AlertTransfer{ID: pick(), Time: t,
				Amount: money.Cents(1 + rng.Int64N(1<<40)), From: pick(), To: pick()})
		}
	}
	return a
}

// appendAlert writes exactly what encoding/json writes, over random alerts
// built from hostile strings.
func TestAppendAlertIsEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		a := randomAlert(rng)
		want, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendAlert(nil, a); !bytes.Equal(got, want) {
			t.Fatalf("alert %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// The same for any string in any place.
func FuzzAlertJSON(f *testing.F) {
	for _, s := range hostileStrings {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, s1, s2 string) {
		a := transfer.Alert{Rule: s1, GroupBy: s2, From: s1, To: s2, Aggregate: s1 + s2,
			Transactions: []transfer.AlertTransfer{{ID: s2, From: s1}}}
		want, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendAlert(nil, a); !bytes.Equal(got, want) {
			t.Fatalf("got %s\nwant %s", got, want)
		}
	})
}

// The alert event carries the data as JSON (not base64) in both modes a
// sink writes, and reads back to the same alert.
func TestAlertEventData(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	a := randomAlert(rng)
	a.Rule, a.GroupBy, a.Aggregate, a.From, a.To = "structuring", transfer.GroupPair, "sum", "<a>\u2028", "b\"c"
	a.Value, a.Threshold, a.Total, a.Count = transfer.Cents(1000001), transfer.Cents(1000000), 1000001, 2
	a.Time = a.WindowStart.Add(time.Minute)
	a.Transactions = []transfer.AlertTransfer{{ID: "t1\u00a0", Time: a.WindowStart, Amount: 500000},
		{ID: "t2<&>", Time: a.Time, Amount: 500001}}
	e := Alert(a)
	if e.DataContentType() != ce.ApplicationJSON || e.DataBase64 {
		t.Fatalf("content type %q, base64 %v", e.DataContentType(), e.DataBase64)
	}
	structured, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(structured, []byte(`"data":{"rule":"structuring"`)) || bytes.Contains(structured, []byte("data_base64")) {
		t.Fatalf("structured event: %s", structured)
	}
	back, err := ToAlert(e)
	if err != nil {
		t.Fatal(err)
	}
	if back.From != a.From || back.To != a.To || back.Total != a.Total || back.Count != a.Count || len(back.Transactions) != len(a.Transactions) {
		t.Fatalf("read back %+v, want %+v", back, a)
	}
}
