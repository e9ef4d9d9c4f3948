package event_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/fintrans/fintrans/shared/event"
	"github.com/fintrans/fintrans/shared/money"
)

func binaryHeaders(typ, id, tm string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Ce-Specversion", "1.0")
	h.Set("Ce-Type", typ)
	h.Set("Ce-Id", id)
	h.Set("Ce-Source", "/test")
	if tm != "" {
		h.Set("Ce-Time", tm)
	}
	return h
}

func structured(ct string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", ct)
	return h
}

func TestFromHTTPAcceptsEveryForm(t *testing.T) {
	want := event.Transfer{Time: time.Date(2017, 7, 23, 1, 6, 47, 0, time.UTC), From: "66", To: "26", Amount: 781025}
	cases := []struct {
		name   string
		header http.Header
		body   string
		source string
		id     string
		amount money.Cents
	}{
		{"binary mode", binaryHeaders(event.TransactionType, "t1", "2017-07-23T01:06:47Z"),
			`{"from":"66","to":"26","amount":7810.25}`, "/test", "t1", 781025},
		{"binary mode, amount as string, ids as integers", binaryHeaders(event.TransactionType, "t2", "2017-07-23T01:06:47Z"),
			`{"from":66,"to":26,"amount":"7810.25"}`, "/test", "t2", 781025},
		{"structured mode", structured("application/cloudevents+json"),
			`{"specversion":"1.0","type":"io.fintrans.transaction","id":"t3","source":"/s","time":"2017-07-23T01:06:47Z","datacontenttype":"application/json","data":{"from":"66","to":"26","amount":7810.25}}`,
			"/s", "t3", 781025},
		{"seed line in a Knative Kafka event", binaryHeaders("dev.knative.kafka.event", "k1", ""),
			`2017-07-23T01:06:47Z;66;26;7810.25`, "/test", "k1", 781025},
		{"seed line, RFC 850 time, in structured mode", structured("application/cloudevents+json"),
			`{"specversion":"1.0","type":"dev.knative.kafka.event","id":"k2","source":"/k","data":"Sunday, 23-Jul-17 01:06:47 UTC;66;26;7810.25"}`,
			"/k", "k2", 781025},
		{"plain seed line", structured("text/plain"), "2017-07-23T01:06:47Z;66;26;7810\n", event.HTTPLineSource, "", 781000},
		{"plain seed line, no content type", http.Header{}, "2017-07-23T01:06:47Z;66;26;7810", event.HTTPLineSource, "", 781000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := event.FromHTTP(tc.header, []byte(tc.body), 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(req.Items) != 1 || req.Batch {
				t.Fatalf("items %d batch %v", len(req.Items), req.Batch)
			}
			got := req.Items[0].Transfer
			if got.Source != tc.source || (tc.id != "" && got.ID != tc.id) || got.ID == "" {
				t.Errorf("source/id %q/%q", got.Source, got.ID)
			}
			if !got.Time.Equal(want.Time) || got.From != want.From || got.To != want.To || got.Amount != tc.amount {
				t.Errorf("got %+v", got)
			}
		})
	}
}

func TestPlainLineIDIsStable(t *testing.T) {
	a, _ := event.FromHTTP(http.Header{}, []byte("2017-07-23T01:06:47Z;66;26;7810"), 10)
	b, _ := event.FromHTTP(http.Header{}, []byte(" 2017-07-23T01:06:47Z;66;26;7810 \n"), 10)
	if a.Items[0].Transfer.ID != b.Items[0].Transfer.ID {
		t.Fatal("the same line posted twice must carry the same id")
	}
}

func TestBatchDecodesEachEvent(t *testing.T) {
	body := `[
	 {"specversion":"1.0","type":"io.fintrans.transaction","id":"b1","source":"/s","time":"2017-07-23T01:06:47Z","data":{"from":"1","to":"2","amount":1}},
	 {"specversion":"1.0","type":"io.fintrans.transaction","id":"b2","source":"/s","time":"2017-07-23T01:06:47Z","data":{"from":"1","to":"1","amount":1}},
	 {"nonsense":true}
	]`
	req, err := event.FromHTTP(structured(event.BatchContentType), []byte(body), 100)
	if err != nil || !req.Batch || len(req.Items) != 3 {
		t.Fatalf("%v %+v", err, req)
	}
	if req.Items[0].Err != nil || req.Items[1].Err == nil || req.Items[2].Err == nil {
		t.Fatalf("per-event errors wrong: %v / %v / %v", req.Items[0].Err, req.Items[1].Err, req.Items[2].Err)
	}
	if _, err := event.FromHTTP(structured(event.BatchContentType), []byte(`[`+strings.Repeat(`{},`, 5)+`{}]`), 3); err == nil {
		t.Fatal("a batch over MAX_BATCH must be refused")
	}
}

