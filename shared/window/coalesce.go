package window

import (
	"context"
	"sync"

	"github.com/fintrans/fintrans/shared/transfer"
)

// Coalescer merges concurrent Apply calls, the group commit of databases:
// while Limit batches are in Redis, the transfers of the callers that arrive
// meanwhile wait and go together in the next batch. A caller that finds a
// free slot goes at once, so an idle detect adds no latency, and a busy one
// (many HTTP requests of one event each, many partitions) sends Redis few
// large pipelines instead of many small ones.
//
// Each caller's transfers stay in order and get exactly the outcomes a lone
// Apply would give them. A caller whose transfers wait in the queue stops
// waiting when its context ends; its transfers may still be applied (it did
// not acknowledge them, so they come again and are recognised as
// duplicates). A caller that found a free slot flies the batch itself, with
// context.Background() since the batch may be shared: its context does not
// stop it, and it returns once the batch is done (Redis calls are bounded by
// the client's timeouts).
type Coalescer struct {
	Store Applier // a *Store or *Rules
	Limit int     // batches in Redis at once (default 8)
	Max   int     // transfers merged into one batch at most (default 1024)

	mu      sync.Mutex
	pending []*waiter
	flying  int
}

type waiter struct {
	ts   []transfer.Transfer
	out  []Outcome
	err  error
	done chan struct{}
}

// Apply applies ts as Store.Apply does, possibly in one batch with the
// transfers of concurrent callers.
func (c *Coalescer) Apply(ctx context.Context, ts []transfer.Transfer) ([]Outcome, error) {
	if len(ts) == 0 {
		return nil, nil
	}
	w := &waiter{ts: ts, done: make(chan struct{})}
	c.mu.Lock()
	c.pending = append(c.pending, w)
	limit := c.Limit
	if limit <= 0 {
		limit = 8
	}
	if c.flying < limit {
		c.flying++
		batch := c.take()
		c.mu.Unlock()
		c.fly(batch)
	} else {
		c.mu.Unlock()
	}
	select {
	case <-w.done:
		return w.out, w.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// take removes the next batch from the queue: waiters in arrival order, at
// least one, up to Max transfers. c.mu is held.
func (c *Coalescer) take() []*waiter {
	limit := c.Max
	if limit <= 0 {
		limit = 1024
	}
	n, k := 0, 0
	for k < len(c.pending) && (k == 0 || n+len(c.pending[k].ts) <= limit) {
		n += len(c.pending[k].ts)
		k++
	}
	batch := make([]*waiter, k)
	copy(batch, c.pending)
	c.pending = append(c.pending[:0], c.pending[k:]...)
	return batch
}

// fly applies a batch and answers its waiters; then it hands its slot to
// the next batch, if any, in a goroutine of its own, so that the caller that
// flew returns as soon as its own answer is in.
func (c *Coalescer) fly(batch []*waiter) {
	var all []transfer.Transfer
	if len(batch) == 1 {
		all = batch[0].ts
	} else {
		for _, w := range batch {
			all = append(all, w.ts...)
		}
	}
	// Not the caller's context: the batch is shared, and a caller that
	// stops waiting must not cancel the others' work.
	out, err := c.Store.Apply(context.Background(), all)
	for _, w := range batch {
		if err != nil {
			w.err = err
		} else {
			w.out, out = out[:len(w.ts):len(w.ts)], out[len(w.ts):]
		}
		close(w.done)
	}
	c.mu.Lock()
	if len(c.pending) == 0 {
		c.flying--
		c.mu.Unlock()
		return
	}
	next := c.take()
	c.mu.Unlock()
	go c.fly(next)
}
