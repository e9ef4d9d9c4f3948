package app_test

// No secret in logs or answers, and functions refuse what they do not serve.
//
// detect is wired by app.New from a configuration whose REDIS_URL carries the
// password of a real redis-server (requirepass), with K_SINK pointing at a
// local HTTP sink. Every log line (the function's logger, slog.Default and
// go-redis's own logger) goes to one buffer. Good, bad and refused requests,
// a Redis that is down (503), a sink that is down (503) and the readiness
// probe must never show the password, in the logs or in any answer.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/app"
	"github.com/fintrans/fintrans/shared/codec/cloudevent"
	"github.com/fintrans/fintrans/shared/codec/httpreq"
	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/logging"
	"github.com/fintrans/fintrans/shared/redistest"
	"github.com/fintrans/fintrans/shared/server"
	"github.com/fintrans/fintrans/shared/syncbuf"
)

const password = "Pa55-w0rd/with:odd@chars"

// redisLog sends go-redis's internal log lines to a buffer.
type redisLog struct{ w io.Writer }

func (r redisLog) Printf(_ context.Context, format string, v ...any) {
	fmt.Fprintf(r.w, "go-redis: "+format+"\n", v...)
}

// leaks reports whether s holds the password in any usual encoding.
func leaks(s string) bool {
	for _, form := range []string{password, url.QueryEscape(password), url.PathEscape(password), url.UserPassword("", password).String()[1:]} {
		if strings.Contains(s, form) {
			return true
		}
	}
	return false
}

type answer struct {
	code   int
	header http.Header
	body   string
}

func do(t *testing.T, method, target string, header map[string]string, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, res.Header, string(b)}
}

func ceHeaders(id string) map[string]string {
	return map[string]string{"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Type": cloudevent.TransactionType,
		"Ce-Id": id, "Ce-Source": "/security", "Ce-Time": "2017-07-23T01:06:47Z"}
}

func TestNoSecretInLogsOrAnswers(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) { noSecretRun(t, format) })
	}
}

