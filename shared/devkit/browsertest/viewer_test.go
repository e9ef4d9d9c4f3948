package browsertest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/devkit/browsertest"
	"github.com/fintrans/fintrans/shared/devkit/pipeline"
	"github.com/fintrans/fintrans/shared/redistest"
)

// Account ids that would run code if the page ever treated them as markup;
// each sets window.pwned, which must stay unset.
var (
	scriptID = `<script>window.pwned="script"</script>`
	imgID    = `"><img src=x onerror="window.pwned='img'">`
	bidiID   = "acct-\u202egnp.exe\u202c-" + `<svg onload="window.pwned='svg'">`
	tagID    = `</bdi></li><b id=injected>bold</b>`
)

const token = "browser-test-token"

// post sends one transfer to detect over HTTP (structured CloudEvent).
func post(t *testing.T, addr, id, from, to, amount string, at time.Time) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"specversion": "1.0", "type": "io.fintrans.transaction", "id": id, "source": "/browser-test",
		"time": at.UTC().Format(time.RFC3339), "datacontenttype": "application/json",
		"data": map[string]any{"from": from, "to": to, "amount": amount},
	})
	res, err := http.Post("http://"+addr+"/function/detect", "application/cloudevents+json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("detect: %d %s", res.StatusCode, b)
	}
}

