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
// and a quiet one with no added latency.
func (c *Consumer) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	ctx := sess.Context()
	batch := make([]*sarama.ConsumerMessage, 0, c.MaxBatch)
	for {
		batch = batch[:0]
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
		if !c.handle(ctx, batch) {
			return nil // the session ended before the batch was durable: not marked
		}
		sess.MarkMessage(batch[len(batch)-1], "")
	}
}

// handle processes a batch until it is durable, retrying faults with backoff.
// It returns false if ctx ended first.
func (c *Consumer) handle(ctx context.Context, batch []*sarama.ConsumerMessage) bool {
	items := make([]transfer.Item, len(batch))
	for i, m := range batch {
		items[i] = c.dec.Decode(m)
	}
	backoff := 50 * time.Millisecond
	for {
		p, err := c.Detector.Process(ctx, items)
		if err == nil {
			err = c.deadLetter(batch, p.Results)
		}
		if err == nil {
			c.Processed.Add(int64(len(batch)))
			c.Batches.Add(1)
			c.Alerts.Add(int64(len(p.Alerts)))
			return true
		}
		if ctx.Err() != nil {
			return false // shutting down: the batch is redelivered to the next session
		}
		c.Faults.Add(1)
		c.Log.Warn("batch not durable; retrying without committing", "partition", batch[0].Partition,
			"from_offset", batch[0].Offset, "records", len(batch), "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		// At most 1 s: a Redis failover is over in seconds, and the
		// partition should resume right after it.
		backoff = min(2*backoff, time.Second)
	}
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
