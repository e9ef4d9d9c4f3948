package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	ce "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/fintrans/fintrans/shared/codec/httpreq"
	"github.com/fintrans/fintrans/shared/detect"
	"github.com/fintrans/fintrans/shared/sink"
	"github.com/fintrans/fintrans/shared/window"
)

const (
	httpSingleClients = 32
	httpBatchSize     = 500
)

// prepared is one request's headers and body, built before the clock starts.
type prepared struct {
	header http.Header
	body   []byte
}

// httpStage is stage 3: the detect handler over loopback HTTP, one event
// per request and batches, beside a no-op handler on the same transport.
func (r *runner) httpStage(ctx context.Context) error {
	if r.detect == 0 {
		return fmt.Errorf("no detect core rate measured")
	}
	st, err := r.store(ctx)
	if err != nil {
		return err
	}
	d := &detect.Detector{Store: &window.Coalescer{Store: st}, Log: r.quiet, MaxClockSkew: streamSkew,
		Sink: sink.Func(func(context.Context, []ce.Event) error { return nil })}
	srv := httptest.NewServer(&detect.Handler{Detector: d, MaxBodyBytes: r.cfg.MaxBodyBytes, MaxBatch: r.cfg.MaxBatch})
	defer srv.Close()
	noop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"counted":1}` + "\n"))
	}))
	defer noop.Close()
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	r.printf("\n[3] HTTP: detect.Handler behind httptest.NewServer (loopback), discarding sink\n")

	// One binary-mode event per request.
	singles := r.prepareSingles(ctx, int(min(r.detect, 40000)*r.t.stage.Seconds()))
	m := r.startMeter(ctx)
	n, err := hammer(ctx, httpSingleClients, len(singles), r.t.trial, func(i int) error {
		return post(ctx, client, noop.URL, singles[i])
	})
	u := m.stop(ctx)
	if err != nil {
		return err
	}
	noopRate := float64(n) / u.wall.Seconds()
	r.res.HTTPNoopReqPerS = round(noopRate, 0)
	r.printf("    no-op handler, 1 event/request, %d clients      %9s req/s   (transport ceiling)  %s\n", httpSingleClients, num(noopRate), u)

	// The no-op handler counted nothing: the same requests serve detect.
	stop := r.profile("3-http-single")
	m = r.startMeter(ctx)
	n, err = hammer(ctx, httpSingleClients, len(singles), r.t.stage, func(i int) error {
		return post(ctx, client, srv.URL, singles[i])
	})
	u = m.stop(ctx)
	stop()
	if err != nil {
		return err
	}
	single := float64(n) / u.wall.Seconds()
	r.res.HTTPSingleTxPerS = round(single, 0)
	r.printf("    detect, 1 binary event/request, %d clients      %9s tx/s    = %s of no-op, %s of detect core   %s\n",
		httpSingleClients, num(single), pct(single, noopRate), pct(single, r.detect), u)
	singles = nil

	// Batches of 500 structured events.
	nb := max(4, int(r.detect*r.t.stage.Seconds()*1.2)/httpBatchSize)
	batches := r.buildEvents(nb*httpBatchSize, httpBatchSize)
	bodies := make([]prepared, len(batches))
	for i, b := range batches {
		body, err := json.Marshal(b)
		if err != nil {
			return err
		}
		bodies[i] = prepared{header: http.Header{"Content-Type": {httpreq.BatchContentType}}, body: body}
	}
	batches = nil
	stop = r.profile("3-http-batch")
	m = r.startMeter(ctx)
	n, err = hammer(ctx, r.conns, len(bodies), r.t.stage, func(i int) error {
		return post(ctx, client, srv.URL, bodies[i])
	})
	u = m.stop(ctx)
	stop()
	if err != nil {
		return err
	}
	batch := float64(n*httpBatchSize) / u.wall.Seconds()
	r.res.HTTPBatchTxPerS = round(batch, 0)
	r.printf("    detect, batches of %d (%d KiB), %d clients         %9s tx/s    = %s of detect core   %s\n",
		httpBatchSize, len(bodies[0].body)/1024, r.conns, num(batch), pct(batch, r.detect), u)
	return nil
}

// prepareSingles encodes n transfers as binary-mode HTTP CloudEvents.
func (r *runner) prepareSingles(ctx context.Context, n int) []prepared {
	batches := r.buildEvents(max(n, 1000), 1000)
	out := make([]prepared, 0, len(batches)*1000)
	for _, b := range batches {
		for i := range b {
			req, _ := http.NewRequest(http.MethodPost, "http://unused/", nil)
			if err := cehttp.WriteRequest(ctx, binding.ToMessage(&b[i]), req); err != nil {
				continue
			}
			body, _ := io.ReadAll(req.Body)
			out = append(out, prepared{header: req.Header, body: body})
		}
	}
	return out
}

// post sends one prepared request and wants a 200.
func post(ctx context.Context, c *http.Client, url string, p prepared) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(p.body))
	if err != nil {
		return err
	}
	req.Header = p.header
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 300))
		return fmt.Errorf("HTTP %d: %s", res.StatusCode, b)
	}
	_, err = io.Copy(io.Discard, res.Body)
	return err
}

// hammer runs do(i) for i = 0.. from workers goroutines until n are done or
// d has passed, and returns how many were done.
func hammer(ctx context.Context, workers, n int, d time.Duration, do func(i int) error) (int, error) {
	deadline := time.Now().Add(d)
	var next, done atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := do(i); err != nil {
					errc <- err
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errc)
	return int(done.Load()), <-errc
}
