// Package kafkarecord is the codec of Kafka records: a consumed record
// (a CloudEvent in binary or structured mode through the SDK's kafka_sarama
// binding, or a plain seed line) to a transfer, and events or transfers to
// producer records.
package kafkarecord

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/fintrans/fintrans/shared/codec/cloudevent"
	"github.com/fintrans/fintrans/shared/codec/seedline"
	"github.com/fintrans/fintrans/shared/transfer"
)

// Decoder decodes consumed records. Its zero value is ready; it is safe for
// concurrent use.
type Decoder struct {
	ce cloudevent.Decoder
}

// Decode decodes a consumed Kafka record: a CloudEvent in binary or
// structured mode, or a plain seed line, which gets the id
// "<partition>/<offset>" and the source "kafka://<topic>".
func (d *Decoder) Decode(cm *sarama.ConsumerMessage) transfer.Item {
	// The fast path reads the record's own headers (NewMessageFromConsumerMessage
	// also adds the kafkatopic, kafkapartition and kafkaoffset extensions,
	// which decoding ignores); the full path gets the message exactly as the
	// SDK builds it.
	var contentType string
	headers := make(map[string][]byte, len(cm.Headers))
	for _, h := range cm.Headers {
		k := strings.ToLower(string(h.Key))
		if k == "content-type" {
			contentType = string(h.Value)
		}
		headers[k] = h.Value
	}
	if m := kafka_sarama.NewMessage(cm.Value, contentType, headers); m.ReadEncoding() == binding.EncodingBinary {
		if it, ok := d.ce.FastBinary(m); ok {
			return it
		}
	}
	return FromMessage(cm.Topic, strconv.Itoa(int(cm.Partition)), strconv.FormatInt(cm.Offset, 10),
		kafka_sarama.NewMessageFromConsumerMessage(cm))
}

// FromMessage decodes a record's message through the SDK (the full path; the
// OpenFaaS kafka-connector's requests take it too).
func FromMessage(topic, partition, offset string, m *kafka_sarama.Message) transfer.Item {
	ref := func() string { return topic + "/" + partition + "/" + offset }
	if m.ReadEncoding() != binding.EncodingUnknown {
		e, err := binding.ToEvent(context.Background(), m)
		if err != nil {
			return transfer.Item{Ref: ref(), Err: transfer.Bad("malformed CloudEvent: %s", transfer.OneLine(err.Error()))}
		}
		return cloudevent.FromEvent(*e)
	}
	t, err := seedline.Parse(string(m.Value))
	if err != nil {
		return transfer.Item{Ref: ref(), Err: err}
	}
	t.Source = "kafka://" + topic
	t.ID = partition + "/" + offset
	return transfer.Item{Ref: ref(), Transfer: t, Err: t.Validate()}
}

// Messages encodes events as producer records for topic, each through the
// CloudEvents Kafka binding (binary mode: ce_ headers, data as the value);
// the partitionkey extension becomes the record key.
func Messages(ctx context.Context, topic string, events []ce.Event) ([]*sarama.ProducerMessage, error) {
	msgs := make([]*sarama.ProducerMessage, len(events))
	for i := range events {
		m := &sarama.ProducerMessage{Topic: topic}
		if err := kafka_sarama.WriteProducerMessage(ctx, binding.ToMessage(&events[i]), m); err != nil {
			return nil, fmt.Errorf("encoding event %s: %w", events[i].ID(), err)
		}
		if m.Key == nil {
			if k, ok := events[i].Extensions()[cloudevent.PartitionKey].(string); ok {
				m.Key = sarama.StringEncoder(k)
			}
		}
		msgs[i] = m
	}
	return msgs, nil
}

// Line encodes a transfer as a plain record in the seed's line format, keyed
// by the pair. It is not a CloudEvent: Decode reads it back with the id
// "<partition>/<offset>", not the transfer's.
func Line(topic string, t transfer.Transfer) *sarama.ProducerMessage {
	return &sarama.ProducerMessage{
		Topic: topic,
		Key:   sarama.StringEncoder(transfer.PairKey(t.From, t.To)),
		Value: sarama.StringEncoder(seedline.Format(t)),
	}
}
