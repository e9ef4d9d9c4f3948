package viewer

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fintrans/fintrans/shared/httpfn"
)

// Live streams: GET ?events=1 answers text/event-stream. Each alert printed
// after the sequence number the client names (Last-Event-ID when the
// browser reconnects, otherwise ?since=) is sent as an "alert" event
// {"seq", "html"} (html: the escaped <li> of the page), followed by a
// "stats" event with the counts. A comment every HeartbeatEvery keeps
// proxies from closing an idle stream.

// HeartbeatEvery is how often an idle stream gets a comment line.
var HeartbeatEvery = 15 * time.Second

// streamWriteTimeout bounds each write of a stream (the server's
// HTTP_WRITE_TIMEOUT would otherwise end the stream after a minute).
const streamWriteTimeout = 30 * time.Second

func wantsEvents(query url.Values, h http.Header) bool {
	return query.Has(eventsParam) || h.Get("Accept") == "text/event-stream"
}

// since is the sequence number a stream starts after: Last-Event-ID when
// the browser reconnects, otherwise ?since=.
func since(query url.Values, h http.Header) uint64 {
	seq, _ := strconv.ParseUint(query.Get("since"), 10, 64)
	if id := h.Get("Last-Event-ID"); id != "" {
		if n, err := strconv.ParseUint(id, 10, 64); err == nil {
			seq = n
		}
	}
	return seq
}

func eventHeaders() http.Header {
	hdr := pageHeaders()
	hdr.Set("Content-Type", "text/event-stream; charset=utf-8")
	hdr.Set("X-Accel-Buffering", "no")
	return hdr
}

// eventsSince is the stream where the answer is buffered whole (the
// OpenFaaS template): the alerts printed since the client's sequence number
// and the counts, then the end; the browser reconnects after the retry hint
// with Last-Event-ID, so the page stays live by polling.
func (h *Handler) eventsSince(query url.Values, hdr http.Header) httpfn.Response {
	alerts, _, _, _ := h.Viewer.Since(since(query, hdr))
	var b strings.Builder
	b.WriteString("retry: 2000\n\n")
	b.WriteString(h.alertEvents(alerts))
	return httpfn.Response{Status: http.StatusOK, Header: eventHeaders(), Body: []byte(b.String())}
}

// alertEvents is an "alert" event per alert and, after them, a "stats"
// event ("" for no alert).
func (h *Handler) alertEvents(alerts []Printed) string {
	if len(alerts) == 0 {
		return ""
	}
	var b strings.Builder
	for _, p := range alerts {
		html, err := renderAlert(p)
		if err != nil {
			h.Viewer.log.Warn("viewer: rendering an alert failed", "id", p.ID, "err", err)
			continue
		}
		j, _ := json.Marshal(struct {
			Seq  uint64 `json:"seq"`
			HTML string `json:"html"`
		}{p.Seq, html})
		b.WriteString("id: " + strconv.FormatUint(p.Seq, 10) + "\nevent: alert\ndata: " + string(j) + "\n\n")
	}
	st, _ := json.Marshal(h.Viewer.Stats(time.Now()))
	b.WriteString("event: stats\ndata: " + string(st) + "\n\n")
	return b.String()
}

// serveEvents is the stream on a net/http server: it stays open and sends
// each alert as it is printed.
func (h *Handler) serveEvents(w http.ResponseWriter, r *http.Request) {
	seq := since(r.URL.Query(), r.Header)
	for k, v := range eventHeaders() {
		w.Header()[k] = v
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(w)
	write := func(s string) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if _, err := fmt.Fprint(w, s); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write("retry: 2000\n\n") {
		return
	}
	stop := h.Viewer.liveStop()
	heartbeat := time.NewTicker(HeartbeatEvery)
	defer heartbeat.Stop()
	for {
		alerts, latest, next, stopped := h.Viewer.Since(seq)
		if ev := h.alertEvents(alerts); ev != "" && !write(ev) {
			return
		}
		if latest > seq {
			seq = latest
		}
		if stopped {
			return
		}
		select {
		case <-next:
		case <-stop:
			return
		case <-heartbeat.C:
			if !write(": ping\n\n") {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}