func noSecretRun(t *testing.T, format string) {
	srv := redistest.Start(t, redistest.WithPassword(password))
	if !strings.Contains(srv.URL, "@") {
		t.Fatalf("REDIS_URL %s carries no password", srv.URL)
	}
	var sinkUp atomic.Bool
	sinkUp.Store(true)
	var delivered atomic.Int64
	ks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if !sinkUp.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		delivered.Add(1)
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(ks.Close)

	logs := &syncbuf.Buffer{}
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	redis.SetLogger(redisLog{logs})
	t.Cleanup(func() { redis.SetLogger(redisLog{os.Stderr}) })

	cfg, err := config.FromMap(map[string]string{"REDIS_URL": srv.URL, "K_SINK": ks.URL, "LOG_LEVEL": "debug", "LOG_FORMAT": format})
	if err != nil {
		t.Fatal(err)
	}
	f, err := app.New(context.Background(), "detect", cfg, logging.NewTo(logs, cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	web := httptest.NewServer(server.Mux(f.Handler, f.Ready))
	t.Cleanup(web.Close)

	var answers []answer
	expect := func(what string, a answer, code int) answer {
		t.Helper()
		answers = append(answers, a)
		if a.code != code {
			t.Errorf("%s: %d, want %d: %s", what, a.code, code, a.body)
		}
		return a
	}

	// Good requests: counted, one over the threshold alerts through K_SINK.
	expect("transfer", do(t, "POST", web.URL, ceHeaders("ok-1"), `{"from":"66","to":"26","amount":7810.25}`), 200)
	a := expect("transfer over the threshold", do(t, "POST", web.URL, ceHeaders("ok-2"), `{"from":"67","to":"26","amount":"10000.01"}`), 200)
	if !strings.Contains(a.body, "fraud-") || delivered.Load() == 0 {
		t.Errorf("no alert delivered to K_SINK: %s", a.body)
	}
	expect("seed line", do(t, "POST", web.URL, map[string]string{"Content-Type": "text/plain"}, "2017-07-23T01:06:47Z;66;26;7810"), 200)
	expect("batch with a bad event", do(t, "POST", web.URL, map[string]string{"Content-Type": httpreq.BatchContentType},
		`[{"specversion":"1.0","type":"io.fintrans.transaction","id":"b1","source":"/s","time":"2017-07-23T01:00:00Z","data":{"from":"1","to":"2","amount":5}},{"specversion":"1.0"}]`), 200)
	expect("readyz", do(t, "GET", web.URL+"/readyz", nil, ""), 200)
	expect("healthz", do(t, "GET", web.URL+"/healthz", nil, ""), 200)

	// Bad requests: 400 with a one-line reason.
	for name, req := range map[string]struct {
		h    map[string]string
		body string
	}{
		"malformed json":  {map[string]string{"Content-Type": httpreq.StructuredContentType}, `{"specversion":`},
		"bad amount":      {ceHeaders("bad-1"), `{"from":"1","to":"2","amount":"1e9"}`},
		"application/xml": {map[string]string{"Content-Type": "application/xml"}, `<transfer/>`},
		"xml CloudEvent":  {map[string]string{"Content-Type": "application/xml", "Ce-Specversion": "1.0", "Ce-Type": cloudevent.TransactionType, "Ce-Id": "x", "Ce-Source": "/s", "Ce-Time": "2017-07-23T01:06:47Z"}, `<transfer/>`},
		"form post":       {map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, `from=1&to=2&amount=5`},
		"oversized body":  {ceHeaders("big"), `{"from":"1","to":"2","amount":1,"pad":"` + strings.Repeat("x", int(cfg.MaxBodyBytes)) + `"}`},
	} {
		a := expect(name, do(t, "POST", web.URL, req.h, req.body), 400)
		if strings.Count(strings.TrimSpace(a.body), "\n") != 0 || !strings.Contains(a.body, `"error"`) {
			t.Errorf("%s: not a one-line JSON reason: %q", name, a.body)
		}
	}

	// Methods detect does not serve.
	for _, m := range []string{"GET", "PUT", "DELETE", "PATCH"} {
		a := expect(m, do(t, m, web.URL, nil, ""), 405)
		if a.header.Get("Allow") != "POST" {
			t.Errorf("%s: Allow %q", m, a.header.Get("Allow"))
		}
	}

	// The sink is down: 503, Retry-After, nothing acknowledged.
	sinkUp.Store(false)
	a = expect("sink down", do(t, "POST", web.URL, ceHeaders("sink-1"), `{"from":"68","to":"26","amount":"10000.01"}`), 503)
	if a.header.Get("Retry-After") == "" {
		t.Error("sink down: no Retry-After")
	}
	sinkUp.Store(true)

	// Redis is down: 503 with Retry-After, and not ready.
	srv.Kill()
	a = expect("redis down", do(t, "POST", web.URL, ceHeaders("down-1"), `{"from":"66","to":"26","amount":1}`), 503)
	if a.header.Get("Retry-After") == "" {
		t.Error("redis down: no Retry-After")
	}
	expect("readyz with redis down", do(t, "GET", web.URL+"/readyz", nil, ""), 503)

	// A function wired while Redis is down logs a warning (through
	// slog.Default) and starts; its first request answers 503.
	f2, err := app.New(context.Background(), "detect", cfg, logging.NewTo(logs, cfg))
	if err != nil {
		t.Fatalf("detect must start while Redis is down: %v", err)
	}
	t.Cleanup(func() { f2.Close() })
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/", strings.NewReader(`{"from":"66","to":"26","amount":1}`))
	for k, v := range ceHeaders("down-2") {
		req.Header.Set(k, v)
	}
	f2.Handler.ServeHTTP(rec, req)
	expect("second instance, redis down", answer{rec.Code, rec.Header(), rec.Body.String()}, 503)

	srv.Restart(t)
	expect("redis back", do(t, "POST", web.URL, ceHeaders("down-1"), `{"from":"66","to":"26","amount":1}`), 200)
	expect("readyz with redis back", do(t, "GET", web.URL+"/readyz", nil, ""), 200)
	expect("metrics", do(t, "GET", web.URL+"/metrics", nil, ""), 200)

	time.Sleep(50 * time.Millisecond) // let go-redis's background dialers log
	out := logs.String()
	if !strings.Contains(out, "detect ready") || !strings.Contains(out, "redis not reachable yet") || !strings.Contains(out, "detect failed") {
		t.Fatalf("the logs miss the expected lines; the test checks nothing:\n%s", out)
	}
	if leaks(out) {
		t.Errorf("the logs hold the Redis password:\n%s", out)
	}
	for _, a := range answers {
		if leaks(a.body) || leaks(fmt.Sprint(a.header)) {
			t.Errorf("an answer holds the Redis password: %d %v %s", a.code, a.header, a.body)
		}
	}
}

// TestFunctionsRefuseWhatTheyDoNotServe: each function answers 405 (with
// Allow) for methods it does not serve, and detect 400 for media types it
// does not read.
func TestFunctionsRefuseWhatTheyDoNotServe(t *testing.T) {
	ks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(ks.Close)
	srv := redistest.Start(t)
	cfg, err := config.FromMap(map[string]string{"REDIS_URL": srv.URL, "K_SINK": ks.URL, "KAFKA_BROKERS": "127.0.0.1:1", "GENERATOR_TRANSFERS": "5"})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	fn := map[string]http.Handler{}
	for _, name := range []string{"detect", "generator", "viewer"} {
		f, err := app.New(context.Background(), name, cfg, quiet)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() { f.Close() })
		fn[name] = f.Handler
	}
	serve := func(name, method, ct, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "/", strings.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		rec := httptest.NewRecorder()
		fn[name].ServeHTTP(rec, req)
		return rec
	}
	cases := []struct {
		fn, method, ct, body string
		code                 int
		allow                string
	}{
		{"detect", "GET", "", "", 405, "POST"},
		{"detect", "PUT", "application/json", `{"from":"1","to":"2","amount":1}`, 405, "POST"},
		{"detect", "DELETE", "", "", 405, "POST"},
		{"detect", "POST", "application/xml", "<a/>", 400, ""},
		{"detect", "POST", "text/html", "<p>hi</p>", 400, ""},
		{"detect", "POST", "multipart/form-data; boundary=x", "--x--", 400, ""},
		{"generator", "GET", "", "", 405, "POST"},
		{"generator", "PUT", "", "", 405, "POST"},
		{"generator", "DELETE", "", "", 405, "POST"},
		{"generator", "POST", "", "", 200, ""}, // a cron tick
		{"viewer", "PUT", "", "", 405, "GET, POST"},
		{"viewer", "DELETE", "", "", 405, "GET, POST"},
		{"viewer", "PATCH", "", "", 405, "GET, POST"},
		{"viewer", "GET", "", "", 200, ""}, // the recent alerts
	}
	for _, c := range cases {
		rec := serve(c.fn, c.method, c.ct, c.body)
		if rec.Code != c.code {
			t.Errorf("%s %s (%s): %d, want %d: %s", c.fn, c.method, c.ct, rec.Code, c.code, rec.Body)
		}
		if c.allow != "" && rec.Header().Get("Allow") != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.fn, c.method, rec.Header().Get("Allow"), c.allow)
		}
		if rec.Code >= 400 && !strings.Contains(rec.Body.String(), `"error"`) {
			t.Errorf("%s %s: no JSON reason: %s", c.fn, c.method, rec.Body)
		}
	}
}

