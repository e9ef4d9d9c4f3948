package sink_test

import (
	"context"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/fintrans/fintrans/shared/codec/cloudevent"
	"github.com/fintrans/fintrans/shared/detect/detecttest"
	"github.com/fintrans/fintrans/shared/devkit/embeddedkafka"
	"github.com/fintrans/fintrans/shared/kafka"
	"github.com/fintrans/fintrans/shared/sink"
)

// The same through Kafka (kfake, sarama, the kafka_sarama binding): every
// alert is written, keyed by its partitionkey, and reads back exactly.
func TestWorstIDsAlertsReachKafka(t *testing.T) {
	k, err := embeddedkafka.Start(2, "fraud")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	kc, err := kafka.Config("test", "", kafka.Security{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := sink.NewKafka(k.Brokers, kc, "fraud")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sent := detecttest.SendWorstAlerts(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msgs, err := kafka.ReadAll(ctx, k.Brokers, kc, "fraud")
	if err != nil {
		t.Fatal(err)
	}
	var got []ce.Event
	for _, m := range msgs {
		e, err := binding.ToEvent(ctx, kafka_sarama.NewMessageFromConsumerMessage(m))
		if err != nil {
			t.Fatalf("record %d/%d is no CloudEvent: %v", m.Partition, m.Offset, err)
		}
		if pk, _ := e.Extensions()[cloudevent.PartitionKey].(string); string(m.Key) != pk {
			t.Errorf("record key %q, partitionkey %q", m.Key, pk)
		}
		// The record carries the subject exactly; the SDK's binary reader
		// trims its outer white space (SetSubject), so it is checked here as
		// the bytes of the ce_subject header.
		for _, h := range m.Headers {
			if string(h.Key) == "ce_subject" {
				e.Context.(*ce.EventContextV1).Subject = &[]string{string(h.Value)}[0]
			}
		}
		got = append(got, *e)
	}
	detecttest.CheckDelivered(t, sent, got)
}