func TestBadInputIsRefusedWithAReason(t *testing.T) {
	ok := `{"from":"66","to":"26","amount":10}`
	long := strings.Repeat("x", 129)
	cases := []struct {
		name, typ, tm, body, reason string
		header                      http.Header
	}{
		{name: "missing time", typ: event.TransactionType, body: ok, reason: "time is missing"},
		{name: "bad amount syntax", typ: event.TransactionType, tm: "2017-07-23T01:06:47Z", body: `{"from":"1","to":"2","amount":"ten"}`, reason: "amount"},
		{name: "three fraction digits", typ: event.TransactionType, tm: "2017-07-23T01:06:47Z", body: `{"from":"1","to":"2","amount":1.001}`, reason: "two fraction"},
		{name: "exponent", typ: event.TransactionType, tm: "2017-07-23T01:06:47Z", body: `{"from":"1","to":"2","amount":1e3}`, reason: "amount"},
		{name: "negative", typ: event.TransactionType, tm: "2017-07-23T01:06:47Z", body: `{"from":"1","to":"2","amount":-5}`, reason: "amount"},
		{name: "zero", typ: event.TransactionType, tm: "2017-07-23T01:06:47Z", body: `{"from":"1","to":"2","amount":0}`, reason: "greater than zero"},
		{name: "too large", typ: event.TransactionType, tm: "2017-07-23T01:06:47Z", body: `{"from":"1","to":"2","amount":1000000000000}`, reason: "larger"},
		{name: "same account", typ: event.TransactionType, tm: "2017-07-23T01:06:47Z", body: `{"from":"1","to":"1","amount":1}`, reason: "same account"},
		{name: "missing to", typ: event.TransactionType, tm: "2017-07-23T01:06:47Z", body: `{"from":"1","amount":1}`, reason: "to is missing"},
		{name: "empty from", typ: event.TransactionType, tm: "2017-07-23T01:06:47Z", body: `{"from":"","to":"2","amount":1}`, reason: "from is missing or empty"},
		{name: "account too long", typ: event.TransactionType, tm: "2017-07-23T01:06:47Z", body: `{"from":"` + long + `","to":"2","amount":1}`, reason: "longer than 128"},
		{name: "account as float", typ: event.TransactionType, tm: "2017-07-23T01:06:47Z", body: `{"from":1.5,"to":"2","amount":1}`, reason: "data is not a transfer"},
		{name: "data not JSON", typ: event.TransactionType, tm: "2017-07-23T01:06:47Z", body: `hello`, reason: "data is not a transfer"},
		{name: "wrong type, no line", typ: "com.example.other", tm: "2017-07-23T01:06:47Z", body: ok, reason: "is not io.fintrans.transaction"},
		{name: "time before 1970", typ: event.TransactionType, tm: "1969-12-31T23:59:59Z", body: ok, reason: "outside"},
		{name: "bad line time", typ: "dev.knative.kafka.event", body: "yesterday;1;2;3", reason: "neither RFC 3339"},
		{name: "line with five fields", typ: "dev.knative.kafka.event", body: "2017-07-23T01:06:47Z;1;2;3;4", reason: "time;from;to;amount"},
		{name: "malformed structured event", header: structured("application/cloudevents+json"), body: `{"specversion":"1.0"`, reason: "malformed CloudEvent"},
		{name: "structured event without id", header: structured("application/cloudevents+json"), body: `{"specversion":"1.0","type":"io.fintrans.transaction","source":"/s","time":"2017-07-23T01:06:47Z","data":{"from":"1","to":"2","amount":1}}`, reason: "CloudEvent"},
		{name: "unsupported content type", header: structured("application/xml"), body: `<x/>`, reason: "unsupported content type"},
		{name: "empty body", header: http.Header{}, body: "", reason: "empty body"},
		{name: "empty batch", header: structured(event.BatchContentType), body: `[]`, reason: "batch is empty"},
		{name: "batch not an array", header: structured(event.BatchContentType), body: `{}`, reason: "not a JSON array"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.header
			if h == nil {
				h = binaryHeaders(tc.typ, "x1", tc.tm)
			}
			req, err := event.FromHTTP(h, []byte(tc.body), 100)
			if err == nil && len(req.Items) == 1 {
				err = req.Items[0].Err
			}
			if err == nil {
				t.Fatalf("accepted: %+v", req)
			}
			if !event.IsInputError(err) {
				t.Errorf("not an input error: %T", err)
			}
			if !strings.Contains(err.Error(), tc.reason) || strings.Contains(err.Error(), "\n") {
				t.Errorf("reason %q does not say %q on one line", err.Error(), tc.reason)
			}
		})
	}
}

