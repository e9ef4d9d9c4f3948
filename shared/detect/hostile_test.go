package detect_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	ce "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/fintrans/fintrans/shared/detect"
	"github.com/fintrans/fintrans/shared/embedded"
	"github.com/fintrans/fintrans/shared/event"
	"github.com/fintrans/fintrans/shared/event/eventtest"
	"github.com/fintrans/fintrans/shared/kafka"
	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/redistest"
	"github.com/fintrans/fintrans/shared/sink"
	"github.com/fintrans/fintrans/shared/window"
	"github.com/fintrans/fintrans/shared/window/windowtest"
)

// clock is the function's clock in these tests: a few minutes after the
// transfers of 2017-07-23 01:0x the tests send.
var clock = time.Date(2017, 7, 23, 1, 10, 0, 0, time.UTC)

func setupAt(t *testing.T, now time.Time) *fixture {
	f := setup(t)
	h := f.srv.Config.Handler.(*detect.Handler)
	h.Detector.Now = func() time.Time { return now }
	return f
}

func structuredBody(id, tm, data string) string {
	return `{"specversion":"1.0","type":"io.fintrans.transaction","id":"` + id + `","source":"/s","time":"` + tm + `","datacontenttype":"application/json","data":` + data + `}`
}

// Hostile input, as an attacker would send it: 400 with a one-line reason
// that says what is wrong, nothing in Redis changed, nothing sent.
func TestHostileInputAnswers400AndChangesNothing(t *testing.T) {
	f := setupAt(t, clock)
	if code, _, raw := f.post(t, binary("seed", "2017-07-23T01:00:00Z"), `{"from":"1","to":"2","amount":5}`); code != 200 {
		t.Fatal(raw)
	}
	before := windowtest.Take(t, f.rdb)
	sj := map[string]string{"Content-Type": event.StructuredContentType}
	plain := map[string]string{"Content-Type": "text/plain"}
	cases := []struct {
		name   string
		header map[string]string
		body   string
		reason string
	}{
		{"C0 control in an id", binary("h1", "2017-07-23T01:00:00Z"), `{"from":"a\u0001b","to":"2","amount":1}`, "control character U+0001"},
		{"NUL in an id", binary("h2", "2017-07-23T01:00:00Z"), `{"from":"1","to":"\u0000","amount":1}`, "control character U+0000"},
		{"CR LF in an id", sj, structuredBody("h3", "2017-07-23T01:00:00Z", `{"from":"a\r\nb","to":"2","amount":1}`), "control character U+000D"},
		{"DEL in an id", binary("h4", "2017-07-23T01:00:00Z"), "{\"from\":\"a\x7f\",\"to\":\"2\",\"amount\":1}", "U+007F"},
		{"C1 in an id", binary("h5", "2017-07-23T01:00:00Z"), `{"from":"a\u009b","to":"2","amount":1}`, "U+009B"},
		{"control in a seed line", plain, "2017-07-23T01:00:00Z;a\x01b;2;1", "control character U+0001"},
		{"NEL in a seed line", plain, "2017-07-23T01:00:00Z;1;2\u0085;1", "control character U+0085"},
		{"invalid UTF-8", binary("h6", "2017-07-23T01:00:00Z"), "{\"from\":\"a\xff\",\"to\":\"2\",\"amount\":1}", "not valid UTF-8"},
		{"invalid UTF-8 in a seed line", plain, "2017-07-23T01:00:00Z;a\xff;2;1", "not valid UTF-8"},
		{"unpaired surrogate", binary("h7", "2017-07-23T01:00:00Z"), `{"from":"\ud800","to":"2","amount":1}`, `\ud800`},
		{"duplicate amount", binary("h8", "2017-07-23T01:00:00Z"), `{"from":"1","to":"2","amount":1,"amount":20000}`, `"amount" twice`},
		{"duplicate amount, other case", sj, structuredBody("h9", "2017-07-23T01:00:00Z", `{"from":"1","to":"2","amount":1,"Amount":20000}`), `"amount" twice`},
		{"duplicate to", binary("h10", "2017-07-23T01:00:00Z"), `{"from":"1","to":"2","to":"3","amount":1}`, `"to" twice`},
		{"129-byte id", binary("h11", "2017-07-23T01:00:00Z"), `{"from":"` + strings.Repeat("x", 129) + `","to":"2","amount":1}`, "longer than 128"},
		{"two days ahead", binary("h12", "2017-07-25T01:00:00Z"), `{"from":"1","to":"2","amount":1}`, "MAX_CLOCK_SKEW"},
		{"year 9999", sj, structuredBody("h13", "9999-12-31T23:59:59Z", `{"from":"1","to":"2","amount":1}`), "MAX_CLOCK_SKEW"},
		{"future seed line", plain, "2017-07-23T02:00:00Z;1;2;1", "MAX_CLOCK_SKEW"},
		{"just over the skew", binary("h14", clock.Add(5*time.Minute+time.Millisecond).Format(time.RFC3339Nano)), `{"from":"1","to":"2","amount":1}`, "MAX_CLOCK_SKEW"},
		{"batch of hostile events", map[string]string{"Content-Type": event.BatchContentType},
			"[" + structuredBody("h15", "2017-07-23T01:00:00Z", `{"from":"a\u0000","to":"2","amount":1}`) + "," +
				structuredBody("h16", "2099-01-01T00:00:00Z", `{"from":"1","to":"2","amount":1}`) + "]", "no valid event"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, raw := f.post(t, tc.header, tc.body)
			if code != 400 {
				t.Fatalf("status %d: %s", code, raw)
			}
			var reason map[string]any
			if err := json.Unmarshal([]byte(raw), &reason); err != nil || strings.Count(strings.TrimSpace(raw), "\n") != 0 {
				t.Fatalf("answer is not one line of JSON: %q", raw)
			}
			if msg, _ := reason["error"].(string); !strings.Contains(msg, tc.reason) {
				t.Fatalf("reason %q does not say %q", raw, tc.reason)
			}
			if !before.Equal(windowtest.Take(t, f.rdb)) {
				t.Fatal("hostile input changed Redis")
			}
		})
	}
	if len(f.sink.ids()) != 0 {
		t.Fatal("hostile input reached the sink")
	}
	// Within the skew is no refusal.
	if code, a, raw := f.post(t, binary("ok", clock.Add(5*time.Minute).Format(time.RFC3339)), `{"from":"1","to":"2","amount":1}`); code != 200 || a.Counted != 1 {
		t.Fatalf("a transfer 5m ahead (the allowed skew) refused: %d %s", code, raw)
	}
}

