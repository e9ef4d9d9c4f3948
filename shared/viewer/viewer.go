// Package viewer is the viewer function: on every cron tick it drains the
// fraud topic through a Kafka consumer group and prints each alert once,
// readable like the seed's "Detected Fraud: TransactionAggregate {...}"
// lines, or as one JSON line per alert with LOG_FORMAT=json.
package viewer

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"

	"github.com/fintrans/fintrans/shared/codec/cloudevent"
	"github.com/fintrans/fintrans/shared/kafka"
	"github.com/fintrans/fintrans/shared/metrics"
	"github.com/fintrans/fintrans/shared/transfer"
)

// Defaults of a Viewer's tunables.
const (
	DefaultMaxWait    = 5 * time.Second
	DefaultDedupeSize = 100_000
	DefaultRecentSize = 100
	// MaxFetchWait caps the sarama Consumer.MaxWaitTime the viewer uses.
	MaxFetchWait = 100 * time.Millisecond
)

// Printed is an alert the viewer printed.
type Printed struct {
	ID        string
	Alert     transfer.Alert
	PrintedAt time.Time
	Seq       uint64 // 1 for the first alert this viewer printed, then 2, ...
}

// Viewer drains the fraud topic. Drain is safe for concurrent use (calls
// are serialized). One sarama ConsumerGroup is kept across calls and
// recreated after a failure.
type Viewer struct {
	// MaxWait bounds one Drain (joining the group included). Set before the
	// first Drain.
	MaxWait time.Duration

	conf      Config
	saramaCfg *sarama.Config
	out       io.Writer
	log       *slog.Logger

	mu     sync.Mutex // serializes Drain and guards client/group
	client sarama.Client
	group  sarama.ConsumerGroup

	outMu  sync.Mutex // guards out, seen, recent and live (claims print concurrently)
	seen   *lru
	recent []Printed // ring, oldest first once full
	next   int
	live   live // sequence numbers, counts and wake-ups of the live page

	// OnPrint, when set (before the first Drain), is called with every
	// alert printed, in order (the local run scores them against the
	// generator's episodes). It must not call the Viewer.
	OnPrint func(Printed)
}

// Config is what a viewer reads and how it prints.
type Config struct {
	Brokers []string // KAFKA_BROKERS
	Topic   string   // FRAUD_TOPIC
	Group   string   // VIEWER_GROUP
	JSON    bool     // LOG_FORMAT=json: one JSON line per alert
}

// New makes a viewer of conf.Topic in group conf.Group, printing to out. It
// connects on the first Drain, so that a Kafka that is down at start is only
// a failed tick.
func New(conf Config, saramaCfg *sarama.Config, out io.Writer, log *slog.Logger) *Viewer {
	if log == nil {
		log = slog.Default()
	}
	if saramaCfg != nil && saramaCfg.Consumer.MaxWaitTime > MaxFetchWait {
		// Closing a drained claim waits for the fetch in flight, which the
		// broker holds for MaxWaitTime when there is nothing new: keep it
		// short so that a tick ends soon after the topic is caught up.
		c := *saramaCfg
		c.Consumer.MaxWaitTime = MaxFetchWait
		saramaCfg = &c
	}
	return &Viewer{
		MaxWait:   DefaultMaxWait,
		conf:      conf,
		saramaCfg: saramaCfg,
		out:       out,
		log:       log,
		seen:      newLRU(DefaultDedupeSize),
	}
}

// Ready checks that Kafka answers.
func (v *Viewer) Ready(ctx context.Context) error {
	return kafka.WaitReady(ctx, v.conf.Brokers, v.saramaCfg)
}

// Close leaves the group and closes the connections.
func (v *Viewer) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.closeGroup()
}

func (v *Viewer) closeGroup() error {
	var errs []error
	if v.group != nil {
		errs = append(errs, v.group.Close())
	}
	if v.client != nil && !v.client.Closed() {
		errs = append(errs, v.client.Close())
	}
	v.group, v.client = nil, nil
	return errors.Join(errs...)
}

