package viewer

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fintrans/fintrans/shared/httpfn"
	"github.com/fintrans/fintrans/shared/transfer"
)

// The live page: the recent alerts rendered by html/template (every account
// id is escaped text, isolated with <bdi> so that bidi controls cannot
// reorder what surrounds it), a chart per alert drawn server-side, counts,
// an account filter, and live.js, served from the binary, which adds alerts
// as they arrive over server-sent events. The Content-Security-Policy allows
// only that script, that style sheet and the event stream, all from this
// origin: nothing inline runs.

//go:embed assets/live.js assets/live.css assets/favicon.svg
var assets embed.FS

// PageCSP is the live page's Content-Security-Policy.
const PageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Asset URLs are relative queries on the page's own path, so that they work
// behind any prefix (/function/viewer on OpenFaaS, / on Knative).
const (
	assetParam  = "asset"
	eventsParam = "events"
)

var assetTypes = map[string]string{
	"live.js":     "text/javascript; charset=utf-8",
	"live.css":    "text/css; charset=utf-8",
	"favicon.svg": "image/svg+xml",
}

// assetResponse is an embedded file (no alert data: no token needed).
func assetResponse(name string) httpfn.Response {
	typ, ok := assetTypes[name]
	if !ok {
		return httpfn.Error(http.StatusNotFound, "no asset "+strconv.Quote(name))
	}
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		return httpfn.Error(http.StatusNotFound, "no asset "+strconv.Quote(name))
	}
	return httpfn.Response{Status: http.StatusOK, Body: b, Header: http.Header{
		"Content-Type": {typ}, "X-Content-Type-Options": {"nosniff"}, "Cache-Control": {"no-cache"},
	}}
}

type pageData struct {
	Alerts  []Printed
	Shown   int
	Stats   Stats
	Seq     uint64
	Account string
	Now     time.Time
}

// pageResponse renders the page; ?account= keeps the alerts whose sender or
// receiver holds that text (the script filters the same way as one types).
func (h *Handler) pageResponse(account string) httpfn.Response {
	// Read the sequence number first: an alert printed in between is both
	// on the page and sent again by the stream, which the script shows once
	// it arrives (never lost).
	recent, seq, _, _ := h.Viewer.Since(0)
	for i, j := 0, len(recent)-1; i < j; i, j = i+1, j-1 {
		recent[i], recent[j] = recent[j], recent[i]
	}
	if n := len(recent); n > 0 {
		seq = recent[0].Seq
	}
	d := pageData{Alerts: recent, Stats: h.Viewer.Stats(time.Now()), Seq: seq, Account: account, Now: time.Now().UTC()}
	for _, p := range recent {
		if matchAccount(p.Alert, d.Account) {
			d.Shown++
		}
	}
	var b bytes.Buffer
	if err := page.Execute(&b, d); err != nil {
		h.Viewer.log.Warn("viewer: rendering the page failed", "err", err)
		return httpfn.Error(http.StatusInternalServerError, "rendering the page failed")
	}
	hdr := pageHeaders()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	return httpfn.Response{Status: http.StatusOK, Header: hdr, Body: b.Bytes()}
}

// pageHeaders are the headers of the page and its stream.
func pageHeaders() http.Header {
	return http.Header{
		"Content-Security-Policy": {PageCSP},
		"X-Content-Type-Options":  {"nosniff"},
		"Referrer-Policy":         {"no-referrer"},
		"Cache-Control":           {"no-store"},
	}
}

// matchAccount is the filter: a case-insensitive substring of from or to.
func matchAccount(a transfer.Alert, q string) bool {
	if q == "" {
		return true
	}
	q = strings.ToLower(q)
	return strings.Contains(strings.ToLower(a.From), q) || strings.Contains(strings.ToLower(a.To), q)
}

// renderAlert is one alert's <li>, as the stream sends it.
func renderAlert(p Printed) (string, error) {
	var b strings.Builder
	err := page.ExecuteTemplate(&b, "alert", alertData{Printed: p, Hidden: false})
	return b.String(), err
}

type alertData struct {
	Printed
	Hidden bool
}

