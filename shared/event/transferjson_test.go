package event

import (
	"encoding/json"
	"testing"
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
		`{}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		from, to, amount, ok := fastTransferJSON(b)
		if !ok {
			return
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
