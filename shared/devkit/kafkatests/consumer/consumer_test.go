package consumer_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/fintrans/fintrans/shared/codec/cloudevent"
	"github.com/fintrans/fintrans/shared/codec/kafkarecord"
	"github.com/fintrans/fintrans/shared/consumer"
	"github.com/fintrans/fintrans/shared/detect"
	"github.com/fintrans/fintrans/shared/devkit/embeddedkafka"
	"github.com/fintrans/fintrans/shared/kafka"
	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/redistest"
	"github.com/fintrans/fintrans/shared/sink"
	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/window"
)

func transferEvent(id string, at time.Time, from, to string, cents int64) ce.Event {
	e := ce.New()
	e.SetID(id)
	e.SetType(cloudevent.TransactionType)
	e.SetSource(cloudevent.GeneratorSource)
	e.SetTime(at)
	e.SetExtension(cloudevent.PartitionKey, transfer.PairKey(from, to))
	_ = e.SetData(ce.ApplicationJSON, map[string]any{"from": from, "to": to, "amount": money.Cents(cents)})
	return e
}

func TestConsumerDetectsAndDeadLetters(t *testing.T) {
	k, err := embeddedkafka.Start(3, "transactions", "fraud", "transactions.dlq")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	rdb := redistest.Start(t).Client(t)
	kc, err := kafka.Config("test", "", kafka.Security{})
	if err != nil {
		t.Fatal(err)
	}

	// 40 pairs; on pair i, three transfers of 4000 a minute apart: each pair
	// crosses 10000 in the windows holding all three.
	base := time.Date(2017, 7, 23, 1, 0, 30, 0, time.UTC)
	var events []ce.Event
	for i := 0; i < 40; i++ {
		for j := 0; j < 3; j++ {
			events = append(events, transferEvent(fmt.Sprintf("p%d-%d", i, j), base.Add(time.Duration(j)*time.Minute), "a"+strconv.Itoa(i), "b", 4000_00))
		}
	}
	in, err := sink.NewKafka(k.Brokers, kc, "transactions")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := in.Send(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	// Every transfer again (at-least-once upstream), an invalid record, a
	// plain seed line, and a late transfer.
	if err := in.Send(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	raw, err := sarama.NewSyncProducer(k.Brokers, kc)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	late := transferEvent("late", base.Add(-2*time.Hour), "a0", "b", 1)
	lateMsgs, _ := kafkarecord.Messages(context.Background(), "transactions", []ce.Event{late})
	if err := raw.SendMessages(append(lateMsgs,
		&sarama.ProducerMessage{Topic: "transactions", Value: sarama.StringEncoder("not a transfer")},
		&sarama.ProducerMessage{Topic: "transactions", Key: sarama.StringEncoder("x->y"), Value: sarama.StringEncoder("2017-07-23T01:00:00Z;x;y;10000.01")},
	)); err != nil {
		t.Fatal(err)
	}

	st, err := window.New(rdb, window.Config{Threshold: 10000_00, Size: 10 * time.Minute, Slide: 2 * time.Minute, Lateness: time.Hour, MaxTransactions: 10, TTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	out, err := sink.NewKafka(k.Brokers, kc, "fraud")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	group, err := sarama.NewConsumerGroup(k.Brokers, "detect-test", kc)
	if err != nil {
		t.Fatal(err)
	}
	c := &consumer.Consumer{Group: group, Topic: "transactions", Detector: &detect.Detector{Store: st, Sink: out},
		DLQ: raw, DLQTopic: "transactions.dlq", MaxBatch: 50}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	total := int64(2*len(events) + 3)
	deadline := time.Now().Add(30 * time.Second)
	for c.Processed.Load() < total && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	group.Close()
	if got := c.Processed.Load(); got != total {
		t.Fatalf("processed %d of %d records", got, total)
	}

	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	frauds, err := kafka.ReadAll(rctx, k.Brokers, kc, "fraud")
	if err != nil {
		t.Fatal(err)
	}
	// Each pair's three transfers share the windows starting 00:52..01:00 ->
	// only windows holding 01:00:30, 01:01:30 and 01:02:30: starts 00:54,
	// 00:56, 00:58, 01:00 (00:52 ends at 01:02). 4 alerts a pair, plus the
	// seed line's 5; duplicates re-fire the crossing transfer's alerts.
	ids := map[string]int{}
	for _, m := range frauds {
		var found string
		for _, h := range m.Headers {
			if string(h.Key) == "ce_id" {
				found = string(h.Value)
			}
		}
		if found == "" {
			t.Fatalf("fraud record without ce_id header: %s", m.Value)
		}
		if string(m.Key) == "" {
			t.Fatalf("fraud record without key")
		}
		ids[found]++
	}
	if len(ids) != 40*4+5 {
		t.Fatalf("distinct alerts %d, want %d", len(ids), 40*4+5)
	}
	for id, n := range ids {
		if n > 2 {
			t.Errorf("alert %s emitted %d times; a transfer delivered twice fires at most twice", id, n)
		}
	}
	dlq, err := kafka.ReadAll(rctx, k.Brokers, kc, "transactions.dlq")
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, m := range dlq {
		var status, reason string
		for _, h := range m.Headers {
			switch string(h.Key) {
			case consumer.HeaderStatus:
				status = string(h.Value)
			case consumer.HeaderReason:
				reason = string(h.Value)
			}
		}
		reasons[status] = reason
	}
	if len(dlq) != 2 || reasons["late"] == "" || reasons["invalid"] == "" {
		t.Fatalf("dead letters %d: %v", len(dlq), reasons)
	}
	// The group committed what it processed: a new session starts at the end.
	admin, err := sarama.NewClusterAdmin(k.Brokers, kc)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	offs, err := admin.ListConsumerGroupOffsets("detect-test", map[string][]int32{"transactions": {0, 1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	for _, b := range offs.Blocks["transactions"] {
		committed += b.Offset
	}
	if committed != total {
		t.Fatalf("committed offsets sum to %d, want %d", committed, total)
	}
}
