package httpreq_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/fintrans/fintrans/shared/codec/cloudevent"
	"github.com/fintrans/fintrans/shared/codec/httpreq"
	"github.com/fintrans/fintrans/shared/codec/kafkarecord"
	"github.com/fintrans/fintrans/shared/codec/seedline"
	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/transfer/transfertest"
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
	want := transfer.Transfer{Time: time.Date(2017, 7, 23, 1, 6, 47, 0, time.UTC), From: "66", To: "26", Amount: 781025}
	cases := []struct {
		name   string
		header http.Header
		body   string
		source string
		id     string
		amount money.Cents
	}{
		{"binary mode", binaryHeaders(cloudevent.TransactionType, "t1", "2017-07-23T01:06:47Z"),
			`{"from":"66","to":"26","amount":7810.25}`, "/test", "t1", 781025},
		{"binary mode, amount as string, ids as integers", binaryHeaders(cloudevent.TransactionType, "t2", "2017-07-23T01:06:47Z"),
			`{"from":66,"to":26,"amount":"7810.25"}`, "/test", "t2", 781025},
		{"structured mode", structured("application/cloudevents+json"),
			`{"specversion":"1.0","type":"io.fintrans.transaction","id":"t3","source":"/s","time":"2017-07-23T01:06:47Z","datacontenttype":"application/json","data":{"from":"66","to":"26","amount":7810.25}}`,
			"/s", "t3", 781025},
		{"seed line in a Knative Kafka event", binaryHeaders("dev.knative.kafka.event", "k1", ""),
			`2017-07-23T01:06:47Z;66;26;7810.25`, "/test", "k1", 781025},
		{"seed line, RFC 850 time, in structured mode", structured("application/cloudevents+json"),
			`{"specversion":"1.0","type":"dev.knative.kafka.event","id":"k2","source":"/k","data":"Sunday, 23-Jul-17 01:06:47 UTC;66;26;7810.25"}`,
			"/k", "k2", 781025},
		{"plain seed line", structured("text/plain"), "2017-07-23T01:06:47Z;66;26;7810\n", httpreq.LineSource, "", 781000},
		{"plain seed line, no content type", http.Header{}, "2017-07-23T01:06:47Z;66;26;7810", httpreq.LineSource, "", 781000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := fromHTTP(tc.header, []byte(tc.body), 100)
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
	a, _ := fromHTTP(http.Header{}, []byte("2017-07-23T01:06:47Z;66;26;7810"), 10)
	b, _ := fromHTTP(http.Header{}, []byte(" 2017-07-23T01:06:47Z;66;26;7810 \n"), 10)
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
	req, err := fromHTTP(structured(httpreq.BatchContentType), []byte(body), 100)
	if err != nil || !req.Batch || len(req.Items) != 3 {
		t.Fatalf("%v %+v", err, req)
	}
	if req.Items[0].Err != nil || req.Items[1].Err == nil || req.Items[2].Err == nil {
		t.Fatalf("per-event errors wrong: %v / %v / %v", req.Items[0].Err, req.Items[1].Err, req.Items[2].Err)
	}
	if _, err := fromHTTP(structured(httpreq.BatchContentType), []byte(`[`+strings.Repeat(`{},`, 5)+`{}]`), 3); err == nil {
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
		{name: "missing time", typ: cloudevent.TransactionType, body: ok, reason: "time is missing"},
		{name: "bad amount syntax", typ: cloudevent.TransactionType, tm: "2017-07-23T01:06:47Z", body: `{"from":"1","to":"2","amount":"ten"}`, reason: "amount"},
		{name: "three fraction digits", typ: cloudevent.TransactionType, tm: "2017-07-23T01:06:47Z", body: `{"from":"1","to":"2","amount":1.001}`, reason: "two fraction"},
		{name: "exponent", typ: cloudevent.TransactionType, tm: "2017-07-23T01:06:47Z", body: `{"from":"1","to":"2","amount":1e3}`, reason: "amount"},
		{name: "negative", typ: cloudevent.TransactionType, tm: "2017-07-23T01:06:47Z", body: `{"from":"1","to":"2","amount":-5}`, reason: "amount"},
		{name: "zero", typ: cloudevent.TransactionType, tm: "2017-07-23T01:06:47Z", body: `{"from":"1","to":"2","amount":0}`, reason: "greater than zero"},
		{name: "too large", typ: cloudevent.TransactionType, tm: "2017-07-23T01:06:47Z", body: `{"from":"1","to":"2","amount":1000000000000}`, reason: "larger"},
		{name: "same account", typ: cloudevent.TransactionType, tm: "2017-07-23T01:06:47Z", body: `{"from":"1","to":"1","amount":1}`, reason: "same account"},
		{name: "missing to", typ: cloudevent.TransactionType, tm: "2017-07-23T01:06:47Z", body: `{"from":"1","amount":1}`, reason: "to is missing"},
		{name: "empty from", typ: cloudevent.TransactionType, tm: "2017-07-23T01:06:47Z", body: `{"from":"","to":"2","amount":1}`, reason: "from is missing or empty"},
		{name: "account too long", typ: cloudevent.TransactionType, tm: "2017-07-23T01:06:47Z", body: `{"from":"` + long + `","to":"2","amount":1}`, reason: "longer than 128"},
		{name: "account as float", typ: cloudevent.TransactionType, tm: "2017-07-23T01:06:47Z", body: `{"from":1.5,"to":"2","amount":1}`, reason: "data is not a transfer"},
		{name: "data not JSON", typ: cloudevent.TransactionType, tm: "2017-07-23T01:06:47Z", body: `hello`, reason: "data is not a transfer"},
		{name: "wrong type, no line", typ: "com.example.other", tm: "2017-07-23T01:06:47Z", body: ok, reason: "is not io.fintrans.transaction"},
		{name: "time before 1970", typ: cloudevent.TransactionType, tm: "1969-12-31T23:59:59Z", body: ok, reason: "outside"},
		{name: "bad line time", typ: "dev.knative.kafka.event", body: "yesterday;1;2;3", reason: "neither RFC 3339"},
		{name: "line with five fields", typ: "dev.knative.kafka.event", body: "2017-07-23T01:06:47Z;1;2;3;4", reason: "time;from;to;amount"},
		{name: "malformed structured event", header: structured("application/cloudevents+json"), body: `{"specversion":"1.0"`, reason: "malformed CloudEvent"},
		{name: "structured event without id", header: structured("application/cloudevents+json"), body: `{"specversion":"1.0","type":"io.fintrans.transaction","source":"/s","time":"2017-07-23T01:06:47Z","data":{"from":"1","to":"2","amount":1}}`, reason: "CloudEvent"},
		{name: "unsupported content type", header: structured("application/xml"), body: `<x/>`, reason: "unsupported content type"},
		{name: "empty body", header: http.Header{}, body: "", reason: "empty body"},
		{name: "empty batch", header: structured(httpreq.BatchContentType), body: `[]`, reason: "batch is empty"},
		{name: "batch not an array", header: structured(httpreq.BatchContentType), body: `{}`, reason: "not a JSON array"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.header
			if h == nil {
				h = binaryHeaders(tc.typ, "x1", tc.tm)
			}
			req, err := fromHTTP(h, []byte(tc.body), 100)
			if err == nil && len(req.Items) == 1 {
				err = req.Items[0].Err
			}
			if err == nil {
				t.Fatalf("accepted: %+v", req)
			}
			if !transfer.IsInputError(err) {
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
			{Key: []byte("ce_specversion"), Value: []byte("1.0")}, {Key: []byte("ce_type"), Value: []byte(cloudevent.TransactionType)},
			{Key: []byte("ce_id"), Value: []byte("k-1")}, {Key: []byte("ce_source"), Value: []byte("/g")},
			{Key: []byte("ce_time"), Value: []byte("2017-07-23T01:06:47Z")}, {Key: []byte("content-type"), Value: []byte("application/json")},
		},
		Value: []byte(`{"from":"66","to":"26","amount":7810}`)}
	it := fromKafka(cm)
	if it.Err != nil || it.Transfer.ID != "k-1" || it.Transfer.Amount != 781000 {
		t.Fatalf("%+v", it)
	}
	// A plain seed line record: id from its coordinates.
	it = fromKafka(&sarama.ConsumerMessage{Topic: "transactions", Partition: 1, Offset: 42, Value: []byte("2017-07-23T01:06:47Z;66;26;7810")})
	if it.Err != nil || it.Transfer.Source != "kafka://transactions" || it.Transfer.ID != "1/42" {
		t.Fatalf("%+v", it)
	}
	it = fromKafka(&sarama.ConsumerMessage{Topic: "transactions", Value: []byte("garbage")})
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
	h.Set("X-Kafka-Ce_type", cloudevent.TransactionType)
	h.Set("X-Kafka-Ce_id", "c-1")
	h.Set("X-Kafka-Ce_source", "/g")
	h.Set("X-Kafka-Ce_time", "2017-07-23T01:06:47Z")
	h.Set("X-Kafka-Content-Type", "application/json")
	req, err := fromHTTP(h, []byte(`{"from":"66","to":"26","amount":1}`), 10)
	if err != nil || req.Items[0].Transfer.ID != "c-1" {
		t.Fatalf("%v %+v", err, req)
	}
	h = http.Header{}
	h.Set("X-Topic", "transactions")
	h.Set("X-Kafka-Partition", "3")
	h.Set("X-Kafka-Offset", "11")
	req, err = fromHTTP(h, []byte("2017-07-23T01:06:47Z;66;26;7810"), 10)
	if err != nil || req.Items[0].Transfer.ID != "3/11" {
		t.Fatalf("%v %+v", err, req)
	}
}

func TestAlertRoundTrip(t *testing.T) {
	a := transfer.Alert{From: "a:b", To: "{c}", WindowStart: time.Unix(1500000000, 0), WindowEnd: time.Unix(1500000600, 0),
		Rule: "structuring", GroupBy: "pair", Aggregate: "sum", Value: transfer.Cents(1000001),
		Total: 1000001, Threshold: transfer.Cents(1000000), Count: 2, Time: time.Unix(1500000100, 0),
		Transactions: []transfer.AlertTransfer{{ID: "x", Time: time.Unix(1500000001, 0), Amount: 5}}}
	e := cloudevent.Alert(a)
	if e.Type() != cloudevent.FraudType || e.Source() != cloudevent.DetectSource || e.Subject() != "a:b->{c}" || e.ID() != a.ID() {
		t.Fatalf("%v", e)
	}
	if !strings.Contains(string(e.Data()), `"total":10000.01`) {
		t.Errorf("total not a two-decimal number: %s", e.Data())
	}
	b, err := cloudevent.ToAlert(e)
	if err != nil || b.Total != a.Total || b.ID() != a.ID() || len(b.Transactions) != 1 {
		t.Fatalf("%v %+v", err, b)
	}
	if b.Value != a.Value || b.Threshold != a.Threshold || b.Rule != a.Rule {
		t.Fatalf("value, threshold or rule changed: %+v", b)
	}
	// The seed rule's alert of a pair keeps the id it had before rules.
	if a.ID() != transfer.AlertID(a.From, a.To, a.WindowStart) {
		t.Fatal("the structuring rule's alert id changed")
	}

	// A receiver rule counting: subject and partition key name the group,
	// value and threshold are whole numbers, the listed transfers carry
	// their sender.
	c := transfer.Alert{Rule: "fan-in", GroupBy: "to", To: "{c}", Aggregate: "count", Value: transfer.Transfers(21),
		WindowStart: time.Unix(1500000000, 0), WindowEnd: time.Unix(1500001800, 0), Total: 4200, Count: 21,
		Threshold: transfer.Transfers(20), Time: time.Unix(1500000100, 0),
		Transactions: []transfer.AlertTransfer{{ID: "x", Time: time.Unix(1500000001, 0), Amount: 5, From: "a:b"}}, Truncated: true}
	e = cloudevent.Alert(c)
	if e.Subject() != "to:{c}" || e.Extensions()[cloudevent.PartitionKey] != "to:{c}" {
		t.Fatalf("subject %q, extensions %v", e.Subject(), e.Extensions())
	}
	for _, want := range []string{`"rule":"fan-in"`, `"groupBy":"to"`, `"aggregate":"count"`, `"value":21,`, `"threshold":20,`, `"total":42.00`, `"from":"a:b"`} {
		if !strings.Contains(string(e.Data()), want) {
			t.Errorf("%s not in %s", want, e.Data())
		}
	}
	if strings.Contains(string(e.Data()), `"from":"",`) || strings.Count(string(e.Data()), `"from"`) != 1 {
		t.Errorf("a receiver rule's alert names a sender: %s", e.Data())
	}
	d, err := cloudevent.ToAlert(e)
	if err != nil || d.Value != c.Value || d.Threshold != c.Threshold || d.ID() != c.ID() || d.Transactions[0].From != "a:b" {
		t.Fatalf("%v %+v", err, d)
	}
	if c.ID() == transfer.RuleAlertID("fan-in", "from", "", "{c}", c.WindowStart) ||
		c.ID() == transfer.RuleAlertID("other", "to", "", "{c}", c.WindowStart) ||
		transfer.RuleAlertID("structuring", "pair", "a", "b", c.WindowStart) == transfer.RuleAlertID("structuring", "from", "a", "b", c.WindowStart) {
		t.Fatal("alert ids of different rules or groups collide")
	}

	// Ids differ by pair and window, never by accident of concatenation.
	if transfer.AlertID("ab", "c", a.WindowStart) == transfer.AlertID("a", "bc", a.WindowStart) {
		t.Fatal("alert ids collide")
	}
	var ie *transfer.InputError
	if _, err := cloudevent.ToAlert(cloudevent.Alert(transfer.Alert{})); !errors.As(err, &ie) {
		t.Fatalf("empty alert accepted: %v", err)
	}
}

// hostileData are transfer data (or seed lines) that must be refused on every
// path, with the words the reason must hold.
var hostileData = []struct {
	name, data, reason string
}{
	{"C0 control in an id", `{"from":"a\u0001b","to":"c","amount":1}`, "control character U+0001"},
	{"NUL in an id", `{"from":"a\u0000","to":"c","amount":1}`, "control character U+0000"},
	{"CR LF in an id", `{"from":"a\r\nb","to":"c","amount":1}`, "control character U+000D"},
	{"DEL in an id", "{\"from\":\"a\x7fb\",\"to\":\"c\",\"amount\":1}", "control character U+007F"},
	{"C1 control in an id", `{"from":"a","to":"c\u0085","amount":1}`, "control character U+0085"},
	{"C1 control as raw UTF-8", "{\"from\":\"a\",\"to\":\"c\xc2\x9f\",\"amount\":1}", "control character U+009F"},
	{"invalid UTF-8 in an id", "{\"from\":\"a\xff\",\"to\":\"c\",\"amount\":1}", "not valid UTF-8"},
	{"invalid UTF-8 in an escaped id", "{\"from\":\"\\\"a\xc3\",\"to\":\"c\",\"amount\":1}", "not valid UTF-8"},
	{"invalid UTF-8 in another key", "{\"from\":\"a\",\"to\":\"c\",\"amount\":1,\"x\xfe\":1}", "not valid UTF-8"},
	{"lone high surrogate", `{"from":"a\ud800","to":"c","amount":1}`, `\ud800`},
	{"lone low surrogate", `{"from":"a","to":"\udc00c","amount":1}`, `\udc00`},
	{"reversed surrogates", `{"from":"\udc00\ud800","to":"c","amount":1}`, `\udc00`},
	{"duplicate amount", `{"from":"a","to":"c","amount":1,"amount":20000}`, `key "amount" twice`},
	{"duplicate from, fast path form", `{"from":"a","from":"b","to":"c","amount":1}`, `key "from" twice`},
	{"duplicate by escape", `{"from":"a","to":"c","amount":1,"\u0061mount":20000}`, `key "amount" twice`},
	{"duplicate by case", `{"from":"a","to":"c","amount":1,"AMOUNT":20000}`, `key "amount" twice (as "AMOUNT")`},
	{"duplicate in a nested object", `{"from":"a","to":"c","amount":1,"x":{"k":1,"k":2}}`, `key "k" twice`},
	{"129-byte id", `{"from":"` + strings.Repeat("é", 64) + `x","to":"c","amount":1}`, "longer than 128 bytes"},
}

// Every decoding path refuses the hostile data with its reason: binary mode
// (fast path and full), structured mode, a batch, a Kafka record and the
// kafka-connector's form.
func TestHostileDataIsRefusedOnEveryPath(t *testing.T) {
	for _, tc := range hostileData {
		t.Run(tc.name, func(t *testing.T) {
			check := func(path string, it transfer.Item) {
				t.Helper()
				if it.Err == nil {
					t.Fatalf("%s: accepted as %+v", path, it.Transfer)
				}
				if !transfer.IsInputError(it.Err) || !strings.Contains(it.Err.Error(), tc.reason) || strings.Contains(it.Err.Error(), "\n") {
					t.Errorf("%s: reason %q does not say %q on one line", path, it.Err, tc.reason)
				}
			}
			one := func(path string, h http.Header, body string) {
				t.Helper()
				req, err := fromHTTP(h, []byte(body), 10)
				if len(req.Items) != 1 {
					t.Fatalf("%s: %v %+v", path, err, req)
				}
				check(path, req.Items[0])
			}
			one("binary", binaryHeaders(cloudevent.TransactionType, "h1", "2017-07-23T01:06:47Z"), tc.data)
			// An extension the fast binary path does not know sends it the full way.
			full := binaryHeaders(cloudevent.TransactionType, "h1", "2017-07-23T01:06:47Z")
			full.Set("Ce-Other", "x")
			one("binary, full decoding", full, tc.data)
			env := `{"specversion":"1.0","type":"io.fintrans.transaction","id":"h2","source":"/s","time":"2017-07-23T01:06:47Z","datacontenttype":"application/json","data":` + tc.data + `}`
			one("structured", structured(httpreq.StructuredContentType), env)
			req, err := fromHTTP(structured(httpreq.BatchContentType), []byte("["+env+"]"), 10)
			if err != nil || len(req.Items) != 1 {
				t.Fatalf("batch: %v %+v", err, req)
			}
			check("batch", req.Items[0])
			cm := &sarama.ConsumerMessage{Topic: "transactions", Value: []byte(tc.data), Headers: []*sarama.RecordHeader{
				{Key: []byte("ce_specversion"), Value: []byte("1.0")}, {Key: []byte("ce_type"), Value: []byte(cloudevent.TransactionType)},
				{Key: []byte("ce_id"), Value: []byte("k")}, {Key: []byte("ce_source"), Value: []byte("/g")},
				{Key: []byte("ce_time"), Value: []byte("2017-07-23T01:06:47Z")}, {Key: []byte("content-type"), Value: []byte("application/json")}}}
			check("kafka record", fromKafka(cm))
			h := http.Header{}
			for k, v := range map[string]string{"X-Topic": "transactions", "X-Kafka-Partition": "0", "X-Kafka-Offset": "1",
				"X-Kafka-Ce_specversion": "1.0", "X-Kafka-Ce_type": cloudevent.TransactionType, "X-Kafka-Ce_id": "c",
				"X-Kafka-Ce_source": "/g", "X-Kafka-Ce_time": "2017-07-23T01:06:47Z", "X-Kafka-Content-Type": "application/json"} {
				h.Set(k, v)
			}
			one("kafka-connector", h, tc.data)
		})
	}
}

// Seed lines carry the same checks on account ids: as a plain body, as the
// data of another CloudEvent type (raw and as a JSON string) and as a Kafka
// record.
func TestHostileSeedLinesAreRefused(t *testing.T) {
	cases := []struct{ name, line, quoted, reason string }{
		{"C0 control", "2017-07-23T01:06:47Z;a\x01b;c;1", `"2017-07-23T01:06:47Z;a\u0001b;c;1"`, "control character U+0001"},
		{"NUL", "2017-07-23T01:06:47Z;a\x00;c;1", `"2017-07-23T01:06:47Z;a\u0000;c;1"`, "control character U+0000"},
		{"DEL", "2017-07-23T01:06:47Z;a;c\x7f;1", `"2017-07-23T01:06:47Z;a;c\u007f;1"`, "control character U+007F"},
		{"C1", "2017-07-23T01:06:47Z;a;c\u0085;1", `"2017-07-23T01:06:47Z;a;c\u0085;1"`, "control character U+0085"},
		{"invalid UTF-8", "2017-07-23T01:06:47Z;a\xff;c;1", "\"2017-07-23T01:06:47Z;a\xff;c;1\"", "not valid UTF-8"},
		{"lone surrogate", "", `"2017-07-23T01:06:47Z;a\udfff;c;1"`, `\udfff`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			check := func(path string, it transfer.Item) {
				t.Helper()
				if it.Err == nil || !strings.Contains(it.Err.Error(), tc.reason) || strings.Contains(it.Err.Error(), "\n") {
					t.Errorf("%s: %+v: the reason does not say %q on one line", path, it, tc.reason)
				}
			}
			if tc.line != "" {
				req, _ := fromHTTP(structured("text/plain"), []byte(tc.line), 10)
				check("plain body", req.Items[0])
				req, _ = fromHTTP(binaryHeaders("dev.knative.kafka.event", "k", ""), []byte(tc.line), 10)
				check("knative kafka event, raw", req.Items[0])
				check("kafka record", fromKafka(&sarama.ConsumerMessage{Topic: "transactions", Value: []byte(tc.line)}))
			}
			env := `{"specversion":"1.0","type":"dev.knative.kafka.event","id":"q","source":"/k","data":` + tc.quoted + `}`
			req, _ := fromHTTP(structured(httpreq.StructuredContentType), []byte(env), 10)
			check("knative kafka event, JSON string", req.Items[0])
		})
	}
}

// The ids an account may hold are accepted as they are, never altered.
func TestOddButAllowedAccountIDsAreKept(t *testing.T) {
	for _, id := range transfertest.WorstAccountIDs() {
		body, _ := json.Marshal(map[string]any{"from": id, "to": "x", "amount": 1})
		req, err := fromHTTP(binaryHeaders(cloudevent.TransactionType, "w", "2017-07-23T01:06:47Z"), body, 10)
		if err != nil || req.Items[0].Transfer.From != id {
			t.Errorf("%q: %v %+v", id, err, req)
		}
		line := "2017-07-23T01:06:47Z;" + id + ";x;1"
		if strings.Contains(id, ";") || seedline.Trim(id) != id {
			continue // not expressible as a seed line field
		}
		req, err = fromHTTP(structured("text/plain"), []byte(line), 10)
		if err != nil || req.Items[0].Transfer.From != id {
			t.Errorf("line %q: %v %+v", line, err, req)
		}
	}
}

// Identical seed lines in one body are separate transfers; the same body
// posted again carries the same ids.
func TestIdenticalSeedLinesAreSeparateTransfers(t *testing.T) {
	body := "2017-07-23T01:06:47Z;66;26;7810\n2017-07-23T01:06:47Z;66;26;7810\n2017-07-23T01:07:00Z;66;26;1\n 2017-07-23T01:06:47Z;66;26;7810 \n"
	a, err := fromHTTP(structured("text/plain"), []byte(body), 10)
	if err != nil || len(a.Items) != 4 {
		t.Fatalf("%v %+v", err, a)
	}
	ids := map[string]bool{}
	for _, it := range a.Items {
		if it.Err != nil {
			t.Fatal(it.Err)
		}
		ids[it.Transfer.ID] = true
	}
	if len(ids) != 4 {
		t.Fatalf("ids %v: identical lines collapsed", ids)
	}
	b, _ := fromHTTP(structured("text/plain"), []byte(body), 10)
	for i := range a.Items {
		if a.Items[i].Transfer.ID != b.Items[i].Transfer.ID {
			t.Fatalf("line %d: the same body carries id %s then %s", i+1, a.Items[i].Transfer.ID, b.Items[i].Transfer.ID)
		}
	}
	// The first occurrence keeps the id a single line gets.
	single, _ := fromHTTP(structured("text/plain"), []byte("2017-07-23T01:06:47Z;66;26;7810"), 10)
	if single.Items[0].Transfer.ID != a.Items[0].Transfer.ID || a.Items[1].Transfer.ID != seedline.ID("2017-07-23T01:06:47Z;66;26;7810", 2) {
		t.Fatalf("ids %s %s %s", single.Items[0].Transfer.ID, a.Items[0].Transfer.ID, a.Items[1].Transfer.ID)
	}
}

// fromHTTP decodes a request as detect does, with MAX_BATCH maxBatch.
func fromHTTP(h http.Header, body []byte, maxBatch int) (httpreq.Request, error) {
	var d httpreq.Decoder
	return d.Decode(h, body, maxBatch)
}

// fromKafka decodes a record as the consumer does.
func fromKafka(cm *sarama.ConsumerMessage) transfer.Item {
	var d kafkarecord.Decoder
	return d.Decode(cm)
}
