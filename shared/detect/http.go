package detect

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/fintrans/fintrans/shared/codec/httpreq"
	"github.com/fintrans/fintrans/shared/httpfn"
	"github.com/fintrans/fintrans/shared/transfer"
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
	Rule        string `json:"rule"`
	Subject     string `json:"subject"` // the group: "<from>-><to>", "from:<id>" or "to:<id>"
	WindowStart string `json:"windowStart"`
	WindowEnd   string `json:"windowEnd"`
	Value       string `json:"value"` // the rule's aggregate: an amount or a number of transfers
	Total       string `json:"total"`
	Count       int    `json:"count"`
}

// Handler is detect's HTTP face.
type Handler struct {
	Detector     *Detector
	MaxBodyBytes int64 // MAX_BODY_BYTES
	MaxBatch     int   // MAX_BATCH
	dec          httpreq.Decoder
}

// Func is the handler with its body limit.
func (h *Handler) Func() httpfn.Func { return httpfn.Func{Serve: h.Serve, MaxBody: h.MaxBodyBytes} }

// ServeHTTP serves h.Func over net/http.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.Func().ServeHTTP(w, r) }

// Serve takes a CloudEvent (binary or structured), a batch, seed lines or
// an OpenFaaS kafka-connector request, and answers what it did:
//   - 200 when every event was counted or was a duplicate, or for a batch
//     with at least one valid event (per-event results in the body);
//   - 400 with a one-line reason for bad input (nothing changed);
//   - 422 for a single transfer refused as late, so that the transport
//     routes it to its dead-letter place without retrying;
//   - 503 (with Retry-After) when Redis or the sink failed: retry.
func (h *Handler) Serve(ctx context.Context, r httpfn.Request) httpfn.Response {
	if r.Method != http.MethodPost {
		return httpfn.ErrorWith(http.StatusMethodNotAllowed, http.Header{"Allow": {http.MethodPost}}, "method "+r.Method+" not allowed: POST a CloudEvent")
	}
	if err := r.BodyErr; err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return httpfn.Error(http.StatusBadRequest, "body is larger than "+strconv.FormatInt(h.MaxBodyBytes, 10)+" bytes (MAX_BODY_BYTES)")
		}
		return httpfn.Error(http.StatusBadRequest, "cannot read body: "+err.Error())
	}
	req, err := h.dec.Decode(r.Header, r.Body, h.MaxBatch)
	if err != nil && len(req.Items) == 0 {
		return httpfn.Error(http.StatusBadRequest, err.Error())
	}
	if err != nil && !req.Batch {
		h.Detector.logger().Info("refused bad input", "reason", err.Error())
		return httpfn.Error(http.StatusBadRequest, err.Error())
	}
	p, err := h.Detector.Process(ctx, req.Items)
	if err != nil {
		h.Detector.logger().Error("detect failed; answering 503 so the transport retries", "err", err)
		return httpfn.ErrorWith(http.StatusServiceUnavailable, http.Header{"Retry-After": {"1"}}, err.Error())
	}
	if !req.Batch && len(p.Results) == 1 && p.Results[0].Status == transfer.Invalid {
		// Refused after decoding (dated too far ahead): the same 400 as any
		// other bad input.
		h.Detector.logger().Info("refused bad input", "reason", p.Results[0].Reason)
		return httpfn.Error(http.StatusBadRequest, p.Results[0].Reason)
	}
	a := Answer{Results: p.Results, Alerts: []AlertBrief{}}
	for _, res := range p.Results {
		switch res.Status {
		case transfer.Counted:
			a.Counted++
		case transfer.Duplicate:
			a.Duplicate++
		case transfer.Late:
			a.Late++
		case transfer.Invalid:
			a.Invalid++
		}
	}
	for _, al := range p.Alerts {
		a.Alerts = append(a.Alerts, AlertBrief{ID: al.ID(), Rule: al.Rule, Subject: al.GroupKey(),
			WindowStart: al.WindowStart.Format("2006-01-02T15:04:05Z07:00"), WindowEnd: al.WindowEnd.Format("2006-01-02T15:04:05Z07:00"),
			Value: al.Value.String(), Total: al.Total.String(), Count: al.Count})
	}
	status := http.StatusOK
	switch {
	case req.Batch && a.Invalid == len(p.Results):
		status, a.Error = http.StatusBadRequest, "no valid event in the batch"
	case !req.Batch && a.Late == 1:
		status, a.Error = http.StatusUnprocessableEntity, p.Results[0].Reason
	}
	return httpfn.JSON(status, a)
}
