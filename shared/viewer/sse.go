package viewer

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
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

func wantsEvents(r *http.Request) bool {
	return r.URL.Query().Has(eventsParam) || r.Header.Get("Accept") == "text/event-stream"
}

func (h *Handler) serveEvents(w http.ResponseWriter, r *http.Request) {
	seq, _ := strconv.ParseUint(r.URL.Query().Get("since"), 10, 64)
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if n, err := strconv.ParseUint(id, 10, 64); err == nil {
			seq = n
		}
	}
	setPageHeaders(w)
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("X-Accel-Buffering", "no")
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
		if len(alerts) > 0 {
			for _, p := range alerts {
				html, err := renderAlert(p)
				if err != nil {
					h.Viewer.log.Warn("viewer: rendering an alert failed", "id", p.ID, "err", err)
					continue
				}
				b, _ := json.Marshal(struct {
					Seq  uint64 `json:"seq"`
					HTML string `json:"html"`
				}{p.Seq, html})
				if !write("id: " + strconv.FormatUint(p.Seq, 10) + "\nevent: alert\ndata: " + string(b) + "\n\n") {
					return
				}
			}
			b, _ := json.Marshal(h.Viewer.Stats(time.Now()))
			if !write("event: stats\ndata: " + string(b) + "\n\n") {
				return
			}
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
