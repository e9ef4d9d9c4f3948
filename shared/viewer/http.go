package viewer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fintrans/fintrans/shared/httpfn"
	"github.com/fintrans/fintrans/shared/transfer"
)

// Handler is the viewer's HTTP face:
//   - POST (a cron tick: an empty body from OpenFaaS's cron-connector or a
//     PingSource CloudEvent, read and ignored) drains the fraud topic and
//     answers 200 {"printed": n}, or 503 with a one-line JSON reason when
//     Kafka failed;
//   - GET answers the most recent alerts as JSON {"alerts": [...]}, newest
//     first, or as a small HTML page when the Accept header prefers
//     text/html;
//   - any other method gets 405 (Allow: GET, POST).
type Handler struct {
	Viewer *Viewer
	// Token (VIEWER_TOKEN), when set, is required to read alert data (GET,
	// HEAD): "Authorization: Bearer <token>", or HTTP Basic with the token as
	// password (any user name), so a browser can ask for it. Otherwise 401
	// with a Basic challenge. A tick (POST) needs none: PingSources and
	// cron-connectors send no credentials, and its answer is a count.
	Token string
}

// Realm is the realm of the viewer's Basic challenge.
const Realm = "fintrans viewer"

// authorized reports whether h carries the token. Both sides are hashed
// before the constant-time comparison, so neither the token's content nor
// its length shows in the time an answer takes.
func (h *Handler) authorized(hdr http.Header) bool {
	if h.Token == "" {
		return true
	}
	var given string
	if scheme, cred, ok := strings.Cut(hdr.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		given = strings.TrimSpace(cred)
	} else if _, pass, ok := (&http.Request{Header: hdr}).BasicAuth(); ok {
		given = pass
	} else {
		return false
	}
	want, got := sha256.Sum256([]byte(h.Token)), sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

// DrainAnswer is the answer to a tick.
type DrainAnswer struct {
	Printed int `json:"printed"`
}

// RecentAnswer is the answer to GET.
type RecentAnswer struct {
	Alerts []jsonAlert `json:"alerts"`
}

const maxTickBody = 1 << 20

// Func is the handler with its body limit.
func (h *Handler) Func() httpfn.Func { return httpfn.Func{Serve: h.Serve, MaxBody: maxTickBody} }

// ServeHTTP serves h.Func over net/http.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.Func().ServeHTTP(w, r) }

// Serve drains on POST and lists the recent alerts on GET.
func (h *Handler) Serve(ctx context.Context, r httpfn.Request) httpfn.Response {
	switch r.Method {
	case http.MethodPost:
		n, err := h.Viewer.Drain(ctx)
		if err != nil {
			h.Viewer.log.Error("viewer: drain failed", "printed", n, "err", err)
			return httpfn.ErrorWith(http.StatusServiceUnavailable, http.Header{"Retry-After": {"1"}},
				"reading the fraud topic failed after printing "+strconv.Itoa(n)+" alerts: "+transfer.OneLine(err.Error()))
		}
		return httpfn.JSON(http.StatusOK, DrainAnswer{Printed: n})
	case http.MethodGet, http.MethodHead:
		if !h.authorized(r.Header) {
			return httpfn.ErrorWith(http.StatusUnauthorized, http.Header{"Www-Authenticate": {`Basic realm="` + Realm + `", charset="UTF-8"`}},
				"credentials required: send Authorization: Bearer <VIEWER_TOKEN>, or HTTP Basic with the token as password")
		}
		recent := h.Viewer.Recent()
		if prefersHTML(r.Header.Get("Accept")) {
			var b bytes.Buffer
			if err := page.Execute(&b, pageData{Alerts: recent, Now: time.Now().UTC()}); err != nil {
				h.Viewer.log.Warn("viewer: rendering the page failed", "err", err)
			}
			return httpfn.Response{Status: http.StatusOK, Body: b.Bytes(), Header: http.Header{
				"Content-Type":            {"text/html; charset=utf-8"},
				"Content-Security-Policy": {"default-src 'none'; style-src 'unsafe-inline'"},
				"X-Content-Type-Options":  {"nosniff"},
			}}
		}
		ans := RecentAnswer{Alerts: make([]jsonAlert, len(recent))}
		for i, p := range recent {
			ans.Alerts[i] = jsonOf(p.ID, p.Alert)
		}
		return httpfn.JSON(http.StatusOK, ans)
	default:
		return httpfn.ErrorWith(http.StatusMethodNotAllowed, http.Header{"Allow": {"GET, POST"}},
			"method "+r.Method+" not allowed: POST (a cron tick) prints new alerts, GET lists the recent ones")
	}
}

// prefersHTML reports whether an Accept header ranks text/html above
// application/json (a browser's does; curl's "*/*" does not).
func prefersHTML(accept string) bool {
	if accept == "" {
		return false
	}
	qh, eh := quality(accept, "text", "html")
	qj, ej := quality(accept, "application", "json")
	if qh != qj {
		return qh > qj
	}
	return qh > 0 && eh && !ej
}

// quality is the q-value an Accept header gives type/sub (most specific
// range wins) and whether it names it exactly.
func quality(accept, typ, sub string) (q float64, exact bool) {
	best := -1 // specificity of the matching range: 0 */*, 1 type/*, 2 type/sub
	for _, part := range strings.Split(accept, ",") {
		fields := strings.Split(part, ";")
		mt := strings.ToLower(strings.TrimSpace(fields[0]))
		t, s, ok := strings.Cut(mt, "/")
		if !ok {
			continue
		}
		spec := -1
		switch {
		case t == typ && s == sub:
			spec = 2
		case t == typ && s == "*":
			spec = 1
		case t == "*" && s == "*":
			spec = 0
		}
		if spec < 0 || spec < best {
			continue
		}
		v := 1.0
		for _, p := range fields[1:] {
			k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil && f >= 0 && f <= 1 {
					v = f
				}
			}
		}
		if spec > best || v > q {
			q = v
		}
		best = spec
	}
	return q, best == 2
}