// One transfer from the future no longer blinds a pair: it is refused, and
// the pair's later transfers count and alert as if it had never been sent.
func TestFutureTransferDoesNotBlindThePair(t *testing.T) {
	for _, future := range []string{"2017-07-25T01:06:47Z", "9999-12-31T23:59:59Z"} {
		t.Run(future, func(t *testing.T) {
			f := setupAt(t, clock)
			before := windowtest.Take(t, f.rdb)
			code, _, raw := f.post(t, binary("future", future), `{"from":"66","to":"26","amount":1}`)
			if code != 400 || !strings.Contains(raw, "MAX_CLOCK_SKEW") {
				t.Fatalf("future transfer: %d %s", code, raw)
			}
			if !before.Equal(windowtest.Take(t, f.rdb)) {
				t.Fatal("a refused future transfer changed Redis")
			}
			code, a, raw := f.post(t, binary("t1", "2017-07-23T01:06:47Z"), `{"from":"66","to":"26","amount":7810}`)
			if code != 200 || a.Counted != 1 {
				t.Fatalf("after the future transfer: %d %s", code, raw)
			}
			code, a, raw = f.post(t, binary("t2", "2017-07-23T01:07:47Z"), `{"from":"66","to":"26","amount":2190.01}`)
			if code != 200 || a.Counted != 1 || len(a.Alerts) != 5 || len(f.sink.ids()) != 5 {
				t.Fatalf("the pair is not detected after a refused future transfer: %d %s", code, raw)
			}
		})
	}
}

