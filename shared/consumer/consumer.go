// Package consumer runs detect as a Kafka consumer group on the transactions
// topic: records are decoded with the CloudEvents Kafka binding, applied in
// micro-batches through the same Detector as the HTTP path, and an offset is
// marked only after its transfer's effect is in Redis and its alerts are
// accepted by the sink. Invalid and late records go to a dead-letter topic
// with the reason in a header. Partitions are consumed concurrently; within
// a partition (and so within a pair) batches run in order.
package consumer

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/fintrans/fintrans/shared/codec/kafkarecord"
	"github.com/fintrans/fintrans/shared/detect"
	"github.com/fintrans/fintrans/shared/metrics"
	"github.com/fintrans/fintrans/shared/transfer"
)

// Dead-letter record headers.
const (
	HeaderReason    = "fintrans-reason"
	HeaderStatus    = "fintrans-status"
	HeaderTopic     = "fintrans-topic"
	HeaderPartition = "fintrans-partition"
	HeaderOffset    = "fintrans-offset"
)

// Consumer feeds a topic's records to a Detector.
type Consumer struct {
	Group    sarama.ConsumerGroup
	Topic    string
	Detector *detect.Detector
	DLQ      sarama.SyncProducer // may be nil: then refused records are only logged
	DLQTopic string
	MaxBatch int
	Log      *slog.Logger

	// Counters for status lines.
	Received     atomic.Int64 // records taken into batches
	Processed    atomic.Int64
	Batches      atomic.Int64 // batches made durable: Processed / Batches is the mean batch
	Alerts       atomic.Int64
	DeadLettered atomic.Int64
	Faults       atomic.Int64

	dec kafkarecord.Decoder
}

// Run consumes until ctx ends. Faults of Redis, the sink or the dead-letter
// topic are retried with backoff without marking offsets, so nothing is
// acknowledged before its effect is durable.
func (c *Consumer) Run(ctx context.Context) error {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 500
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	go func() {
		for err := range c.Group.Errors() {
			c.Log.Warn("kafka consumer group", "err", err)
		}
	}()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := c.Group.Consume(ctx, []string{c.Topic}, c)
		if err == nil || ctx.Err() != nil {
			backoff = 100 * time.Millisecond
			continue
		}
		if errors.Is(err, sarama.ErrClosedConsumerGroup) {
			return err
		}
		c.Log.Warn("consumer group session failed; retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return ctx.Err()
}

func (c *Consumer) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (c *Consumer) Cleanup(sarama.ConsumerGroupSession) error { return nil }

// ConsumeClaim handles one partition: it takes every record already waiting
// (up to MaxBatch) as one batch, so a busy partition runs at pipeline speed
// and a quiet one with no added latency. A batch goes through two stages:
// applied to Redis (batches in order, one at a time), then its alerts and
// refused records delivered and its offset marked (in the same order). The
// next batch is applied while one is delivered: a partition keeps Redis busy
// while it waits for the sink, instead of every partition, whose batches
// Redis serves together, waiting for it at once. A batch is marked only once
// it and every batch before it are delivered.
func (c *Consumer) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	ctx := sess.Context()
	// Applied, awaiting delivery: unbuffered, so that a partition holds at
	// most two batches in Redis and not acknowledged (one in delivery, the
	// next applied).
	ready := make(chan applied)
	stopped := make(chan struct{}) // the delivery stage ended (ctx)
	go func() {
		defer close(stopped)
		for a := range ready {
			if !c.deliver(ctx, a) {
				return // the session ended first: a and what follows are not marked
			}
			sess.MarkMessage(a.batch[len(a.batch)-1], "")
		}
	}()
	defer func() {
		close(ready)
		<-stopped
	}()
	for {
		// A new slice each batch: the one before may be in delivery.
		batch := make([]*sarama.ConsumerMessage, 0, c.MaxBatch)
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			batch = append(batch, m)
		case <-ctx.Done():
			return nil
		}
	fill:
		for len(batch) < c.MaxBatch {
			select {
			case m, ok := <-claim.Messages():
				if !ok {
					break fill
				}
				batch = append(batch, m)
			default:
				break fill
			}
		}
		c.Received.Add(int64(len(batch)))
		a, ok := c.apply(ctx, batch)
		if !ok {
			return nil // the session ended before the batch was durable: not marked
		}
		select {
		case ready <- a:
		case <-stopped:
			return nil
		}
	}
}

// applied is a batch in Redis, its alerts and refused records not yet
// delivered.
type applied struct {
	detect.Applied
	batch []*sarama.ConsumerMessage
}