func (v *Viewer) connect() error {
	if v.group != nil {
		return nil
	}
	client, err := sarama.NewClient(v.conf.Brokers, v.saramaCfg)
	if err != nil {
		return fmt.Errorf("kafka %v: %w", v.conf.Brokers, err)
	}
	group, err := sarama.NewConsumerGroupFromClient(v.conf.Group, client)
	if err != nil {
		client.Close()
		return fmt.Errorf("consumer group %s: %w", v.conf.Group, err)
	}
	v.client, v.group = client, group
	go func() {
		for err := range group.Errors() {
			v.log.Warn("viewer: kafka consumer error", "err", err)
		}
	}()
	return nil
}

// Drain reads every record currently on the fraud topic's partitions that
// this member is assigned, prints each alert not printed before, marks and
// commits the offsets, and returns how many alerts it printed. It returns
// once every claimed partition is caught up with the high-water mark it had
// when the claim started, or after MaxWait (then the rest waits for the next
// tick). An error means Kafka failed: the group is recreated on the next call.
func (v *Viewer) Drain(ctx context.Context) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.connect(); err != nil {
		metrics.Errors.WithLabelValues("kafka").Inc()
		return 0, err
	}
	wait := v.MaxWait
	if wait <= 0 {
		wait = DefaultMaxWait
	}
	dctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()

	var printed atomic.Int64
	sessions := 0
	for {
		h := &drainHandler{v: v, printed: &printed, stop: cancel, allDone: make(chan struct{})}
		err := v.group.Consume(dctx, []string{v.conf.Topic}, h)
		if h.setup {
			sessions++
		}
		if cerr := h.failure(); cerr != nil && err == nil && !h.caughtUp() {
			err = cerr
		}
		switch {
		case err != nil && dctx.Err() == nil:
			metrics.Errors.WithLabelValues("kafka").Inc()
			_ = v.closeGroup()
			return int(printed.Load()), fmt.Errorf("kafka consumer group %s on %s: %w", v.conf.Group, v.conf.Topic, err)
		case h.caughtUp():
			return int(printed.Load()), nil
		case dctx.Err() != nil:
			if ctx.Err() != nil {
				return int(printed.Load()), ctx.Err()
			}
			if sessions == 0 {
				// Never got into the group in time: something is wrong
				// with Kafka (or another member holds on to it).
				metrics.Errors.WithLabelValues("kafka").Inc()
				_ = v.closeGroup()
				return int(printed.Load()), fmt.Errorf("kafka consumer group %s: no session within %s", v.conf.Group, wait)
			}
			// A long backlog: the rest is for the next tick.
			return int(printed.Load()), nil
		}
		// The session ended early (a rebalance): join again.
	}
}

// drainHandler is the sarama handler of one session of a Drain.
type drainHandler struct {
	v       *Viewer
	printed *atomic.Int64
	stop    context.CancelFunc

	setup   bool
	errMu   sync.Mutex
	err     error // the first claim failure
	pending atomic.Int64
	allDone chan struct{}
	done    atomic.Bool
}

func (h *drainHandler) caughtUp() bool { return h.done.Load() }

func (h *drainHandler) fail(err error) error {
	h.errMu.Lock()
	defer h.errMu.Unlock()
	if h.err == nil {
		h.err = err
	}
	return err
}

func (h *drainHandler) failure() error {
	h.errMu.Lock()
	defer h.errMu.Unlock()
	return h.err
}

func (h *drainHandler) Setup(sess sarama.ConsumerGroupSession) error {
	h.setup = true
	n := 0
	for _, ps := range sess.Claims() {
		n += len(ps)
	}
	h.pending.Store(int64(n))
	if n == 0 {
		// Other members hold every partition: nothing to drain here.
		h.finish()
	}
	return nil
}

// Cleanup commits what was marked before the session ends.
func (h *drainHandler) Cleanup(sess sarama.ConsumerGroupSession) error {
	sess.Commit()
	return nil
}

func (h *drainHandler) finish() {
	if h.done.CompareAndSwap(false, true) {
		close(h.allDone)
		h.stop()
	}
}

func (h *drainHandler) claimCaughtUp() {
	if h.pending.Add(-1) == 0 {
		h.finish()
	}
}