// The same on the consumer's path: Process refuses it as invalid (the
// consumer dead-letters invalid records), and the pair still alerts.
func TestProcessRefusesTheFutureAsInvalid(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	st, err := window.New(rdb, window.Config{Threshold: 10000_00, Size: 10 * time.Minute, Slide: 2 * time.Minute,
		Lateness: time.Hour, MaxTransactions: 10, TTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeSink{}
	d := &detect.Detector{Store: st, Sink: fs, MaxClockSkew: time.Minute, Now: func() time.Time { return clock }}
	tr := func(id string, at time.Time, cents int64) event.Item {
		return event.Item{Ref: id, Transfer: event.Transfer{Source: "/s", ID: id, Time: at, From: "a", To: "b", Amount: money.Cents(cents)}}
	}
	p, err := d.Process(context.Background(), []event.Item{tr("f", clock.Add(time.Minute+time.Second), 100), tr("1", clock.Add(-3*time.Minute), 6000_00)})
	if err != nil || p.Results[0].Status != detect.Invalid || !strings.Contains(p.Results[0].Reason, "1m0s ahead") || p.Results[1].Status != detect.Counted {
		t.Fatalf("%v %+v", err, p.Results)
	}
	p, err = d.Process(context.Background(), []event.Item{tr("2", clock.Add(-2*time.Minute), 5000_00)})
	if err != nil || p.Results[0].Status != detect.Counted || len(p.Alerts) == 0 {
		t.Fatalf("the pair is not detected after the future transfer: %v %+v", err, p)
	}
}

// Three identical seed lines in one body are three transfers; the same body
// again counts nothing twice and changes nothing.
func TestIdenticalSeedLinesCountSeparately(t *testing.T) {
	f := setupAt(t, clock)
	body := strings.Repeat("2017-07-23T01:06:47Z;p;q;4000\n", 3)
	code, a, raw := f.post(t, map[string]string{"Content-Type": "text/plain"}, body)
	if code != 200 || a.Counted != 3 || len(a.Alerts) != 5 {
		t.Fatalf("three identical lines (12000 in one window): %d %s", code, raw)
	}
	after := windowtest.Take(t, f.rdb)
	code, a, raw = f.post(t, map[string]string{"Content-Type": "text/plain"}, body)
	if code != 200 || a.Counted != 0 || a.Duplicate != 3 {
		t.Fatalf("the same body again: %d %s", code, raw)
	}
	if !after.Equal(windowtest.Take(t, f.rdb)) {
		t.Fatal("a redelivered body changed Redis")
	}
}

// worstPairs pairs each of the worst allowed account ids with the next.
func worstPairs() [][2]string {
	ids := eventtest.WorstAccountIDs()
	var out [][2]string
	for i, id := range ids {
		out = append(out, [2]string{id, ids[(i+1)%len(ids)]})
	}
	return out
}

// sendWorst runs a crossing pair of transfers for each worst pair through a
// Detector whose sink is s, and returns the alerts Process reported.
func sendWorst(t *testing.T, s sink.Sink) []event.Alert {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	st, err := window.New(rdb, window.Config{Threshold: 10000_00, Size: 10 * time.Minute, Slide: 2 * time.Minute,
		Lateness: time.Hour, MaxTransactions: 10, TTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	d := &detect.Detector{Store: st, Sink: s, Now: func() time.Time { return clock }}
	var items []event.Item
	for i, p := range worstPairs() {
		for j, at := range []string{"2017-07-23T01:06:47Z", "2017-07-23T01:07:47Z"} {
			body, _ := json.Marshal(map[string]any{"from": p[0], "to": p[1], "amount": 6000})
			h := http.Header{}
			for k, v := range binary(fmt.Sprintf("w%d-%d", i, j), at) {
				h.Set(k, v)
			}
			req, err := event.FromHTTP(h, body, 10)
			if err != nil || req.Items[0].Transfer.From != p[0] || req.Items[0].Transfer.To != p[1] {
				t.Fatalf("%q->%q: %v %+v", p[0], p[1], err, req)
			}
			items = append(items, req.Items...)
		}
	}
	p, err := d.Process(context.Background(), items)
	if err != nil {
		t.Fatalf("the alerts of the worst ids were not delivered: %v", err)
	}
	if want := 5 * len(worstPairs()); len(p.Alerts) != want {
		t.Fatalf("%d alerts, want %d", len(p.Alerts), want)
	}
	return p.Alerts
}

// checkDelivered holds what a transport delivered to the alerts sent: the
// same ids, and for each the subject, partitionkey and data naming the pair
// exactly.
func checkDelivered(t *testing.T, sent []event.Alert, got []ce.Event) {
	t.Helper()
	want := map[string]event.Alert{}
	for _, a := range sent {
		want[a.ID()] = a
	}
	if len(got) != len(want) {
		t.Fatalf("%d alerts delivered, want %d", len(got), len(want))
	}
	for _, e := range got {
		a, ok := want[e.ID()]
		if !ok {
			t.Fatalf("unknown alert id %q delivered", e.ID())
		}
		pk, _ := e.Extensions()[event.PartitionKey].(string)
		if e.Subject() != event.Subject(a.From, a.To) || pk != event.PairKey(a.From, a.To) {
			t.Errorf("alert %s: subject %q partitionkey %q, want %q", e.ID(), e.Subject(), pk, event.Subject(a.From, a.To))
		}
		back, err := event.AlertFromCloudEvent(e)
		if err != nil || back.From != a.From || back.To != a.To || back.ID() != e.ID() {
			t.Errorf("alert %s read back as %q->%q: %v", e.ID(), back.From, back.To, err)
		}
	}
}

// An account id can never block an alert's delivery: with the worst ids SPEC
// allows, every alert reaches an HTTP sink (K_SINK) through the SDK's client
// and reads back exactly.
func TestWorstIDsAlertsReachTheHTTPSink(t *testing.T) {
	var mu sync.Mutex
	var got []ce.Event
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
		if err != nil {
			b, _ := io.ReadAll(r.Body)
			t.Errorf("sink could not read an alert: %v (%s)", err, b)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, *e)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	s, err := sink.NewHTTP(srv.URL, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sent := sendWorst(t, s)
	mu.Lock()
	defer mu.Unlock()
	checkDelivered(t, sent, got)
}

// The same through Kafka (kfake, sarama, the kafka_sarama binding): every
// alert is written, keyed by its partitionkey, and reads back exactly.
func TestWorstIDsAlertsReachKafka(t *testing.T) {
	k, err := embedded.StartKafka(2, "fraud")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	kc, err := kafka.Config("test", "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := sink.NewKafka(k.Brokers, kc, "fraud")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sent := sendWorst(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msgs, err := kafka.ReadAll(ctx, k.Brokers, kc, "fraud")
	if err != nil {
		t.Fatal(err)
	}
	var got []ce.Event
	for _, m := range msgs {
		e, err := binding.ToEvent(ctx, kafka_sarama.NewMessageFromConsumerMessage(m))
		if err != nil {
			t.Fatalf("record %d/%d is no CloudEvent: %v", m.Partition, m.Offset, err)
		}
		if pk, _ := e.Extensions()[event.PartitionKey].(string); string(m.Key) != pk {
			t.Errorf("record key %q, partitionkey %q", m.Key, pk)
		}
		// The record carries the subject exactly; the SDK's binary reader
		// trims its outer white space (SetSubject), so it is checked here as
		// the bytes of the ce_subject header.
		for _, h := range m.Headers {
			if string(h.Key) == "ce_subject" {
				e.Context.(*ce.EventContextV1).Subject = &[]string{string(h.Value)}[0]
			}
		}
		got = append(got, *e)
	}
	checkDelivered(t, sent, got)
}