// TestNoSinkCredentialsInLogsOrAnswers: a K_SINK URL may carry basic-auth
// credentials (an OpenFaaS gateway behind basic auth, say). They are used,
// but never logged nor echoed in an answer, even when the sink fails.
func TestNoSinkCredentialsInLogsOrAnswers(t *testing.T) {
	const sinkPassword = "sink-Secr3t-pw"
	var up atomic.Bool
	up.Store(true)
	var authed atomic.Int64
	ks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if u, p, ok := r.BasicAuth(); ok && u == "gw" && p == sinkPassword {
			authed.Add(1)
		}
		if !up.Load() {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(ks.Close)
	target := strings.Replace(ks.URL, "http://", "http://gw:"+sinkPassword+"@", 1)
	srv := redistest.Start(t)
	logs := &syncbuf.Buffer{}
	cfg, err := config.FromMap(map[string]string{"REDIS_URL": srv.URL, "K_SINK": target, "LOG_LEVEL": "debug", "GENERATOR_TRANSFERS": "3"})
	if err != nil {
		t.Fatal(err)
	}
	webs := map[string]string{}
	for _, name := range []string{"detect", "generator"} {
		f, err := app.New(context.Background(), name, cfg, logging.NewTo(logs, cfg))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		web := httptest.NewServer(f.Handler)
		t.Cleanup(web.Close)
		webs[name] = web.URL
	}
	var bodies []string
	for i, state := range []string{"up", "refusing", "gone"} {
		switch state {
		case "refusing":
			up.Store(false)
		case "gone":
			ks.Close()
		}
		for _, name := range []string{"detect", "generator"} {
			var a answer
			if name == "detect" {
				a = do(t, "POST", webs[name], ceHeaders("sink-"+state), `{"from":"a`+strconv.Itoa(i)+`","to":"b","amount":"10000.01"}`)
			} else {
				a = do(t, "POST", webs[name], nil, "")
			}
			if want := map[bool]int{true: 200, false: 503}[state == "up"]; a.code != want {
				t.Errorf("%s with the sink %s: %d, want %d: %s", name, state, a.code, want, a.body)
			}
			bodies = append(bodies, a.body)
		}
	}
	if authed.Load() == 0 {
		t.Fatal("the sink never got the credentials")
	}
	for _, s := range append(bodies, logs.String()) {
		if strings.Contains(s, sinkPassword) {
			t.Errorf("K_SINK's password leaked: %s", s)
		}
	}
}