// ConsumeClaim reads one partition up to its high-water mark, then waits for
// the other claims: the session ends as soon as any ConsumeClaim returns.
func (h *drainHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	// The partition consumer sets the high-water mark when it starts (from
	// a ListOffsets request), so it is known before any fetch.
	target := claim.HighWaterMarkOffset()
	next := claim.InitialOffset()
	if next < 0 {
		// No committed offset: the group starts at the oldest (or newest)
		// offset, which the claim only knows symbolically.
		off, err := h.v.client.GetOffset(claim.Topic(), claim.Partition(), next)
		if err != nil {
			return h.fail(fmt.Errorf("offset of %s/%d: %w", claim.Topic(), claim.Partition(), err))
		}
		next = off
	}
	if next < target {
	read:
		for {
			select {
			case msg, ok := <-claim.Messages():
				if !ok {
					return nil
				}
				h.v.handle(msg, h.printed)
				sess.MarkMessage(msg, "")
				if msg.Offset+1 >= target {
					break read
				}
			case <-sess.Context().Done():
				return nil
			}
		}
	}
	h.claimCaughtUp()
	select {
	case <-h.allDone:
	case <-sess.Context().Done():
	}
	return nil
}

// handle decodes and prints one record; undecodable ones are logged and
// skipped.
func (v *Viewer) handle(msg *sarama.ConsumerMessage, printed *atomic.Int64) {
	a, id, err := decode(msg)
	if err != nil {
		v.log.Warn("viewer: skipping undecodable record", "topic", msg.Topic, "partition", msg.Partition, "offset", msg.Offset, "err", err)
		return
	}
	if v.print(id, a) {
		printed.Add(1)
	}
}

func decode(msg *sarama.ConsumerMessage) (transfer.Alert, string, error) {
	m := kafka_sarama.NewMessageFromConsumerMessage(msg)
	if m.ReadEncoding() == binding.EncodingUnknown {
		return transfer.Alert{}, "", errors.New("not a CloudEvent")
	}
	e, err := binding.ToEvent(context.Background(), m)
	if err != nil {
		return transfer.Alert{}, "", fmt.Errorf("malformed CloudEvent: %w", err)
	}
	a, err := cloudevent.ToAlert(*e)
	if err != nil {
		return transfer.Alert{}, "", err
	}
	return a, e.ID(), nil
}

// print writes an alert unless its id was printed before.
func (v *Viewer) print(id string, a transfer.Alert) bool {
	v.outMu.Lock()
	defer v.outMu.Unlock()
	if !v.seen.add(id) {
		return false
	}
	var b []byte
	if v.conf.JSON {
		b = FormatJSON(id, a)
	} else {
		b = Format(id, a)
	}
	if _, err := v.out.Write(b); err != nil {
		v.log.Warn("viewer: writing an alert failed", "id", id, "err", err)
	}
	metrics.Printed.Inc()
	p := Printed{ID: id, Alert: a, PrintedAt: time.Now().UTC()}
	v.live.printed(&p)
	if v.OnPrint != nil {
		v.OnPrint(p)
	}
	if len(v.recent) < DefaultRecentSize {
		v.recent = append(v.recent, p)
	} else {
		v.recent[v.next] = p
		v.next = (v.next + 1) % DefaultRecentSize
	}
	return true
}

// Recent returns the most recently printed alerts, newest first.
func (v *Viewer) Recent() []Printed {
	v.outMu.Lock()
	defer v.outMu.Unlock()
	out := make([]Printed, 0, len(v.recent))
	for i := range v.recent {
		j := (v.next - 1 - i + 2*len(v.recent)) % len(v.recent)
		out = append(out, v.recent[j])
	}
	return out
}

// lru is a bounded set of ids that forgets the least recently seen first.
type lru struct {
	max   int
	order *list.List // front: most recent
	items map[string]*list.Element
}

func newLRU(max int) *lru {
	return &lru{max: max, order: list.New(), items: make(map[string]*list.Element)}
}

// add records id and reports whether it was new.
func (l *lru) add(id string) bool {
	if e, ok := l.items[id]; ok {
		l.order.MoveToFront(e)
		return false
	}
	l.items[id] = l.order.PushFront(id)
	if l.order.Len() > l.max {
		old := l.order.Back()
		l.order.Remove(old)
		delete(l.items, old.Value.(string))
	}
	return true
}
