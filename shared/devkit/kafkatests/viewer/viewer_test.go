package viewer_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/fintrans/fintrans/shared/app"
	"github.com/fintrans/fintrans/shared/codec/cloudevent"
	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/devkit/embeddedkafka"
	"github.com/fintrans/fintrans/shared/kafka"
	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/sink"
	"github.com/fintrans/fintrans/shared/syncbuf"
	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/viewer"
)

type rig struct {
	k       *embeddedkafka.Kafka
	kc      *sarama.Config
	alerts  *sink.Kafka
	raw     sarama.SyncProducer
	cfg     config.Config
	out     *syncbuf.Buffer
	logs    *syncbuf.Buffer
	v       *viewer.Viewer
	handler http.Handler
}

func newRig(t *testing.T, logFormat string) *rig {
	t.Helper()
	k, err := embeddedkafka.Start(3, "fraud")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	kc, err := kafka.Config("test", "", kafka.Security{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := sink.NewKafka(k.Brokers, kc, "fraud")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	raw, err := sarama.NewSyncProducer(k.Brokers, kc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	cfg := config.Default()
	cfg.LogFormat = logFormat
	vc, err := kafka.Config("viewer", "", kafka.Security{})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{k: k, kc: kc, alerts: s, raw: raw, cfg: cfg, out: &syncbuf.Buffer{}, logs: &syncbuf.Buffer{}}
	r.v = viewer.New(viewerConfig(cfg, k.Brokers), vc, r.out, slog.New(slog.NewTextHandler(r.logs, nil)))
	t.Cleanup(func() { r.v.Close() })
	r.handler = &viewer.Handler{Viewer: r.v}
	return r
}

func (r *rig) send(t *testing.T, alerts ...transfer.Alert) {
	t.Helper()
	evs := make([]ce.Event, len(alerts))
	for i, a := range alerts {
		evs[i] = cloudevent.Alert(a)
	}
	if err := r.alerts.Send(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) drain(t *testing.T) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	n, err := r.v.Drain(context.Background())
	d := time.Since(start)
	if err != nil {
		t.Fatalf("Drain: %v", err)
	}
	t.Logf("Drain printed %d in %s", n, d)
	if d > 3*time.Second {
		t.Errorf("Drain took %s, want at most a couple of seconds", d)
	}
	return n, d
}

var base = time.Date(2017, 7, 23, 1, 0, 0, 0, time.UTC)

func alert(from, to string, start time.Time, amounts ...money.Cents) transfer.Alert {
	a := transfer.Alert{Rule: "structuring", GroupBy: "pair", Aggregate: "sum", From: from, To: to, WindowStart: start, WindowEnd: start.Add(10 * time.Minute),
		Threshold: transfer.Cents(10000_00), Count: len(amounts)}
	for i, m := range amounts {
		ts := start.Add(time.Duration(i+1) * time.Minute)
		a.Total += m
		a.Value = transfer.Cents(a.Total)
		a.Transactions = append(a.Transactions, transfer.AlertTransfer{ID: from + "-" + to + "-" + string(rune('a'+i)), Time: ts, Amount: m})
		a.Time = ts
	}
	return a
}

// blocks splits printed text into alert blocks, sorted.
func blocks(s string) []string {
	var out []string
	for _, b := range strings.SplitAfter(s, "\n}\n") {
		if b != "" {
			out = append(out, b)
		}
	}
	sort.Strings(out)
	return out
}

func TestDrainPrintsEachAlertOnceInTheSeedFormat(t *testing.T) {
	r := newRig(t, "text")

	a1 := alert("66", "26", base, 7810_00, 2000_00, 190_01)
	a2 := alert("1", "2", base.Add(2*time.Minute), 6000_00, 5000_00)
	a2.Count = 4 // two more than listed
	a2.Truncated = true
	a3 := alert("x'\ny", "<script>", base, 10000_01)
	r.send(t, a1, a2, a1) // a1 twice: a re-fired alert
	r.send(t, a3)
	// Undecodable records: a plain value, and a CloudEvent of another type.
	if _, _, err := r.raw.SendMessage(&sarama.ProducerMessage{Topic: "fraud", Value: sarama.StringEncoder("not an alert")}); err != nil {
		t.Fatal(err)
	}
	other := ce.New()
	other.SetID("x1")
	other.SetType("io.example.other")
	other.SetSource("/x")
	_ = other.SetData(ce.ApplicationJSON, map[string]int{"a": 1})
	if err := r.alerts.Send(context.Background(), []ce.Event{other}); err != nil {
		t.Fatal(err)
	}

	n, _ := r.drain(t)
	if n != 3 {
		t.Errorf("printed %d, want 3", n)
	}
	got := blocks(r.out.Take())
	want := blocks(`Detected Fraud: TransactionAggregate {startTimestamp=2017-07-23T01:00:00Z, endTimestamp=2017-07-23T01:10:00Z, totalAmount=10000.01, count=3, threshold=10000.00, from='66', to='26', rule=structuring, groupBy=pair, aggregate=sum, id=` + a1.ID() + `:
Transaction{timestamp=2017-07-23T01:01:00Z, origin='66', target='26', amount=7810.00, id=66-26-a}
Transaction{timestamp=2017-07-23T01:02:00Z, origin='66', target='26', amount=2000.00, id=66-26-b}
Transaction{timestamp=2017-07-23T01:03:00Z, origin='66', target='26', amount=190.01, id=66-26-c}
}
Detected Fraud: TransactionAggregate {startTimestamp=2017-07-23T01:02:00Z, endTimestamp=2017-07-23T01:12:00Z, totalAmount=11000.00, count=4, threshold=10000.00, from='1', to='2', rule=structuring, groupBy=pair, aggregate=sum, id=` + a2.ID() + `:
Transaction{timestamp=2017-07-23T01:03:00Z, origin='1', target='2', amount=6000.00, id=1-2-a}
Transaction{timestamp=2017-07-23T01:04:00Z, origin='1', target='2', amount=5000.00, id=1-2-b}
... and 2 more
}
Detected Fraud: TransactionAggregate {startTimestamp=2017-07-23T01:00:00Z, endTimestamp=2017-07-23T01:10:00Z, totalAmount=10000.01, count=1, threshold=10000.00, from='x\'\ny', to='<script>', rule=structuring, groupBy=pair, aggregate=sum, id=` + a3.ID() + `:
Transaction{timestamp=2017-07-23T01:01:00Z, origin='x\'\ny', target='<script>', amount=10000.01, id='x\'\ny-<script>-a'}
}
`)
	if strings.Join(got, "") != strings.Join(want, "") {
		t.Errorf("printed:\n%s\nwant:\n%s", strings.Join(got, ""), strings.Join(want, ""))
	}
	logs := r.logs.Take()
	if c := strings.Count(logs, "skipping undecodable record"); c != 2 {
		t.Errorf("logged %d undecodable records, want 2:\n%s", c, logs)
	}
	if !strings.Contains(logs, "partition=") || !strings.Contains(logs, "offset=") {
		t.Errorf("undecodable records logged without partition/offset:\n%s", logs)
	}

	// Nothing new: nothing printed.
	if n, _ := r.drain(t); n != 0 {
		t.Errorf("second drain printed %d, want 0", n)
	}
	if s := r.out.Take(); s != "" {
		t.Errorf("second drain printed %q", s)
	}

	// A new alert, and a repeat of an old one: the new one prints once.
	a4 := alert("7", "8", base.Add(4*time.Minute), 9999_99, 1_00)
	r.send(t, a4, a2)
	if n, _ := r.drain(t); n != 1 {
		t.Errorf("third drain printed %d, want 1", n)
	}
	if s := r.out.Take(); !strings.HasPrefix(s, "Detected Fraud: TransactionAggregate {startTimestamp=2017-07-23T01:04:00Z") || strings.Count(s, "Detected Fraud") != 1 {
		t.Errorf("third drain printed %q", s)
	}
	if n, _ := r.drain(t); n != 0 {
		t.Errorf("fourth drain printed %d, want 0", n)
	}

	// Recent alerts, newest first.
	rec := r.v.Recent()
	if len(rec) != 4 || rec[0].ID != a4.ID() {
		t.Errorf("Recent() = %d alerts, first %q; want 4, first %s", len(rec), rec[0].ID, a4.ID())
	}
}

func TestDrainCommitsForANewViewer(t *testing.T) {
	r := newRig(t, "text")
	r.send(t, alert("1", "2", base, 6000_00, 5000_00))
	if n, _ := r.drain(t); n != 1 {
		t.Fatalf("printed %d, want 1", n)
	}
	r.v.Close()

	// A new viewer (a restart: empty memory) in the same group starts after
	// the committed offsets.
	vc, _ := kafka.Config("viewer", "", kafka.Security{})
	out := &syncbuf.Buffer{}
	v2 := viewer.New(viewerConfig(r.cfg, r.k.Brokers), vc, out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer v2.Close()
	r.send(t, alert("3", "4", base, 6000_00, 5000_00))
	start := time.Now()
	n, err := v2.Drain(context.Background())
	t.Logf("new viewer: printed %d in %s", n, time.Since(start))
	if err != nil || n != 1 {
		t.Fatalf("new viewer printed %d (err %v), want 1", n, err)
	}
	if s := out.Take(); !strings.Contains(s, "from='3', to='4'") || strings.Contains(s, "from='1'") {
		t.Errorf("new viewer printed %q", s)
	}
}

func TestDrainEmptyTopicIsQuick(t *testing.T) {
	r := newRig(t, "text")
	for range 3 {
		if n, _ := r.drain(t); n != 0 {
			t.Errorf("printed %d from an empty topic", n)
		}
	}
}

func TestConcurrentDrains(t *testing.T) {
	r := newRig(t, "text")
	var as []transfer.Alert
	for i := range 20 {
		as = append(as, alert("a", "b", base.Add(time.Duration(i)*2*time.Minute), 6000_00, 5000_00))
	}
	r.send(t, as...)
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := r.v.Drain(context.Background())
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if total != 20 {
		t.Errorf("concurrent drains printed %d in all, want 20", total)
	}
	if c := strings.Count(r.out.Take(), "Detected Fraud"); c != 20 {
		t.Errorf("%d blocks printed, want 20", c)
	}
}

func TestJSONMode(t *testing.T) {
	r := newRig(t, "json")
	a := alert("66", "26", base, 7810_00, 2000_00, 190_01)
	r.send(t, a, a)
	if n, _ := r.drain(t); n != 1 {
		t.Fatalf("printed %d, want 1", n)
	}
	out := r.out.Take()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one JSON line, got %q", out)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	if got["id"] != a.ID() || got["from"] != "66" || got["to"] != "26" || got["windowStart"] != "2017-07-23T01:00:00Z" ||
		got["windowEnd"] != "2017-07-23T01:10:00Z" || got["count"] != 3.0 || got["truncated"] != false {
		t.Errorf("JSON line = %s", lines[0])
	}
	if !strings.Contains(lines[0], `"total":10000.01`) || !strings.Contains(lines[0], `"threshold":10000.00`) {
		t.Errorf("amounts not exact in %s", lines[0])
	}
	if txs, _ := got["transactions"].([]any); len(txs) != 3 {
		t.Errorf("transactions = %v", got["transactions"])
	}
}

func TestHandler(t *testing.T) {
	r := newRig(t, "text")
	r.send(t, alert("<script>alert(1)</script>", "26", base, 7810_00, 2000_00, 190_01))

	// A PingSource tick (binary CloudEvent) drains.
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"message":"tick"}`))
	req.Header.Set("Ce-Id", "1")
	req.Header.Set("Ce-Type", "dev.knative.sources.ping")
	req.Header.Set("Ce-Source", "/ping")
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	r.handler.ServeHTTP(rec, req)
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"printed":1}` {
		t.Fatalf("POST: %d %s", rec.Code, rec.Body)
	}
	// An empty tick (cron-connector): nothing new.
	rec = httptest.NewRecorder()
	r.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"printed":0}` {
		t.Fatalf("empty POST: %d %s", rec.Code, rec.Body)
	}

	// GET as JSON.
	rec = httptest.NewRecorder()
	r.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	var ans struct {
		Alerts []struct {
			ID   string `json:"id"`
			From string `json:"from"`
		} `json:"alerts"`
	}
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("GET: %d %v", rec.Code, rec.Header())
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil || len(ans.Alerts) != 1 || ans.Alerts[0].From != "<script>alert(1)</script>" {
		t.Fatalf("GET JSON: %s (err %v)", rec.Body, err)
	}
	if strings.Contains(rec.Body.String(), "<script>") {
		t.Errorf("JSON answer carries a raw <script>: %s", rec.Body)
	}

	// GET as HTML (a browser's Accept).
	req = httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	rec = httptest.NewRecorder()
	r.handler.ServeHTTP(rec, req)
	body := rec.Body.String()
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET HTML: %d %v", rec.Code, rec.Header())
	}
	if strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("account id not escaped in the page:\n%s", body)
	}
	if !strings.Contains(body, "7810.00") || !strings.Contains(body, "10000.01") {
		t.Errorf("page lacks the amounts:\n%s", body)
	}

	// curl's */* gets JSON; an explicit preference for JSON too.
	for _, accept := range []string{"*/*", "application/json", "text/html;q=0.5, application/json"} {
		req = httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Accept", accept)
		rec = httptest.NewRecorder()
		r.handler.ServeHTTP(rec, req)
		if !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			t.Errorf("Accept %q got %s", accept, rec.Header().Get("Content-Type"))
		}
	}

	// Other methods.
	rec = httptest.NewRecorder()
	r.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPut, "/", nil))
	if rec.Code != 405 || rec.Header().Get("Allow") != "GET, POST" {
		t.Errorf("PUT: %d Allow=%q", rec.Code, rec.Header().Get("Allow"))
	}
}

func TestHandlerKafkaDown(t *testing.T) {
	cfg := config.Default()
	vc, _ := kafka.Config("viewer", "", kafka.Security{})
	vc.Metadata.Retry.Max = 0
	vc.Net.DialTimeout = 200 * time.Millisecond
	v := viewer.New(viewerConfig(cfg, []string{"127.0.0.1:1"}), vc, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer v.Close()
	rec := httptest.NewRecorder()
	(&viewer.Handler{Viewer: v}).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != 503 || !strings.HasPrefix(rec.Body.String(), `{"error":`) || strings.Count(rec.Body.String(), "\n") != 1 {
		t.Errorf("Kafka down: %d %q", rec.Code, rec.Body)
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"66":         `'66'`,
		"a'b":        `'a\'b'`,
		"a\\b":       `'a\\b'`,
		"l1\nl2":     `'l1\nl2'`,
		"\x00\x1b":   `'\x00\x1b'`,
		"é€":         `'é€'`,
		"\xff":       `'\xff'`,
		"a\u2028b":   `'a\u2028b'`,
		`say "hi"`:   `'say "hi"'`,
		"<script>":   `'<script>'`,
		"tab\there.": `'tab\there.'`,
	} {
		if got := viewer.Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestWiring(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := app.New(context.Background(), "viewer", config.Default(), log); err == nil {
		t.Error("viewer without KAFKA_BROKERS: no error")
	}
	r := newRig(t, "text")
	r.send(t, alert("1", "2", base, 6000_00, 5000_00))
	cfg := r.cfg
	cfg.KafkaBrokers = r.k.Brokers
	cfg.ViewerGroup = "other-viewer"
	out := &syncbuf.Buffer{}
	v, err := app.New(context.Background(), "viewer", cfg, log, app.WithOutput(out))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := v.Ready(context.Background()); err != nil {
		t.Errorf("Ready: %v", err)
	}
	if n, err := v.Viewer.Drain(context.Background()); err != nil || n != 1 {
		t.Errorf("Drain: %d, %v", n, err)
	}
	rec := httptest.NewRecorder()
	v.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"printed":0}` {
		t.Errorf("POST: %d %s", rec.Code, rec.Body)
	}
	if c := strings.Count(out.Take(), "Detected Fraud"); c != 1 {
		t.Errorf("printed %d alerts, want 1", c)
	}
}

// With VIEWER_TOKEN_FILE set, the alert data (JSON and HTML) needs the token
// as a Bearer token or as the password of HTTP Basic; anything else gets 401
// with a Basic challenge and no alert data. A tick needs none. The token
// never appears in the logs.
func TestViewerTokenProtectsAlertData(t *testing.T) {
	const token = "s3cret-viewer-token"
	file := filepath.Join(t.TempDir(), "viewer-token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, "text")
	r.send(t, alert("acct-66", "26", base, 7810_00, 2000_00, 190_01))
	cfg, err := config.FromMap(map[string]string{"KAFKA_BROKERS": strings.Join(r.k.Brokers, ","), "VIEWER_TOKEN_FILE": file,
		"VIEWER_GROUP": "token-viewer", "LOG_LEVEL": "debug"})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	v, err := app.New(context.Background(), "viewer", cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), app.WithOutput(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	do := func(method string, header map[string]string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "/", nil)
		for k, val := range header {
			req.Header.Set(k, val)
		}
		rec := httptest.NewRecorder()
		v.Handler.ServeHTTP(rec, req)
		return rec
	}
	// A tick (PingSource, cron-connector) needs no credentials.
	if rec := do(http.MethodPost, nil); rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"printed":1}` {
		t.Fatalf("tick: %d %s", rec.Code, rec.Body)
	}
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	html := "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"
	for name, h := range map[string]map[string]string{
		"no credentials":           nil,
		"no credentials, HTML":     {"Accept": html},
		"wrong bearer":             {"Authorization": "Bearer nope"},
		"bearer prefix":            {"Authorization": "Bearer s3cret"},
		"bearer longer":            {"Authorization": "Bearer " + token + "x"},
		"wrong basic password":     {"Authorization": basic("viewer", "nope")},
		"token as basic user":      {"Authorization": basic(token, "")},
		"empty bearer":             {"Authorization": "Bearer "},
		"token without scheme":     {"Authorization": token},
		"HEAD without credentials": nil,
	} {
		method := http.MethodGet
		if strings.HasPrefix(name, "HEAD") {
			method = http.MethodHead
		}
		rec := do(method, h)
		if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") != `Basic realm="fintrans viewer", charset="UTF-8"` {
			t.Errorf("%s: %d %v", name, rec.Code, rec.Header())
		}
		if strings.Contains(rec.Body.String(), "acct-66") || strings.Contains(rec.Body.String(), "7810") {
			t.Errorf("%s: alert data in a 401: %s", name, rec.Body)
		}
	}
	for name, h := range map[string]map[string]string{
		"bearer":              {"Authorization": "Bearer " + token},
		"bearer, lower case":  {"Authorization": "bearer " + token},
		"basic, any user":     {"Authorization": basic("anyone", token)},
		"basic, empty user":   {"Authorization": basic("", token)},
		"basic, HTML browser": {"Authorization": basic("me", token), "Accept": html},
	} {
		rec := do(http.MethodGet, h)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), "acct-66") {
			t.Errorf("%s: %d %s", name, rec.Code, rec.Body)
		}
	}
	if strings.Contains(logs.Take(), token) {
		t.Error("the viewer token appears in the logs")
	}
	// Without a token the local run's viewer is open.
	open := &viewer.Handler{Viewer: v.Viewer}
	rec := httptest.NewRecorder()
	open.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "acct-66") {
		t.Errorf("no token: %d %s", rec.Code, rec.Body)
	}
}

// viewerConfig is the viewer's part of cfg, reading brokers.
func viewerConfig(cfg config.Config, brokers []string) viewer.Config {
	return viewer.Config{Brokers: brokers, Topic: cfg.FraudTopic, Group: cfg.ViewerGroup, JSON: cfg.LogFormat == "json"}
}
