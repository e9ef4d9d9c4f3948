package detect

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/fintrans/fintrans/shared/event"
	"github.com/fintrans/fintrans/shared/server"
)

// Answer is detect's JSON answer.
type Answer struct {
	Counted   int          `json:"counted"`
	Duplicate int          `json:"duplicate"`
	Late      int          `json:"late"`
	Invalid   int          `json:"invalid"`
	Alerts    []AlertBrief `json:"alerts"`
	Results   []Result     `json:"results"`
	Error     string       `json:"error,omitempty"`
}

// AlertBrief names an alert in an answer.
type AlertBrief struct {
	ID          string `json:"id"`
	Subject     string `json:"subject"`
	WindowStart string `json:"windowStart"`
	WindowEnd   string `json:"windowEnd"`
	Total       string `json:"total"`
	Count       int    `json:"count"`
}

// Handler is detect's HTTP face.
type Handler struct {
	Detector     *Detector
	MaxBodyBytes int64
	MaxBatch     int
}

// ServeHTTP takes a CloudEvent (binary or structured), a batch, seed lines or
// an OpenFaaS kafka-connector request, and answers what it did:
//   - 200 when every event was counted or was a duplicate, or for a batch
//     with at least one valid event (per-event results in the body);
//   - 400 with a one-line reason for bad input (nothing changed);
//   - 422 for a single transfer refused as late, so that the transport
//     routes it to its dead-letter place without retrying;
//   - 503 (with Retry-After) when Redis or the sink failed: retry.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		server.Error(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: POST a CloudEvent")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			server.Error(w, http.StatusBadRequest, "body is larger than "+strconv.FormatInt(h.MaxBodyBytes, 10)+" bytes (MAX_BODY_BYTES)")
			return
		}
		server.Error(w, http.StatusBadRequest, "cannot read body: "+err.Error())
		return
	}
	req, err := event.FromHTTP(r.Header, body, h.MaxBatch)
	if err != nil && len(req.Items) == 0 {
		server.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil && !req.Batch {
		h.Detector.logger().Info("refused bad input", "reason", err.Error())
		server.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	p, err := h.Detector.Process(r.Context(), req.Items)
	if err != nil {
		h.Detector.logger().Error("detect failed; answering 503 so the transport retries", "err", err)
		w.Header().Set("Retry-After", "1")
		server.Error(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if !req.Batch && len(p.Results) == 1 && p.Results[0].Status == Invalid {
		// Refused after decoding (dated too far ahead): the same 400 as any
		// other bad input.
		h.Detector.logger().Info("refused bad input", "reason", p.Results[0].Reason)
		server.Error(w, http.StatusBadRequest, p.Results[0].Reason)
		return
	}
	a := Answer{Results: p.Results, Alerts: []AlertBrief{}}
	for _, res := range p.Results {
		switch res.Status {
		case Counted:
			a.Counted++
		case Duplicate:
			a.Duplicate++
		case Late:
			a.Late++
		case Invalid:
			a.Invalid++
		}
	}
	for _, al := range p.Alerts {
		a.Alerts = append(a.Alerts, AlertBrief{ID: al.ID(), Subject: event.Subject(al.From, al.To),
			WindowStart: al.WindowStart.Format("2006-01-02T15:04:05Z07:00"), WindowEnd: al.WindowEnd.Format("2006-01-02T15:04:05Z07:00"),
			Total: al.Total.String(), Count: al.Count})
	}
	status := http.StatusOK
	switch {
	case req.Batch && a.Invalid == len(p.Results):
		status, a.Error = http.StatusBadRequest, "no valid event in the batch"
	case !req.Batch && a.Late == 1:
		status, a.Error = http.StatusUnprocessableEntity, p.Results[0].Reason
	}
	server.JSON(w, status, a)
}
