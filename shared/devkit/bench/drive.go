package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/fintrans/fintrans/shared/codec/cloudevent"
	"github.com/fintrans/fintrans/shared/detect"
	"github.com/fintrans/fintrans/shared/transfer"
)

// drive runs batches through d from conns workers, each taking the next
// batch, until the batches run out, the deadline passes or ctx ends. after,
// when set, sees each batch's result and how long Process took (it is
// called from the workers, concurrently). drive returns the transfers
// processed and the first error.
func drive(ctx context.Context, d *detect.Detector, batches [][]ce.Event, conns int, deadline time.Time,
	after func(p detect.Processed, took time.Duration)) (int64, error) {
	var next, done atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, conns)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := int(next.Add(1) - 1)
				if i >= len(batches) {
					return
				}
				items := make([]transfer.Item, len(batches[i]))
				for j, e := range batches[i] {
					items[j] = cloudevent.FromEvent(e)
				}
				t0 := time.Now()
				p, err := d.Process(ctx, items)
				if err != nil {
					errc <- err
					return
				}
				if after != nil {
					after(p, time.Since(t0))
				}
				done.Add(int64(len(items)))
			}
		}()
	}
	wg.Wait()
	close(errc)
	return done.Load(), <-errc
}
