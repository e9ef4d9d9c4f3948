package detect_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"
	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/codec/cloudevent"
	"github.com/fintrans/fintrans/shared/codec/httpreq"
	"github.com/fintrans/fintrans/shared/detect"
	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/redistest"
	"github.com/fintrans/fintrans/shared/sink"
	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/window"
	"github.com/fintrans/fintrans/shared/window/windowtest"
)

// fakeSink records what it accepted and fails while fail is set.
type fakeSink struct {
	mu     sync.Mutex
	fail   bool
	events []ce.Event
}

func (f *fakeSink) Send(_ context.Context, es []ce.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("sink unavailable")
	}
	f.events = append(f.events, es...)
	return nil
}
func (f *fakeSink) Close() error { return nil }
func (f *fakeSink) ids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.events {
		out = append(out, e.ID())
	}
	return out
}

var _ sink.Sink = (*fakeSink)(nil)

type fixture struct {
	rdb  *redis.Client
	sink *fakeSink
	srv  *httptest.Server
}

func setup(t *testing.T) *fixture {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	st, err := window.New(rdb, window.Config{Threshold: 10000_00, Size: 10 * time.Minute, Slide: 2 * time.Minute,
		Lateness: time.Hour, MaxTransactions: 10, TTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeSink{}
	h := &detect.Handler{Detector: &detect.Detector{Store: st, Sink: fs}, MaxBodyBytes: 64 << 10, MaxBatch: 100}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fixture{rdb: rdb, sink: fs, srv: srv}
}

func (f *fixture) post(t *testing.T, header map[string]string, body string) (int, detect.Answer, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var raw strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := res.Body.Read(buf)
		raw.Write(buf[:n])
		if err != nil {
			break
		}
	}
	var a detect.Answer
	_ = json.Unmarshal([]byte(raw.String()), &a)
	return res.StatusCode, a, raw.String()
}

func binary(id, tm string) map[string]string {
	return map[string]string{"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Type": cloudevent.TransactionType,
		"Ce-Id": id, "Ce-Source": "/test", "Ce-Time": tm}
}

func TestCountsAndAlerts(t *testing.T) {
	f := setup(t)
	code, a, raw := f.post(t, binary("t1", "2017-07-23T01:06:47Z"), `{"from":"66","to":"26","amount":7810}`)
	if code != 200 || a.Counted != 1 || len(a.Alerts) != 0 {
		t.Fatalf("%d %s", code, raw)
	}
	code, a, raw = f.post(t, map[string]string{"Content-Type": "application/cloudevents+json"},
		`{"specversion":"1.0","type":"io.fintrans.transaction","id":"t2","source":"/test","time":"2017-07-23T01:07:47Z","data":{"from":"66","to":"26","amount":"2190.01"}}`)
	if code != 200 || a.Counted != 1 || len(a.Alerts) != 5 || len(a.Results[0].Alerts) != 5 {
		t.Fatalf("%d %s", code, raw)
	}
	if got := f.sink.ids(); len(got) != 5 || got[0] != a.Alerts[0].ID {
		t.Fatalf("sink got %v", got)
	}
	// The same transfer again: a duplicate that fired, so it fires again.
	code, a, raw = f.post(t, binary("t2", "2017-07-23T01:07:47Z"), `{"from":"66","to":"26","amount":2190.01}`)
	if code != 200 || a.Duplicate != 1 || len(a.Alerts) != 5 {
		t.Fatalf("%d %s", code, raw)
	}
	// t1 again: a duplicate that fired nothing.
	code, a, _ = f.post(t, binary("t1", "2017-07-23T01:06:47Z"), `{"from":"66","to":"26","amount":7810}`)
	if code != 200 || a.Duplicate != 1 || len(a.Alerts) != 0 {
		t.Fatalf("%d %+v", code, a)
	}
}

func TestBadInputAnswers400AndChangesNothing(t *testing.T) {
	f := setup(t)
	if code, _, raw := f.post(t, binary("seed", "2017-07-23T01:00:00Z"), `{"from":"1","to":"2","amount":5}`); code != 200 {
		t.Fatal(raw)
	}
	before := windowtest.Take(t, f.rdb)
	cases := []struct {
		name   string
		header map[string]string
		body   string
	}{
		{"bad amount", binary("b1", "2017-07-23T01:00:00Z"), `{"from":"1","to":"2","amount":"1,000"}`},
		{"negative amount", binary("b2", "2017-07-23T01:00:00Z"), `{"from":"1","to":"2","amount":-1}`},
		{"bad time", map[string]string{"Content-Type": "application/cloudevents+json"}, `{"specversion":"1.0","type":"io.fintrans.transaction","id":"b3","source":"/s","time":"not a time","data":{"from":"1","to":"2","amount":1}}`},
		{"wrong type", map[string]string{"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Type": "com.example", "Ce-Id": "b4", "Ce-Source": "/s"}, `{"from":"1","to":"2","amount":1}`},
		{"same account", binary("b5", "2017-07-23T01:00:00Z"), `{"from":"1","to":"1","amount":1}`},
		{"malformed json", map[string]string{"Content-Type": "application/cloudevents+json"}, `{"specversion":`},
		{"oversized body", binary("b6", "2017-07-23T01:00:00Z"), `{"from":"1","to":"2","amount":1,"pad":"` + strings.Repeat("x", 70<<10) + `"}`},
		{"bad seed line", map[string]string{"Content-Type": "text/plain"}, "2017-07-23T01:00:00Z;1;2"},
		{"batch with no valid event", map[string]string{"Content-Type": httpreq.BatchContentType}, `[{"specversion":"1.0","type":"x","id":"1","source":"/s"}]`},
		{"unsupported media type", map[string]string{"Content-Type": "application/xml"}, `<a/>`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, raw := f.post(t, tc.header, tc.body)
			if code != 400 {
				t.Fatalf("status %d: %s", code, raw)
			}
			var reason map[string]any
			if err := json.Unmarshal([]byte(raw), &reason); err != nil || reason["error"] == "" || strings.Count(strings.TrimSpace(raw), "\n") != 0 {
				t.Fatalf("answer is not a one-line JSON reason: %q", raw)
			}
			if !before.Equal(windowtest.Take(t, f.rdb)) {
				t.Fatal("bad input changed Redis")
			}
		})
	}
	if len(f.sink.ids()) != 0 {
		t.Fatal("bad input reached the sink")
	}
}

