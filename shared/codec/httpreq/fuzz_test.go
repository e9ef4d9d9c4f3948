package httpreq_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/fintrans/fintrans/shared/codec/cloudevent"
	"github.com/fintrans/fintrans/shared/codec/httpreq"
	"github.com/fintrans/fintrans/shared/transfer"
)

// checkItems holds for every decoded item: a refusal is a one-line input
// error, and an accepted transfer is valid.
func checkItems(t *testing.T, items []transfer.Item) {
	for _, it := range items {
		if it.Err != nil {
			if !transfer.IsInputError(it.Err) || strings.Contains(it.Err.Error(), "\n") {
				t.Fatalf("refusal is not a one-line input error: %q", it.Err)
			}
			continue
		}
		if err := it.Transfer.Validate(); err != nil {
			t.Fatalf("accepted an invalid transfer %+v: %v", it.Transfer, err)
		}
	}
}

func FuzzFromHTTP(f *testing.F) {
	f.Add("application/json", cloudevent.TransactionType, "2017-07-23T01:06:47Z", []byte(`{"from":"66","to":"26","amount":7810.25}`))
	f.Add("application/cloudevents+json", "", "", []byte(`{"specversion":"1.0","type":"io.fintrans.transaction","id":"t3","source":"/s","time":"2017-07-23T01:06:47Z","data":{"from":"66","to":"26","amount":"1"}}`))
	f.Add(httpreq.BatchContentType, "", "", []byte(`[{"specversion":"1.0","type":"dev.knative.kafka.event","id":"k","source":"/k","data":"2017-07-23T01:06:47Z;1;2;3"}]`))
	f.Add("text/plain", "", "", []byte("2017-07-23T01:06:47Z;66;26;7810\nSunday, 23-Jul-17 01:06:47 UTC;1;2;0.01"))
	f.Add("", "dev.knative.kafka.event", "", []byte("2017-07-23T01:06:47Z;66;26;7810"))
	f.Add("application/json", cloudevent.TransactionType, "2017-07-23T01:06:47Z", []byte(`{"from":"a","to":"b","amount":1,"amount":2}`))
	f.Add("text/plain", "", "", []byte("2017-07-23T01:06:47Z;a;b;1\n2017-07-23T01:06:47Z;a;b;1"))
	f.Fuzz(func(t *testing.T, contentType, ceType, ceTime string, body []byte) {
		h := http.Header{}
		if contentType != "" {
			h.Set("Content-Type", contentType)
		}
		if ceType != "" {
			h.Set("Ce-Specversion", "1.0")
			h.Set("Ce-Type", ceType)
			h.Set("Ce-Id", "fuzz")
			h.Set("Ce-Source", "/fuzz")
			if ceTime != "" {
				h.Set("Ce-Time", ceTime)
			}
		}
		req, err := fromHTTP(h, body, 50)
		if err != nil && (!transfer.IsInputError(err) || strings.Contains(err.Error(), "\n")) {
			t.Fatalf("request refusal is not a one-line input error: %q", err)
		}
		if len(req.Items) > 50 {
			t.Fatalf("%d items beyond the batch limit", len(req.Items))
		}
		checkItems(t, req.Items)
		// Seed lines of one body never share an id (identical lines are
		// separate transfers), and the same body gives the same ids again.
		seen := map[string]bool{}
		for _, it := range req.Items {
			if it.Err != nil || it.Transfer.Source != httpreq.LineSource {
				continue
			}
			if seen[it.Transfer.ID] {
				t.Fatalf("two seed lines of one body share the id %s", it.Transfer.ID)
			}
			seen[it.Transfer.ID] = true
		}
		again, _ := fromHTTP(h, body, 50)
		for i := range req.Items {
			if i < len(again.Items) && req.Items[i].Transfer.ID != again.Items[i].Transfer.ID {
				t.Fatalf("item %d: id %q, then %q for the same body", i, req.Items[i].Transfer.ID, again.Items[i].Transfer.ID)
			}
		}
	})
}
