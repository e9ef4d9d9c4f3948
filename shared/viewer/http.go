package viewer

import (
	"crypto/sha256"
	"crypto/subtle"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/fintrans/fintrans/shared/server"
)

// Handler is the viewer's HTTP face:
//   - POST (a cron tick: an empty body from OpenFaaS's cron-connector or a
//     PingSource CloudEvent, read and ignored) drains the fraud topic and
//     answers 200 {"printed": n}, or 503 with a one-line JSON reason when
//     Kafka failed;
//   - GET answers the most recent alerts as JSON {"alerts": [...]}, newest
//     first, or as the live page (page.go) when the Accept header prefers
//     text/html; GET ?events=1 is the page's stream of new alerts (sse.go)
//     and GET ?asset=live.js|live.css its script and style;
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

// authorized reports whether r carries the token. Both sides are hashed
// before the constant-time comparison, so neither the token's content nor
// its length shows in the time an answer takes.
func (h *Handler) authorized(r *http.Request) bool {
	if h.Token == "" {
		return true
	}
	var given string
	if scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		given = strings.TrimSpace(cred)
	} else if _, pass, ok := r.BasicAuth(); ok {
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

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxTickBody))
		n, err := h.Viewer.Drain(r.Context())
		if err != nil {
			h.Viewer.log.Error("viewer: drain failed", "printed", n, "err", err)
			w.Header().Set("Retry-After", "1")
			server.Error(w, http.StatusServiceUnavailable, "reading the fraud topic failed after printing "+strconv.Itoa(n)+" alerts: "+oneLine(err.Error()))
			return
		}
		server.JSON(w, http.StatusOK, DrainAnswer{Printed: n})
	case http.MethodGet, http.MethodHead:
		if name := r.URL.Query().Get(assetParam); name != "" {
			serveAsset(w, name) // the page's script and style: no alert data
			return
		}
		if !h.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+Realm+`", charset="UTF-8"`)
			server.Error(w, http.StatusUnauthorized, "credentials required: send Authorization: Bearer <VIEWER_TOKEN>, or HTTP Basic with the token as password")
			return
		}
		if wantsEvents(r) {
			h.serveEvents(w, r)
			return
		}
		if prefersHTML(r.Header.Get("Accept")) {
			h.servePage(w, r)
			return
		}
		recent := h.Viewer.Recent()
		ans := RecentAnswer{Alerts: make([]jsonAlert, len(recent))}
		for i, p := range recent {
			ans.Alerts[i] = jsonOf(p.ID, p.Alert)
		}
		server.JSON(w, http.StatusOK, ans)
	default:
		w.Header().Set("Allow", "GET, POST")
		server.Error(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: POST (a cron tick) prints new alerts, GET lists the recent ones")
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

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