func TestFromKafka(t *testing.T) {
	// A binary-mode CloudEvent record.
	cm := &sarama.ConsumerMessage{Topic: "transactions", Partition: 2, Offset: 7,
		Headers: []*sarama.RecordHeader{
			{Key: []byte("ce_specversion"), Value: []byte("1.0")}, {Key: []byte("ce_type"), Value: []byte(event.TransactionType)},
			{Key: []byte("ce_id"), Value: []byte("k-1")}, {Key: []byte("ce_source"), Value: []byte("/g")},
			{Key: []byte("ce_time"), Value: []byte("2017-07-23T01:06:47Z")}, {Key: []byte("content-type"), Value: []byte("application/json")},
		},
		Value: []byte(`{"from":"66","to":"26","amount":7810}`)}
	it := event.FromKafka(cm)
	if it.Err != nil || it.Transfer.ID != "k-1" || it.Transfer.Amount != 781000 {
		t.Fatalf("%+v", it)
	}
	// A plain seed line record: id from its coordinates.
	it = event.FromKafka(&sarama.ConsumerMessage{Topic: "transactions", Partition: 1, Offset: 42, Value: []byte("2017-07-23T01:06:47Z;66;26;7810")})
	if it.Err != nil || it.Transfer.Source != "kafka://transactions" || it.Transfer.ID != "1/42" {
		t.Fatalf("%+v", it)
	}
	it = event.FromKafka(&sarama.ConsumerMessage{Topic: "transactions", Value: []byte("garbage")})
	if it.Err == nil || it.Ref != "transactions/0/0" {
		t.Fatalf("garbage accepted: %+v", it)
	}
}

func TestFromConnector(t *testing.T) {
	// The OpenFaaS kafka-connector: record value as body, headers as X-Kafka-*.
	h := http.Header{}
	h.Set("X-Topic", "transactions")
	h.Set("X-Kafka-Partition", "0")
	h.Set("X-Kafka-Offset", "9")
	h.Set("X-Kafka-Ce_specversion", "1.0")
	h.Set("X-Kafka-Ce_type", event.TransactionType)
	h.Set("X-Kafka-Ce_id", "c-1")
	h.Set("X-Kafka-Ce_source", "/g")
	h.Set("X-Kafka-Ce_time", "2017-07-23T01:06:47Z")
	h.Set("X-Kafka-Content-Type", "application/json")
	req, err := event.FromHTTP(h, []byte(`{"from":"66","to":"26","amount":1}`), 10)
	if err != nil || req.Items[0].Transfer.ID != "c-1" {
		t.Fatalf("%v %+v", err, req)
	}
	h = http.Header{}
	h.Set("X-Topic", "transactions")
	h.Set("X-Kafka-Partition", "3")
	h.Set("X-Kafka-Offset", "11")
	req, err = event.FromHTTP(h, []byte("2017-07-23T01:06:47Z;66;26;7810"), 10)
	if err != nil || req.Items[0].Transfer.ID != "3/11" {
		t.Fatalf("%v %+v", err, req)
	}
}

func TestAlertRoundTrip(t *testing.T) {
	a := event.Alert{From: "a:b", To: "{c}", WindowStart: time.Unix(1500000000, 0), WindowEnd: time.Unix(1500000600, 0),
		Total: 1000001, Threshold: 1000000, Count: 2, Time: time.Unix(1500000100, 0),
		Transactions: []event.AlertTransfer{{ID: "x", Time: time.Unix(1500000001, 0), Amount: 5}}}
	e := a.CloudEvent()
	if e.Type() != event.FraudType || e.Source() != event.DetectSource || e.Subject() != "a:b->{c}" || e.ID() != a.ID() {
		t.Fatalf("%v", e)
	}
	if !strings.Contains(string(e.Data()), `"total":10000.01`) {
		t.Errorf("total not a two-decimal number: %s", e.Data())
	}
	b, err := event.AlertFromCloudEvent(e)
	if err != nil || b.Total != a.Total || b.ID() != a.ID() || len(b.Transactions) != 1 {
		t.Fatalf("%v %+v", err, b)
	}
	// Ids differ by pair and window, never by accident of concatenation.
	if event.AlertID("ab", "c", a.WindowStart) == event.AlertID("a", "bc", a.WindowStart) {
		t.Fatal("alert ids collide")
	}
	var ie *event.InputError
	if _, err := event.AlertFromCloudEvent(event.Alert{}.CloudEvent()); !errors.As(err, &ie) {
		t.Fatalf("empty alert accepted: %v", err)
	}
}
