// Package server wraps a function's handler with the endpoints every
// fintrans process serves: /healthz (liveness), /readyz (readiness, which
// checks dependencies) and /metrics (Prometheus), and runs it with a
// graceful shutdown.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fintrans/fintrans/shared/httpfn"
)

// ReadyFunc reports whether the function can serve (Redis and Kafka reachable).
type ReadyFunc func(ctx context.Context) error

// Mux serves fn at every path but the operational ones.
func Mux(fn http.Handler, ready ReadyFunc) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.Handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		httpfn.Write(w, httpfn.JSON(http.StatusOK, map[string]string{"status": "ok"}))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := ready(ctx); err != nil {
				httpfn.Write(w, httpfn.JSON(http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()}))
				return
			}
		}
		httpfn.Write(w, httpfn.JSON(http.StatusOK, map[string]string{"status": "ready"}))
	})
	if fn != nil {
		mux.Handle("/", fn)
	}
	return mux
}

// Timeouts bound every phase of a request in time (SPEC section 6), so slow
// clients cannot hold connections: the headers (ReadHeader), the whole
// request with its body (Read), the answer (Write, from the end of the
// headers) and an idle keep-alive connection (Idle).
type Timeouts struct {
	ReadHeader, Read, Write, Idle time.Duration
}

// DefaultTimeouts are the limits a zero field of Timeouts takes (the
// defaults of HTTP_READ_HEADER_TIMEOUT, HTTP_READ_TIMEOUT,
// HTTP_WRITE_TIMEOUT and HTTP_IDLE_TIMEOUT).
var DefaultTimeouts = Timeouts{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Write: 60 * time.Second, Idle: 2 * time.Minute}

// NewHTTPServer is the http.Server of every fintrans process: h with every
// time limit set (a zero field of t takes DefaultTimeouts').
func NewHTTPServer(h http.Handler, t Timeouts) *http.Server {
	d := DefaultTimeouts
	pick := func(v, def time.Duration) time.Duration {
		if v > 0 {
			return v
		}
		return def
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: pick(t.ReadHeader, d.ReadHeader),
		ReadTimeout:       pick(t.Read, d.Read),
		WriteTimeout:      pick(t.Write, d.Write),
		IdleTimeout:       pick(t.Idle, d.Idle),
		MaxHeaderBytes:    64 << 10,
	}
}

// Serve runs h on addr until ctx ends, then shuts down gracefully.
func Serve(ctx context.Context, addr string, h http.Handler, t Timeouts, log *slog.Logger) error {
	srv := NewHTTPServer(h, t)
	srv.Addr = addr
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	log.Info("listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) {
		return e
	}
	return err
}
