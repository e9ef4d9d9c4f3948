package generator

import (
	"context"
	"fmt"

	"github.com/IBM/sarama"
	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/fintrans/fintrans/shared/codec/cloudevent"
	"github.com/fintrans/fintrans/shared/codec/kafkarecord"
)

// LineKafka is a sink.Sink for GENERATOR_FORMAT=line: it writes each
// generated transfer as a plain Kafka record in the seed's line format
// ("2017-07-23T01:06:47Z;66;26;7810.25"), keyed by the pair, all of a Send
// in one SendMessages. The records are not CloudEvents: detect reads them
// with the id "<partition>/<offset>", not the generator's event id.
type LineKafka struct {
	producer sarama.SyncProducer
	topic    string
}

// NewLineKafka wraps a producer (Close does not close it).
func NewLineKafka(producer sarama.SyncProducer, topic string) *LineKafka {
	return &LineKafka{producer: producer, topic: topic}
}

// Send writes the transfers carried by events (io.fintrans.transaction
// events, as the generator makes them).
func (l *LineKafka) Send(ctx context.Context, events []ce.Event) error {
	if len(events) == 0 {
		return nil
	}
	msgs := make([]*sarama.ProducerMessage, len(events))
	for i, e := range events {
		it := cloudevent.FromEvent(e)
		if it.Err != nil {
			return fmt.Errorf("event %s: %w", e.ID(), it.Err)
		}
		msgs[i] = kafkarecord.Line(l.topic, it.Transfer)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := l.producer.SendMessages(msgs); err != nil {
		return fmt.Errorf("kafka topic %s: %w", l.topic, err)
	}
	return nil
}

// Close does nothing: the producer belongs to the caller.
func (l *LineKafka) Close() error { return nil }
