package detect_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	ce "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/fintrans/fintrans/shared/codec/httpreq"
	"github.com/fintrans/fintrans/shared/detect"
	"github.com/fintrans/fintrans/shared/detect/detecttest"
	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/redistest"
	"github.com/fintrans/fintrans/shared/sink"
	"github.com/fintrans/fintrans/shared/transfer"
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
	sj := map[string]string{"Content-Type": httpreq.StructuredContentType}
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
		{"batch of hostile events", map[string]string{"Content-Type": httpreq.BatchContentType},
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
	tr := func(id string, at time.Time, cents int64) transfer.Item {
		return transfer.Item{Ref: id, Transfer: transfer.Transfer{Source: "/s", ID: id, Time: at, From: "a", To: "b", Amount: money.Cents(cents)}}
	}
	p, err := d.Process(context.Background(), []transfer.Item{tr("f", clock.Add(time.Minute+time.Second), 100), tr("1", clock.Add(-3*time.Minute), 6000_00)})
	if err != nil || p.Results[0].Status != transfer.Invalid || !strings.Contains(p.Results[0].Reason, "1m0s ahead") || p.Results[1].Status != transfer.Counted {
		t.Fatalf("%v %+v", err, p.Results)
	}
	p, err = d.Process(context.Background(), []transfer.Item{tr("2", clock.Add(-2*time.Minute), 5000_00)})
	if err != nil || p.Results[0].Status != transfer.Counted || len(p.Alerts) == 0 {
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
	sent := detecttest.SendWorstAlerts(t, s)
	mu.Lock()
	defer mu.Unlock()
	detecttest.CheckDelivered(t, sent, got)
}
