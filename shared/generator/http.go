package generator

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/fintrans/fintrans/shared/httpfn"
	"github.com/fintrans/fintrans/shared/transfer"
)

// Answer is the generator's JSON answer to a tick.
type Answer struct {
	Produced int    `json:"produced"`
	Episodes int    `json:"episodes"`
	Topic    string `json:"topic,omitempty"`
	Sink     string `json:"sink,omitempty"`
	// Injected lists the episodes of the batch (the ground truth: the
	// alerts detect must raise), with their transfers' ids, times, amounts.
	Injected []Episode `json:"injected"`
}

// Handler runs one Tick per POST: the cron tick of OpenFaaS's cron-connector
// (an empty body) or of a Knative PingSource (a CloudEvent in binary or
// structured mode). The body is read and ignored.
//   - 200 {"produced": n, "episodes": k, "topic"|"sink": where, "injected": [episodes]};
//   - 503 with a one-line JSON reason when the sink failed;
//   - 405 (Allow: POST) for any other method.
type Handler struct {
	Generator *Generator
	Topic     string // the Kafka topic written to (when writing to Kafka)
	Sink      string // the K_SINK URL posted to (when posting over HTTP)
	Log       *slog.Logger
}

// maxTickBody bounds how much of a tick's body is read (and ignored).
const maxTickBody = 1 << 20

// Func is the handler with its body limit.
func (h *Handler) Func() httpfn.Func { return httpfn.Func{Serve: h.Serve, MaxBody: maxTickBody} }

// ServeHTTP serves h.Func over net/http.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.Func().ServeHTTP(w, r) }

// Serve runs one tick per POST.
func (h *Handler) Serve(ctx context.Context, r httpfn.Request) httpfn.Response {
	if r.Method != http.MethodPost {
		return httpfn.ErrorWith(http.StatusMethodNotAllowed, http.Header{"Allow": {http.MethodPost}},
			"method "+r.Method+" not allowed: POST (a cron tick) makes a batch of transfers")
	}
	p, err := h.Generator.Tick(ctx)
	if err != nil {
		h.log().Error("generator: sending the batch failed", "transfers", len(p.Transfers), "err", err)
		return httpfn.ErrorWith(http.StatusServiceUnavailable, http.Header{"Retry-After": {"1"}},
			"sending "+strconv.Itoa(len(p.Transfers))+" transfers failed: "+transfer.OneLine(err.Error()))
	}
	h.log().Debug("generator: batch sent", "transfers", p.Sent, "episodes", len(p.Episodes))
	injected := p.Episodes
	if injected == nil {
		injected = []Episode{}
	}
	return httpfn.JSON(http.StatusOK, Answer{Produced: p.Sent, Episodes: len(p.Episodes), Topic: h.Topic, Sink: h.Sink, Injected: injected})
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}
