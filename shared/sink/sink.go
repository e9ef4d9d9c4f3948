// Package sink delivers CloudEvents: to an HTTP endpoint such as a Knative
// KafkaSink (K_SINK) through the CloudEvents SDK, or straight to a Kafka topic
// through sarama and the SDK's kafka_sarama binding. Send returns only once
// every event is accepted; any error means "retry", never "done".
package sink

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/IBM/sarama"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	ce "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/fintrans/fintrans/shared/codec/kafkarecord"
)

// Sink accepts events durably or fails.
type Sink interface {
	Send(ctx context.Context, events []ce.Event) error
	Close() error
}

// Func adapts a function to a Sink (tests, the replay command).
type Func func(ctx context.Context, events []ce.Event) error

func (f Func) Send(ctx context.Context, events []ce.Event) error { return f(ctx, events) }
func (f Func) Close() error                                      { return nil }

// HTTP posts each event in structured mode (application/cloudevents+json)
// to a URL: a Knative KafkaSink answers 202 once the record is in Kafka. Any
// answer outside 2xx is an error.
//
// Structured, not binary: in binary mode the attributes travel as HTTP
// headers, and an alert's subject and partitionkey hold account ids, which
// may hold any character but controls (SPEC section 2). The SDK writes header
// values raw, where the CloudEvents HTTP binding wants them percent-encoded:
// a receiver that decodes them would turn an id holding "%0d%0a" into CR LF,
// and one that reads headers as ISO-8859-1 would garble non-ASCII ids. In a
// JSON body every id travels exactly, so no account id can block or alter an
// alert's delivery.
type HTTP struct {
	client      cloudevents.Client
	target      string
	name        string // target without its password, for errors
	parallelism int
}

// NewHTTP makes an HTTP sink for target, with its own http.Client timeout.
func NewHTTP(target string, timeout time.Duration) (*HTTP, error) {
	p, err := cloudevents.NewHTTP(cloudevents.WithTarget(target),
		cehttp.WithClient(http.Client{Timeout: timeout}))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, password included
		}
		return nil, fmt.Errorf("K_SINK %s: %w", Describe(target), err)
	}
	c, err := cloudevents.NewClient(p, cloudevents.WithTimeNow(), cloudevents.WithUUIDs())
	if err != nil {
		return nil, err
	}
	return &HTTP{client: c, target: target, name: Describe(target), parallelism: 16}, nil
}

// Describe names an HTTP sink for logs, answers and errors without the
// password its URL may carry (http://user:password@host/...).
func Describe(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Send posts the events concurrently (at most 16 at once).
func (h *HTTP) Send(ctx context.Context, events []ce.Event) error {
	if len(events) == 0 {
		return nil
	}
	sem := make(chan struct{}, h.parallelism)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for i := range events {
		wg.Add(1)
		sem <- struct{}{}
		go func(e ce.Event) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := h.sendOne(ctx, e); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}(events[i])
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (h *HTTP) sendOne(ctx context.Context, e ce.Event) error {
	ctx = binding.WithForceStructured(cloudevents.ContextWithRetriesExponentialBackoff(ctx, 50*time.Millisecond, 2))
	res := h.client.Send(ctx, e)
	if cloudevents.IsUndelivered(res) {
		return fmt.Errorf("sink %s: event %s undelivered: %w", h.name, e.ID(), res)
	}
	var hr *cehttp.Result
	if errors.As(res, &hr) && (hr.StatusCode < 200 || hr.StatusCode > 299) {
		return fmt.Errorf("sink %s: event %s refused with HTTP %d", h.name, e.ID(), hr.StatusCode)
	}
	if !cloudevents.IsACK(res) {
		return fmt.Errorf("sink %s: event %s not acknowledged: %w", h.name, e.ID(), res)
	}
	return nil
}

func (h *HTTP) Close() error { return nil }

// Kafka writes events to a topic with a sarama SyncProducer, all of a call in
// one SendMessages, each through the CloudEvents Kafka binding (binary mode:
// ce_ headers, data as the value); the partitionkey extension becomes the
// record key.
type Kafka struct {
	producer sarama.SyncProducer
	topic    string
}

// NewKafka connects a producer to brokers.
func NewKafka(brokers []string, cfg *sarama.Config, topic string) (*Kafka, error) {
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("kafka producer for %s: %w", topic, err)
	}
	return &Kafka{producer: p, topic: topic}, nil
}

// NewKafkaFromProducer wraps an existing producer (not closed by Close).
func NewKafkaFromProducer(p sarama.SyncProducer, topic string) *Kafka {
	return &Kafka{producer: p, topic: topic}
}

func (k *Kafka) Send(ctx context.Context, events []ce.Event) error {
	if len(events) == 0 {
		return nil
	}
	msgs, err := kafkarecord.Messages(ctx, k.topic, events)
	if err != nil {
		return err
	}
	if err := k.producer.SendMessages(msgs); err != nil {
		return fmt.Errorf("kafka topic %s: %w", k.topic, err)
	}
	return nil
}

func (k *Kafka) Close() error { return k.producer.Close() }