// TestLivePageInChromium runs the whole local pipeline (embedded Kafka, a
// real redis-server, VIEWER_TOKEN set) and opens the viewer's page in
// chromium: it renders the alerts with a chart each, shows hostile account
// ids as text with nothing executed (no dialog, no injected element, the
// flag an injected script would set stays unset, no CSP violation), adds a
// new alert without a reload, updates its counts, and filters by account.
func TestLivePageInChromium(t *testing.T) {
	ctx := browsertest.Start(t, 90*time.Second)
	srv := redistest.Start(t)
	cfg, err := config.FromMap(map[string]string{
		"REDIS_URL":            srv.URL,
		"VIEWER_TOKEN":         token,
		"GENERATOR_SCHEDULE":   "@every 1h", // ticks come from the test
		"VIEWER_SCHEDULE":      "@every 1s",
		"GENERATOR_FRAUD_RATE": "0.05",
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Start(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)),
		pipeline.Options{Out: io.Discard, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	url := "http://" + p.Addr + "/function/viewer"

	// Without the token: no page, no stream.
	for _, target := range []string{url, url + "?events=1"} {
		req, _ := http.NewRequest(http.MethodGet, target, nil)
		req.Header.Set("Accept", "text/html")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 401 {
			t.Fatalf("GET %s without the token: %d", target, res.StatusCode)
		}
	}

	// Generated traffic (realistic profile) and a hostile pair.
	for range 3 {
		res, err := http.Post("http://"+p.Addr+"/function/generator", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	now := time.Now()
	post(t, p.Addr, "h-1", scriptID, imgID, "6000", now.Add(-time.Minute))
	post(t, p.Addr, "h-2", scriptID, imgID, "4000.01", now)
	waitPrinted(t, p, func(n int) bool { return n >= 1 }, scriptID)

	// Record dialogs, and console messages: exceptions, errors and warnings
	// (a Content-Security-Policy violation is one).
	var mu sync.Mutex
	var problems []string
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			mu.Lock()
			problems = append(problems, "a dialog: "+ev.Message)
			mu.Unlock()
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleException || m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning {
				mu.Lock()
				problems = append(problems, string(m.Type)+": "+m.Text+" ("+m.URL+")")
				mu.Unlock()
			}
		}
	}()
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Authorization": "Bearer " + token}}); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(`li.alert`)),
		chromedp.WaitVisible(chromedp.CSS(`#live-state.on`)), // the event stream is open
		chromedp.Evaluate[chromedp.Void](`window.marker = "same page"`),
	)
	if err != nil {
		t.Fatal(err)
	}

	var before struct {
		Alerts, Charts, Steps, Thresholds, Injected int
		Accounts                                    []string
		Pwned                                       string
		ChartWidth                                  float64
		Total                                       string
		CSP                                         bool
	}
	evaluate(t, ctx, `({
		alerts: document.querySelectorAll('li.alert').length,
		charts: document.querySelectorAll('li.alert svg.chart').length,
		steps: document.querySelectorAll('li.alert svg.chart path.steps').length,
		thresholds: document.querySelectorAll('li.alert svg.chart line.threshold').length,
		injected: document.querySelectorAll('#alerts img, #alerts script, #alerts b#injected, #alerts svg:not(.chart)').length,
		accounts: Array.from(document.querySelectorAll('bdi.acct')).map(e => e.textContent),
		pwned: String(window.pwned),
		chartWidth: document.querySelector('svg.chart path.steps').getBBox().width,
		total: document.getElementById('total').textContent,
	})`, &before)
	printed := len(p.Viewer.Viewer.Recent())
	if before.Alerts != printed || before.Charts != printed || before.Steps != printed || before.Thresholds != printed {
		t.Errorf("page: %d alerts, %d charts (%d paths, %d threshold lines); the viewer printed %d", before.Alerts, before.Charts, before.Steps, before.Thresholds, printed)
	}
	if before.ChartWidth <= 0 {
		t.Errorf("the chart's path has width %v: nothing drawn", before.ChartWidth)
	}
	if before.Pwned != "undefined" || before.Injected != 0 {
		t.Fatalf("hostile ids ran: window.pwned=%s, %d injected elements", before.Pwned, before.Injected)
	}
	if !contains(before.Accounts, scriptID) || !contains(before.Accounts, imgID) {
		t.Errorf("hostile ids not shown as text; accounts on the page: %q", before.Accounts)
	}

	// A new alert arrives through the pipeline: shown without a reload.
	now = time.Now()
	post(t, p.Addr, "h-3", bidiID, tagID, "9999.99", now.Add(-30*time.Second))
	post(t, p.Addr, "h-4", bidiID, tagID, "0.02", now)
	var after struct {
		First, FirstTo, Marker, Pwned, Total string
		Injected                             int
	}
	_, err = chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`document.querySelector('li.alert bdi.from').textContent === `+jsString(bidiID),
		chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		t.Fatalf("the new alert did not appear on the open page: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // the stats event follows the alerts
	evaluate(t, ctx, `({
		first: document.querySelector('li.alert bdi.from').textContent,
		firstTo: document.querySelector('li.alert bdi.to').textContent,
		marker: String(window.marker),
		pwned: String(window.pwned),
		total: document.getElementById('total').textContent,
		injected: document.querySelectorAll('#alerts img, #alerts script, #alerts b#injected, #alerts svg:not(.chart)').length,
	})`, &after)
	if after.Marker != "same page" {
		t.Errorf("the page was reloaded (marker %q)", after.Marker)
	}
	if after.First != bidiID || after.FirstTo != tagID || after.Pwned != "undefined" || after.Injected != 0 {
		t.Errorf("new alert: from %q to %q, window.pwned=%s, %d injected elements", after.First, after.FirstTo, after.Pwned, after.Injected)
	}
	if want := len(p.Viewer.Viewer.Recent()); after.Total != itoa(want) {
		t.Errorf("total count %s, want %d", after.Total, want)
	}
	browsertest.Screenshot(ctx, t)

	// The account filter, as one types.
	var shown struct {
		Visible int
		Froms   []string
		Shown   string
	}
	err = chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#account`), "GNP.EXE"))
	if err != nil {
		t.Fatal(err)
	}
	evaluate(t, ctx, `({
		visible: document.querySelectorAll('li.alert:not([hidden])').length,
		froms: Array.from(document.querySelectorAll('li.alert:not([hidden]) bdi.from')).map(e => e.textContent),
		shown: document.getElementById('shown').textContent,
	})`, &shown)
	if shown.Visible == 0 || shown.Shown != itoa(shown.Visible) {
		t.Errorf("filter: %d visible, counter says %s", shown.Visible, shown.Shown)
	}
	for _, f := range shown.Froms {
		if f != bidiID {
			t.Errorf("filter GNP.EXE shows an alert from %q", f)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	for _, pr := range problems {
		t.Errorf("browser reported %s", pr)
	}
}

func evaluate[T any](t *testing.T, ctx context.Context, js string, out *T) {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatal(err)
	}
	*out = v
}

// waitPrinted waits until the viewer printed an alert from `from`.
func waitPrinted(t *testing.T, p *pipeline.Pipeline, ok func(int) bool, from string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		n := 0
		for _, r := range p.Viewer.Viewer.Recent() {
			if r.Alert.From == from {
				n++
			}
		}
		if ok(n) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the viewer printed no alert from %q", from)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func jsString(s string) string { b, _ := json.Marshal(s); return string(b) }

func itoa(n int) string { b, _ := json.Marshal(n); return strings.TrimSpace(string(b)) }
