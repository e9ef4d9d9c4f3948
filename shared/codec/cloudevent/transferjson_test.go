package cloudevent

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fintrans/fintrans/shared/transfer"
)

// The fast reader of transfer data never disagrees with encoding/json: what
// it accepts, encoding/json reads to the same transfer.
func FuzzTransferJSON(f *testing.F) {
	for _, s := range []string{
		`{"from":"66","to":"26","amount":7810.25}`,
		`{"from":66,"to":26,"amount":"7810.25"}`,
		` { "amount" : 1 , "to" : "Zürich", "from" : "-0" } `,
		`{"from":"a","to":"b","amount":1e3}`,
		`{"from":"a","to":"b","amount":1.001}`,
		`{"from":"a","to":"b","amount":-1}`,
		`{"from":"a\"","to":"b","amount":1}`,
		`{"FROM":"a","to":"b","amount":1}`,
		`{"from":"a","from":"c","to":"b","amount":1}`,
		`{"from":"a","to":"b","amount":1,"x":2}`,
		`{"from":1.5,"to":"b","amount":1}`,
		`{"from":"a","to":"b","amount":01}`,
		`{"from":"a","to":"b","amount":"1"} x`,
		`{"from":null,"to":"b","amount":1}`,
		"{\"from\":\"\xff\",\"to\":\"b\",\"amount\":1}",
		`{"from":"a","to":"b","amount":1,"amount":2}`,
		`{"from":"a","to":"b","amount":1,"Amount":2}`,
		`{"from":"a\u0001","to":"b","amount":1}`,
		`{"from":"a\ud800","to":"b","amount":1}`,
		`{}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		from, to, amount, ok := fastTransferJSON(b)
		if !ok {
			return
		}
		// What the fast path takes, the strict checks of the full path pass:
		// valid UTF-8, no unpaired surrogate, no key twice.
		if err := checkStrictJSON(b); err != nil {
			t.Fatalf("fast path accepted %q, the full path refuses it: %v", b, err)
		}
		var d transferJSON
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json refuses it: %v", b, err)
		}
		if d.From == nil || d.To == nil || d.Amount == nil {
			t.Fatalf("fast path accepted %q, encoding/json misses a field: %+v", b, d)
		}
		if string(*d.From) != from || string(*d.To) != to || *d.Amount != amount {
			t.Fatalf("%q: fast path %q %q %v, encoding/json %q %q %v", b, from, to, amount, *d.From, *d.To, *d.Amount)
		}
	})
}

func TestFastTransferJSONTakesTheCommonForms(t *testing.T) {
	for _, s := range []string{
		`{"from":"66","to":"26","amount":7810.25}`,
		`{"from":66,"to":26,"amount":"7810.25"}`,
		` { "amount" : 1 , "to" : "Zürich", "from" : "-0" } `,
	} {
		if _, _, _, ok := fastTransferJSON([]byte(s)); !ok {
			t.Errorf("%s: not taken by the fast path", s)
		}
	}
}

// FuzzTransferData holds the whole reading of transfer data (fast path, then
// the strict checks and encoding/json) to SPEC section 2: an accepted
// transfer came from valid UTF-8 holding each field exactly once (counted
// here by a separate walk over the top-level keys, matched as encoding/json
// matches them), its ids are valid, and ids were never repaired (no U+FFFD
// that the data did not spell).
func FuzzTransferData(f *testing.F) {
	for _, s := range []string{
		`{"from":"66","to":"26","amount":7810.25}`,
		`{"from":"a","to":"b","amount":1,"amount":20000}`,
		`{"from":"a","to":"b","amount":1,"AMOUNT":20000}`,
		`{"from":"a","to":"b","amount":1,"\u0061mount":20000}`,
		`{"from":"a\u0085","to":"b","amount":1}`,
		`{"from":"a\udc00","to":"b","amount":1}`,
		`{"from":"a\ud83d\ude00","to":"b","amount":1}`,
		`{"from":"\ufffd","to":"b","amount":1}`,
		"{\"from\":\"a\xff\",\"to\":\"b\",\"amount\":1}",
		`{"from":"a","to":"b","amount":1,"x":{"y":1,"y":2}}`,
	} {
		f.Add([]byte(s))
	}
	tm := time.Date(2017, 7, 23, 1, 6, 47, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		it := fromAttrs(attrs{id: "fuzz", source: "/fuzz", typ: TransactionType, time: tm, data: b})
		if it.Err != nil {
			if !transfer.IsInputError(it.Err) || strings.Contains(it.Err.Error(), "\n") {
				t.Fatalf("%q: not a one-line input error: %v", b, it.Err)
			}
			return
		}
		if !utf8.Valid(b) {
			t.Fatalf("accepted invalid UTF-8 %q", b)
		}
		counts := map[string]int{}
		dec := json.NewDecoder(bytes.NewReader(b))
		depth := 0
		wantKey := false
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			if depth == 1 && wantKey {
				if k, ok := tok.(string); ok {
					for _, f := range []string{"from", "to", "amount"} {
						if strings.EqualFold(k, f) {
							counts[f]++
						}
					}
					wantKey = false
					continue
				}
			}
			switch tok {
			case json.Delim('{'), json.Delim('['):
				depth++
			case json.Delim('}'), json.Delim(']'):
				depth--
			}
			wantKey = depth == 1
		}
		if counts["from"] != 1 || counts["to"] != 1 || counts["amount"] != 1 {
			t.Fatalf("accepted %q whose fields occur %v times", b, counts)
		}
		if err := it.Transfer.Validate(); err != nil {
			t.Fatalf("accepted %q as an invalid transfer: %v", b, err)
		}
		spelled := bytes.Contains(bytes.ToLower(b), []byte(`\ufffd`)) || bytes.ContainsRune(b, utf8.RuneError)
		if !spelled && (strings.ContainsRune(it.Transfer.From, utf8.RuneError) || strings.ContainsRune(it.Transfer.To, utf8.RuneError)) {
			t.Fatalf("%q: an id was repaired to U+FFFD: %q %q", b, it.Transfer.From, it.Transfer.To)
		}
	})
}