var page = template.Must(template.New("viewer").Funcs(template.FuncMap{
	"stamp": stamp,
	"clock": func(t time.Time) string { return t.UTC().Format("15:04:05") },
	"rule":  RuleOf,
	"chart": ChartOf,
	"more":  func(a transfer.Alert) int { return a.Count - len(a.Transactions) },
	"itoa":  func(n uint64) string { return strconv.FormatUint(n, 10) },
	"alert": func(p Printed, account string) alertData {
		return alertData{Printed: p, Hidden: !matchAccount(p.Alert, account)}
	},
	"plural": func(n int) string { return map[bool]string{true: "", false: "s"}[n == 1] },
}).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fintrans: detected fraud</title>
<link rel="icon" href="?asset=favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="?asset=live.css">
<script src="?asset=live.js" defer></script>
</head>
<body>
<header>
<div>
<h1>Detected fraud <span id="live-state">connecting</span></h1>
<p class="meta">The most recent alerts printed by this viewer, newest first (page rendered {{stamp .Now}}); new ones appear as they arrive.</p>
</div>
<ul class="stats">
<li><b id="total">{{.Stats.Total}}</b> alerts</li>
<li><b id="per-minute">{{.Stats.PerMinute}}</b> in the last minute</li>
<li>by rule: <ul id="rules" class="stats">{{range .Stats.Rules}}<li><b>{{.Count}}</b> {{.Rule}}</li>{{end}}</ul></li>
<li><b id="shown">{{.Shown}}</b> shown</li>
</ul>
<form method="get" role="search"><label>Account <input type="search" id="account" name="account" value="{{.Account}}" placeholder="filter by account id" autocomplete="off"></label></form>
</header>
<p id="empty"{{if .Alerts}} hidden{{end}}>No alert yet.</p>
<ol id="alerts" data-seq="{{itoa .Seq}}">
{{range .Alerts}}{{template "alert" alert . $.Account}}{{end}}
</ol>
</body>
</html>
{{define "alert"}}<li class="alert" data-from="{{.Alert.From}}" data-to="{{.Alert.To}}" data-rule="{{rule .Alert}}" data-id="{{.ID}}"{{if .Hidden}} hidden{{end}}>
<div class="pair">{{if .Alert.From}}<bdi class="acct from">{{.Alert.From}}</bdi>{{else}}<span class="any">any sender</span>{{end}} &rarr; {{if .Alert.To}}<bdi class="acct to">{{.Alert.To}}</bdi>{{else}}<span class="any">any receiver</span>{{end}}<span class="rule">{{rule .Alert}}</span></div>
<div class="meta">{{if .Alert.Threshold.Count}}{{.Alert.Count}} transfers &gt; {{.Alert.Threshold}} (total {{.Alert.Total}}){{else}}{{.Alert.Total}} &gt; {{.Alert.Threshold}} in {{.Alert.Count}} transfer{{plural .Alert.Count}}{{end}}, window {{clock .Alert.WindowStart}} to {{clock .Alert.WindowEnd}} UTC</div>
{{with chart .Alert}}<svg class="chart" viewBox="0 0 {{.W}} {{.H}}" role="img" aria-label="{{.Label}}"><title>{{.Label}}</title>
<line class="threshold" x1="0" y1="{{.ThresholdY}}" x2="{{.W}}" y2="{{.ThresholdY}}"></line>
<path class="steps" d="{{.Steps}}"></path>{{if .Rest}}<path class="rest" d="{{.Rest}}"></path>{{end}}
{{range .Dots}}<circle{{if .Crossed}} class="crossed"{{end}} cx="{{.X}}" cy="{{.Y}}" r="3"></circle>{{end}}
</svg>{{end}}
<details><summary>transfers, alert id</summary>
<table>
<tr><th>time</th><th>amount</th><th>id</th>{{if not (and .Alert.From .Alert.To)}}<th>counterparty</th>{{end}}</tr>
{{$pair := and .Alert.From .Alert.To}}{{range .Alert.Transactions}}<tr><td>{{stamp .Time}}</td><td>{{.Amount}}</td><td><code>{{.ID}}</code></td>{{if not $pair}}<td><bdi>{{.From}}{{.To}}</bdi></td>{{end}}</tr>
{{end}}{{with more .Alert}}{{if gt . 0}}<tr><td colspan="4">... and {{.}} more</td></tr>{{end}}{{end}}
</table>
<p>alert <code>{{.ID}}</code></p>
</details>
</li>
{{end}}`))