type pageData struct {
	Alerts []Printed
	Now    time.Time
}

var page = template.Must(template.New("viewer").Funcs(template.FuncMap{
	"stamp": stamp,
	"more": func(a transfer.Alert) int {
		return a.Count - len(a.Transactions)
	},
}).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>fintrans: detected fraud</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
td, th { border: 1px solid #ccc; padding: .25em .5em; text-align: left; }
code { white-space: pre-wrap; word-break: break-all; }
</style>
</head>
<body>
<h1>Detected fraud</h1>
<p>The {{len .Alerts}} most recent alerts printed by this viewer, newest first ({{stamp .Now}}).</p>
{{range .Alerts}}
<h2>{{.Alert.Rule}}: <code>{{.Alert.GroupKey}}</code>: {{.Alert.Aggregate}} {{.Alert.Value}} &gt; {{.Alert.Threshold}}</h2>
<p>Rule <code>{{.Alert.Rule}}</code> ({{.Alert.Aggregate}} by {{.Alert.GroupBy}}). Window {{stamp .Alert.WindowStart}} to {{stamp .Alert.WindowEnd}}, {{.Alert.Count}} transfers, total {{.Alert.Total}}, alert id <code>{{.ID}}</code>.</p>
<table>
<tr><th>time</th><th>amount</th><th>id</th><th>from</th><th>to</th></tr>
{{range .Alert.Transactions}}<tr><td>{{stamp .Time}}</td><td>{{.Amount}}</td><td><code>{{.ID}}</code></td><td><code>{{.From}}</code></td><td><code>{{.To}}</code></td></tr>
{{end}}{{with more .Alert}}{{if gt . 0}}<tr><td colspan="5">... and {{.}} more</td></tr>{{end}}{{end}}
</table>
{{else}}
<p>No alert yet.</p>
{{end}}
</body>
</html>
`))