// apply decodes a batch and applies it to Redis, retrying faults with
// backoff. It returns false if ctx ended first.
func (c *Consumer) apply(ctx context.Context, batch []*sarama.ConsumerMessage) (applied, bool) {
	items := make([]transfer.Item, len(batch))
	for i, m := range batch {
		items[i] = c.dec.Decode(m)
	}
	r := retry{c: c, batch: batch}
	for {
		a, err := c.Detector.Apply(ctx, items)
		if err == nil {
			return applied{Applied: a, batch: batch}, true
		}
		if !r.wait(ctx, err) {
			return applied{}, false
		}
	}
}

// deliver sends an applied batch's alerts to the sink and its refused
// records to the dead-letter topic until both are accepted, retrying faults
// with backoff (a record dead-lettered twice after a fault is a duplicate
// there, as it would be after a redelivery). It returns false if ctx ended
// first.
func (c *Consumer) deliver(ctx context.Context, a applied) bool {
	r := retry{c: c, batch: a.batch}
	sent := false
	for {
		err := error(nil)
		if !sent {
			err = c.Detector.Deliver(ctx, a.Applied)
			sent = err == nil
		}
		if err == nil {
			err = c.deadLetter(a.batch, a.Results)
		}
		if err == nil {
			c.Processed.Add(int64(len(a.batch)))
			c.Batches.Add(1)
			c.Alerts.Add(int64(len(a.Alerts)))
			return true
		}
		if !r.wait(ctx, err) {
			return false
		}
	}
}

// retry waits before the next attempt at a batch after a fault: 50 ms, then
// twice as long each time up to 1 s (a Redis failover is over in seconds,
// and the partition should resume right after it). It returns false if ctx
// ended first.
type retry struct {
	c       *Consumer
	batch   []*sarama.ConsumerMessage
	backoff time.Duration
}

func (r *retry) wait(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false // shutting down: the batch is redelivered to the next session
	}
	if r.backoff == 0 {
		r.backoff = 50 * time.Millisecond
	}
	r.c.Faults.Add(1)
	r.c.Log.Warn("batch not durable; retrying without committing", "partition", r.batch[0].Partition,
		"from_offset", r.batch[0].Offset, "records", len(r.batch), "err", err, "in", r.backoff)
	select {
	case <-ctx.Done():
		return false
	case <-time.After(r.backoff):
	}
	r.backoff = min(2*r.backoff, time.Second)
	return true
}

// deadLetter copies refused records to the dead-letter topic with the reason.
func (c *Consumer) deadLetter(batch []*sarama.ConsumerMessage, results []detect.Result) error {
	var msgs []*sarama.ProducerMessage
	for i, r := range results {
		if r.Status != transfer.Invalid && r.Status != transfer.Late {
			continue
		}
		m := batch[i]
		c.Log.Warn("record refused", "status", r.Status, "reason", r.Reason, "topic", m.Topic,
			"partition", m.Partition, "offset", m.Offset)
		if c.DLQ == nil {
			continue
		}
		pm := &sarama.ProducerMessage{Topic: c.DLQTopic, Value: sarama.ByteEncoder(m.Value)}
		if m.Key != nil {
			pm.Key = sarama.ByteEncoder(m.Key)
		}
		for _, h := range m.Headers {
			pm.Headers = append(pm.Headers, *h)
		}
		pm.Headers = append(pm.Headers,
			sarama.RecordHeader{Key: []byte(HeaderReason), Value: []byte(r.Reason)},
			sarama.RecordHeader{Key: []byte(HeaderStatus), Value: []byte(r.Status.String())},
			sarama.RecordHeader{Key: []byte(HeaderTopic), Value: []byte(m.Topic)},
			sarama.RecordHeader{Key: []byte(HeaderPartition), Value: []byte(strconv.Itoa(int(m.Partition)))},
			sarama.RecordHeader{Key: []byte(HeaderOffset), Value: []byte(strconv.FormatInt(m.Offset, 10))},
		)
		msgs = append(msgs, pm)
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := c.DLQ.SendMessages(msgs); err != nil {
		return err
	}
	for _, pm := range msgs {
		var status string
		for _, h := range pm.Headers {
			if string(h.Key) == HeaderStatus {
				status = string(h.Value)
			}
		}
		metrics.DeadLettered.WithLabelValues(status).Inc()
	}
	c.DeadLettered.Add(int64(len(msgs)))
	return nil
}
