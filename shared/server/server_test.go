package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/fintrans/fintrans/shared/codec/cloudevent"
	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/detect"
	"github.com/fintrans/fintrans/shared/httpfn"
	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/redistest"
	"github.com/fintrans/fintrans/shared/server"
	"github.com/fintrans/fintrans/shared/sink"
	"github.com/fintrans/fintrans/shared/window"
)

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func post(t *testing.T, u, id, at, body string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	for k, v := range map[string]string{"Content-Type": "application/json", "Ce-Specversion": "1.0",
		"Ce-Type": cloudevent.TransactionType, "Ce-Id": id, "Ce-Source": "/metrics-test", "Ce-Time": at} {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// samples parses the Prometheus text format into "name{labels}" -> value.
func samples(text string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// TestMetricsAndProbes: after detect traffic through server.Mux, /metrics
// lists fintrans's counters and histograms with the traffic counted;
// /healthz answers 200 and /readyz follows Redis (503 down, 200 up).
func TestMetricsAndProbes(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	st, err := window.New(rdb, window.Config{Threshold: money.Cents(10000_00), Size: 10 * time.Minute, Slide: 2 * time.Minute,
		Lateness: time.Hour, MaxTransactions: 10, TTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	h := &detect.Handler{Detector: &detect.Detector{Store: st,
		Sink: sink.Func(func(_ context.Context, es []ce.Event) error { accepted.Add(int64(len(es))); return nil })},
		MaxBodyBytes: 1 << 20, MaxBatch: 100}
	web := httptest.NewServer(server.Mux(h, func(ctx context.Context) error { return rdb.Ping(ctx).Err() }))
	t.Cleanup(web.Close)

	_, before := get(t, web.URL+"/metrics")
	b := samples(before)

	for _, r := range []struct {
		id, at, body string
		code         int
	}{
		{"m1", "2017-07-23T03:00:00Z", `{"from":"m","to":"n","amount":6000}`, 200},
		{"m2", "2017-07-23T03:01:00Z", `{"from":"m","to":"n","amount":6000}`, 200}, // alerts (5 windows)
		{"m2", "2017-07-23T03:01:00Z", `{"from":"m","to":"n","amount":6000}`, 200}, // duplicate, re-fires
		{"m3", "2017-07-23T01:00:00Z", `{"from":"m","to":"n","amount":1}`, 422},    // late
		{"m4", "2017-07-23T03:00:00Z", `{"from":"m","to":"n","amount":-1}`, 400},   // invalid
	} {
		if code := post(t, web.URL+"/detect", r.id, r.at, r.body); code != r.code {
			t.Fatalf("POST %s: %d, want %d", r.id, code, r.code)
		}
	}

	code, text := get(t, web.URL+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, name := range []string{
		`fintrans_transfers_total{result="counted"}`,
		`fintrans_alerts_total{rule="structuring"}`,
		"fintrans_late_total",
		"fintrans_duplicates_total",
		"fintrans_dead_lettered_total",
		"fintrans_redis_seconds",
		"fintrans_sink_seconds",
	} {
		if !strings.Contains(text, "\n"+name) {
			t.Errorf("/metrics does not list %s", name)
		}
	}
	a := samples(text)
	delta := func(k string) float64 { return a[k] - b[k] }
	for k, want := range map[string]float64{
		`fintrans_transfers_total{result="counted"}`:   2,
		`fintrans_transfers_total{result="duplicate"}`: 1,
		`fintrans_transfers_total{result="late"}`:      1,
		`fintrans_transfers_total{result="invalid"}`:   0, // refused before Process: a single bad event is a 400
		`fintrans_alerts_total{rule="structuring"}`:    10,
		"fintrans_late_total":                          1,
		"fintrans_duplicates_total":                    1,
		"fintrans_redis_seconds_count":                 4,
		"fintrans_sink_seconds_count":                  2,
	} {
		if got := delta(k); got != want {
			t.Errorf("%s went up by %v, want %v", k, got, want)
		}
	}
	if n := accepted.Load(); n != 10 {
		t.Errorf("sink accepted %d alerts, want 10", n)
	}

	if code, _ := get(t, web.URL+"/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, body := get(t, web.URL+"/readyz"); code != 200 {
		t.Errorf("/readyz with Redis up: %d %s", code, body)
	}
	srv.Kill()
	if code, body := get(t, web.URL+"/readyz"); code != 503 || !strings.Contains(body, `"error"`) {
		t.Errorf("/readyz with Redis down: %d %s", code, body)
	}
	if code, _ := get(t, web.URL+"/healthz"); code != 200 {
		t.Errorf("/healthz with Redis down (liveness must not follow dependencies): %d", code)
	}
	srv.Restart(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get(t, web.URL+"/readyz")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after Redis came back: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// slowServer runs NewHTTPServer (the server every fintrans process runs)
// with short limits, behind a handler that reads the whole body.
func slowServer(t *testing.T, to server.Timeouts) string {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			httpfn.Write(w, httpfn.Error(http.StatusBadRequest, "cannot read body"))
			return
		}
		httpfn.Write(w, httpfn.JSON(http.StatusOK, map[string]string{"status": "read"}))
	})
	srv := server.NewHTTPServer(h, to)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// closedWithin reports whether the server closes conn within d (reading
// whatever it answers before).
func closedWithin(t *testing.T, conn net.Conn, d time.Duration) (bool, string) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, string(b)
	}
	return true, string(b)
}

// Slow clients cannot hold connections (SPEC section 6): headers sent a
// byte at a time, a body sent a byte at a time, and an idle keep-alive
// connection are each cut off at their limit.
func TestServerTimeoutsCutSlowClients(t *testing.T) {
	to := server.Timeouts{ReadHeader: 300 * time.Millisecond, Read: 700 * time.Millisecond, Write: 2 * time.Second, Idle: 500 * time.Millisecond}
	addr := slowServer(t, to)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	trickle := func(c net.Conn, s string, every time.Duration) {
		go func() {
			for i := 0; i < len(s); i++ {
				if _, err := c.Write([]byte{s[i]}); err != nil {
					return
				}
				time.Sleep(every)
			}
		}()
	}

	t.Run("headers", func(t *testing.T) {
		c := dial()
		start := time.Now()
		trickle(c, "POST / HTTP/1.1\r\nHost: x\r\nX-Slow: "+strings.Repeat("a", 100)+"\r\n\r\n", 100*time.Millisecond)
		if closed, _ := closedWithin(t, c, 5*time.Second); !closed {
			t.Fatal("a client sending its headers a byte every 100 ms still holds the connection after 5 s")
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("cut off after %s", d)
		}
	})
	t.Run("body", func(t *testing.T) {
		c := dial()
		start := time.Now()
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n")
		trickle(c, strings.Repeat("b", 100), 100*time.Millisecond) // 10 s for the whole body
		closed, answer := closedWithin(t, c, 5*time.Second)
		if !closed {
			t.Fatal("a client sending its body a byte every 100 ms still holds the connection after 5 s")
		}
		if strings.Contains(answer, `"read"`) {
			t.Fatalf("the slow body was read to its end: %q", answer)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("cut off after %s", d)
		}
	})
	t.Run("idle", func(t *testing.T) {
		c := dial()
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok")
		start := time.Now()
		closed, answer := closedWithin(t, c, 5*time.Second)
		if !closed || !strings.Contains(answer, `"read"`) {
			t.Fatalf("idle keep-alive connection: closed %v, answer %q", closed, answer)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("idle connection closed after %s", d)
		}
	})
}

// Every limit is set on the server, from the configuration's defaults when
// none is given.
func TestNewHTTPServerSetsEveryLimit(t *testing.T) {
	cfg := config.Default()
	for _, srv := range []*http.Server{server.NewHTTPServer(nil, server.Timeouts{}), server.NewHTTPServer(nil, cfg.HTTPTimeouts())} {
		if srv.ReadHeaderTimeout != cfg.HTTPReadHeaderTimeout || srv.ReadTimeout != cfg.HTTPReadTimeout ||
			srv.WriteTimeout != cfg.HTTPWriteTimeout || srv.IdleTimeout != cfg.HTTPIdleTimeout || srv.ReadHeaderTimeout <= 0 {
			t.Errorf("limits %v %v %v %v", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout)
		}
	}
}