func TestBatchAnswersPerEvent(t *testing.T) {
	f := setup(t)
	var parts []string
	for i := 0; i < 4; i++ {
		parts = append(parts, fmt.Sprintf(`{"specversion":"1.0","type":"io.fintrans.transaction","id":"b%d","source":"/s","time":"2017-07-23T01:0%d:00Z","data":{"from":"a","to":"b","amount":3000}}`, i, i))
	}
	parts = append(parts, `{"specversion":"1.0","type":"io.fintrans.transaction","id":"bad","source":"/s","time":"2017-07-23T01:00:00Z","data":{"from":"a","to":"b","amount":0}}`)
	code, a, raw := f.post(t, map[string]string{"Content-Type": httpreq.BatchContentType}, "["+strings.Join(parts, ",")+"]")
	if code != 200 || a.Counted != 4 || a.Invalid != 1 || len(a.Results) != 5 || a.Results[4].Status != transfer.Invalid || a.Results[4].Reason == "" {
		t.Fatalf("%d %s", code, raw)
	}
	if len(a.Alerts) == 0 || a.Results[3].Alerts == nil {
		t.Fatalf("12000 in one window must alert: %s", raw)
	}
}

func TestLateAnswers422(t *testing.T) {
	f := setup(t)
	f.post(t, binary("n", "2017-07-23T03:00:00Z"), `{"from":"1","to":"2","amount":5}`)
	before := windowtest.Take(t, f.rdb)
	code, a, raw := f.post(t, binary("o", "2017-07-23T01:59:59Z"), `{"from":"1","to":"2","amount":50000}`)
	if code != http.StatusUnprocessableEntity || a.Late != 1 || !strings.Contains(a.Error, "late") {
		t.Fatalf("%d %s", code, raw)
	}
	if !before.Equal(windowtest.Take(t, f.rdb)) {
		t.Fatal("a late transfer changed Redis")
	}
}

func TestSinkFailureAnswers503ThenRedeliveryFiresTheSameAlert(t *testing.T) {
	f := setup(t)
	f.post(t, binary("s1", "2017-07-23T01:00:00Z"), `{"from":"x","to":"y","amount":9000}`)
	f.sink.fail = true
	code, _, raw := f.post(t, binary("s2", "2017-07-23T01:01:00Z"), `{"from":"x","to":"y","amount":2000}`)
	if code != http.StatusServiceUnavailable || !strings.Contains(raw, "sink") {
		t.Fatalf("%d %s", code, raw)
	}
	f.sink.fail = false
	code, a, raw := f.post(t, binary("s2", "2017-07-23T01:01:00Z"), `{"from":"x","to":"y","amount":2000}`)
	if code != 200 || a.Duplicate != 1 || len(a.Alerts) != 5 {
		t.Fatalf("redelivery: %d %s", code, raw)
	}
	want := transfer.AlertID("x", "y", time.Date(2017, 7, 23, 1, 0, 0, 0, time.UTC))
	found := false
	for _, id := range f.sink.ids() {
		found = found || id == want
	}
	if !found {
		t.Fatalf("alert %s not delivered after redelivery: %v", want, f.sink.ids())
	}
}

func TestRedisDownAnswers503(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	st, _ := window.New(rdb, window.Config{Threshold: money.Cents(1), Size: time.Minute, Slide: time.Minute, Lateness: time.Hour, TTL: 2 * time.Hour})
	h := &detect.Handler{Detector: &detect.Detector{Store: st, Sink: &fakeSink{}}, MaxBodyBytes: 1 << 20, MaxBatch: 10}
	srv.Kill()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"from":"1","to":"2","amount":5}`))
	for k, v := range binary("r", "2017-07-23T01:00:00Z") {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	f := setup(t)
	res, err := http.Get(f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: %d", res.StatusCode)
	}
}
