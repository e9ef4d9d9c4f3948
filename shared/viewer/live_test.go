package viewer

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fintrans/fintrans/shared/httpfn"
	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/transfer"
)

const hostile = `"><img src=x onerror=alert(1)><script>window.pwned=1</script>` + "\u202e" + `gnp.exe`

func testAlert(from, to string, amounts ...money.Cents) transfer.Alert {
	ws := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	a := transfer.Alert{Rule: transfer.DefaultRule, GroupBy: transfer.GroupPair, Aggregate: "sum", From: from, To: to,
		WindowStart: ws, WindowEnd: ws.Add(10 * time.Minute), Threshold: transfer.Cents(10000_00)}
	for i, m := range amounts {
		t := ws.Add(time.Duration(i+1) * time.Minute)
		a.Transactions = append(a.Transactions, transfer.AlertTransfer{ID: "t" + string(rune('a'+i)), Time: t, Amount: m})
		a.Total += m
		a.Count++
		a.Time = t
	}
	a.Value = transfer.Cents(a.Total)
	return a
}

func newTestViewer() *Viewer { return New(Config{}, nil, io.Discard, nil) }

func get(h http.Handler, target string, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

var browser = map[string]string{"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}

func TestPageEscapesIDsDrawsChartsAndSetsCSP(t *testing.T) {
	v := newTestViewer()
	a := testAlert(hostile, "acct-2", 4000_00, 3000_00, 3500_00)
	v.print(a.ID(), a)
	b := testAlert("acct-3", "acct-4", 6000_00, 4500_00)
	v.print(b.ID(), b)
	h := &Handler{Viewer: v}

	rec := get(h, "/", browser)
	body := rec.Body.String()
	if rec.Code != 200 || rec.Header().Get("Content-Security-Policy") != PageCSP {
		t.Fatalf("page: %d %v", rec.Code, rec.Header())
	}
	for _, bad := range []string{"<img", "<script>"} {
		if strings.Contains(body, bad) {
			t.Errorf("page holds %q unescaped:\n%s", bad, body)
		}
	}
	if !strings.Contains(body, `&#34;&gt;&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;window.pwned=1&lt;/script&gt;`+"\u202e") {
		t.Errorf("the hostile id is not on the page as escaped text:\n%s", body)
	}
	// Newest first, with counts, a chart per alert (threshold line, a dot
	// per transfer, the crossing one marked), and the script by URL only.
	if strings.Index(body, "acct-3") > strings.Index(body, "acct-2") {
		t.Error("alerts are not newest first")
	}
	for _, want := range []string{`<b id="total">2</b>`, `<b id="per-minute">2</b>`, `<b>2</b> structuring`,
		`<line class="threshold"`, `<circle class="crossed"`, `<script src="?asset=live.js" defer></script>`, `data-seq="2"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s:\n%s", want, body)
		}
	}
	if n := strings.Count(body, "<circle"); n != 5 {
		t.Errorf("%d dots, want 5 (one per transfer)", n)
	}
	if strings.Count(body, "<script") != 1 || strings.Contains(body, " style=") || strings.Contains(body, "<style") {
		t.Error("inline script or style on the page: the CSP would block it")
	}

	// The account filter without the script (a submitted form).
	rec = get(h, "/?account=ACCT-3", browser)
	if !strings.Contains(rec.Body.String(), `<b id="shown">1</b>`) || strings.Count(rec.Body.String(), "<li class=\"alert\"") != 2 ||
		strings.Count(rec.Body.String(), "\" hidden>\n<div class=\"pair\">") != 1 {
		t.Errorf("?account=ACCT-3 shows other than the one alert:\n%s", rec.Body)
	}
}

func TestAssetsAreServedWithoutTokenAndNothingElseIs(t *testing.T) {
	h := &Handler{Viewer: newTestViewer(), Token: "s3cret"}
	for name, typ := range map[string]string{"live.js": "text/javascript", "live.css": "text/css"} {
		rec := get(h, "/?asset="+name, nil)
		if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), typ) || rec.Body.Len() < 100 {
			t.Errorf("asset %s: %d %v", name, rec.Code, rec.Header())
		}
	}
	if rec := get(h, "/?asset=../viewer.go", nil); rec.Code != 404 {
		t.Errorf("unknown asset: %d", rec.Code)
	}
	for _, target := range []string{"/", "/?events=1"} {
		if rec := get(h, target, browser); rec.Code != 401 {
			t.Errorf("%s without the token: %d", target, rec.Code)
		}
	}
}

// readEvent reads one server-sent event (skipping comments).
func readEvent(t *testing.T, r *bufio.Reader) (name, id, data string) {
	t.Helper()
	fields := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if fields {
				return name, id, data
			}
		case strings.HasPrefix(line, ":"):
			continue
		case strings.HasPrefix(line, "retry: "):
			fields = true
		case strings.HasPrefix(line, "event: "):
			fields = true
			name = line[7:]
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "data: "):
			data, fields = line[6:], true
		}
	}
}

func TestEventsStreamNewAlertsWithTokenAndResume(t *testing.T) {
	v := newTestViewer()
	first := testAlert("acct-1", "acct-2", 6000_00, 4500_00)
	v.print(first.ID(), first)
	srv := httptest.NewServer(&Handler{Viewer: v, Token: "s3cret"})
	defer srv.Close()

	open := func(header map[string]string, query string) (*http.Response, *bufio.Reader) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/?events=1"+query, nil)
		for k, val := range header {
			req.Header.Set(k, val)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res, bufio.NewReader(res.Body)
	}
	if res, _ := open(nil, "&since=1"); res.StatusCode != 401 {
		t.Fatalf("stream without the token: %d", res.StatusCode)
	}
	auth := map[string]string{"Authorization": "Bearer s3cret"}
	res, r := open(auth, "&since=1")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Fatalf("stream: %d %v", res.StatusCode, res.Header)
	}
	if name, _, _ := readEvent(t, r); name != "" {
		t.Fatalf("first event %q, want only the retry hint", name)
	}

	second := testAlert(hostile, "acct-9", 9000_00, 1000_01)
	v.print(second.ID(), second)
	name, id, data := readEvent(t, r)
	var ev struct {
		Seq  uint64 `json:"seq"`
		HTML string `json:"html"`
	}
	if err := json.Unmarshal([]byte(data), &ev); err != nil || name != "alert" || id != "2" || ev.Seq != 2 {
		t.Fatalf("event %q id %q data %s (err %v)", name, id, data, err)
	}
	if strings.Contains(ev.HTML, "<img") || strings.Contains(ev.HTML, "<script") ||
		!strings.Contains(ev.HTML, "&lt;img src=x onerror=alert(1)&gt;") || !strings.Contains(ev.HTML, "<svg class=\"chart\"") {
		t.Errorf("alert html not escaped or without its chart: %s", ev.HTML)
	}
	name, _, data = readEvent(t, r)
	var st Stats
	if err := json.Unmarshal([]byte(data), &st); err != nil || name != "stats" || st.Total != 2 || st.PerMinute != 2 ||
		len(st.Rules) != 1 || st.Rules[0] != (RuleCount{Rule: "structuring", Count: 2}) {
		t.Fatalf("stats event %q %s", name, data)
	}

	// A browser reconnecting names the last id it got: only what came after.
	third := testAlert("acct-5", "acct-6", 9000_00, 1000_01)
	v.print(third.ID(), third)
	_, r2 := open(map[string]string{"Authorization": "Bearer s3cret", "Last-Event-ID": "2"}, "&since=0")
	readEvent(t, r2) // retry hint
	if _, id, data := readEvent(t, r2); id != "3" || !strings.Contains(data, "acct-5") {
		t.Fatalf("resumed stream sent id %q: %s", id, data)
	}

	// StopLive ends the streams (a server shutting down does not wait).
	v.StopLive()
	done := make(chan error, 1)
	go func() { _, err := io.ReadAll(r2); done <- err }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open after StopLive")
	}
}

func TestChartStepsToTheThreshold(t *testing.T) {
	a := testAlert("a", "b", 4000_00, 3000_00, 3500_00)
	c := ChartOf(a)
	if len(c.Dots) != 3 || c.Dots[0].Crossed || c.Dots[1].Crossed || !c.Dots[2].Crossed {
		t.Fatalf("dots %+v: want the third to cross", c.Dots)
	}
	// Running total 4000, 7000, 10500 over a top of 10500: y falls; the
	// threshold line sits just under the last dot; x follows the minutes.
	if !(c.Dots[0].Y > c.Dots[1].Y && c.Dots[1].Y > c.ThresholdY && c.ThresholdY > c.Dots[2].Y) || c.Dots[2].Y != padT {
		t.Errorf("y: dots %+v, threshold %v", c.Dots, c.ThresholdY)
	}
	if c.Dots[0].X != 32 || c.Dots[2].X != 96 || c.Rest != "" {
		t.Errorf("x: %+v rest %q", c.Dots, c.Rest)
	}
	// Transfers not listed (ALERT_MAX_TRANSACTIONS) are one dashed step.
	a.Transactions = a.Transactions[:1]
	if c := ChartOf(a); c.Rest == "" || len(c.Dots) != 1 {
		t.Errorf("truncated alert: %+v", c)
	}
}

// Where answers are buffered whole (the OpenFaaS template calls Serve), the
// stream is what is new since the client's last id, the counts and the end,
// with the retry hint that makes the browser poll: the page stays live.
func TestEventsWhereAnswersAreBuffered(t *testing.T) {
	v := newTestViewer()
	for i, to := range []string{"acct-2", "acct-3", "acct-4"} {
		a := testAlert("acct-1", to, 6000_00, 4500_00+money.Cents(i))
		v.print(a.ID(), a)
	}
	h := &Handler{Viewer: v, Token: "s3cret"}
	req := func(hdr http.Header) httpfn.Response {
		return h.Func().Do(context.Background(), httpfn.Request{Method: http.MethodGet, Query: "events=1&since=0", Header: hdr})
	}
	if res := req(http.Header{}); res.Status != http.StatusUnauthorized {
		t.Fatalf("without the token: %d", res.Status)
	}
	res := req(http.Header{"Authorization": {"Bearer s3cret"}, "Last-Event-Id": {"1"}})
	body := string(res.Body)
	if res.Status != 200 || res.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" ||
		res.Header.Get("Content-Security-Policy") != PageCSP {
		t.Fatalf("%d %v", res.Status, res.Header)
	}
	if !strings.HasPrefix(body, "retry: 2000\n\n") || strings.Contains(body, "id: 1\n") ||
		!strings.Contains(body, "id: 2\nevent: alert\n") || !strings.Contains(body, "id: 3\nevent: alert\n") ||
		!strings.HasSuffix(body, "\n\n") || !strings.Contains(body, "event: stats\n") {
		t.Errorf("buffered stream:\n%s", body)
	}
	if res := req(http.Header{"Authorization": {"Bearer s3cret"}, "Last-Event-Id": {"3"}}); string(res.Body) != "retry: 2000\n\n" {
		t.Errorf("nothing new: %q", res.Body)
	}
}

// A sender rule that counts: the chart steps one per transfer to the count
// threshold, and the page names the sender, "any receiver", the rule and each
// transfer's counterparty.
func TestCountRuleOfASender(t *testing.T) {
	ws := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	a := transfer.Alert{Rule: "velocity", GroupBy: transfer.GroupFrom, Aggregate: "count", From: "acct-1",
		WindowStart: ws, WindowEnd: ws.Add(4 * time.Minute), Threshold: transfer.Transfers(5)}
	for i := range 6 {
		tm := ws.Add(time.Duration(i+1) * 30 * time.Second)
		a.Transactions = append(a.Transactions, transfer.AlertTransfer{ID: fmt.Sprintf("v%d", i), Time: tm, Amount: 10_00, To: fmt.Sprintf("payee-%d", i)})
		a.Total += 10_00
		a.Count++
		a.Time = tm
	}
	a.Value = transfer.Transfers(int64(a.Count))
	c := ChartOf(a)
	if len(c.Dots) != 6 || c.Dots[4].Crossed || !c.Dots[5].Crossed || c.Rest != "" {
		t.Fatalf("dots %+v rest %q: want the sixth to cross 5", c.Dots, c.Rest)
	}
	if !strings.Contains(c.Label, "running count") || !strings.Contains(c.Label, "reaching 6 against the threshold 5") {
		t.Errorf("label %q", c.Label)
	}
	v := newTestViewer()
	v.print(a.ID(), a)
	rec := get(&Handler{Viewer: v}, "/", map[string]string{"Accept": "text/html"})
	body := rec.Body.String()
	for _, want := range []string{`data-rule="velocity"`, `<bdi class="acct from">acct-1</bdi>`, "any receiver",
		"6 transfers &gt; 5 (total 60.00)", "<th>counterparty</th>", "<bdi>payee-5</bdi>"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if st := v.Stats(time.Now()); len(st.Rules) != 1 || st.Rules[0].Rule != "velocity" {
		t.Errorf("stats per rule %+v", st.Rules)
	}
}
