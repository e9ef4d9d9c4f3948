package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/IBM/sarama"

	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/generator"
	"github.com/fintrans/fintrans/shared/kafka"
	"github.com/fintrans/fintrans/shared/sink"
)

// GeneratorFunction is the wired generator function together with the
// Generator behind its handler, for the local runner, which calls
// Generator.Tick from its own cron instead of posting to the handler.
// Close (from the embedded *Function) releases the Kafka producer.
type GeneratorFunction struct {
	*Function
	Generator *generator.Generator
	// Target names where the transfers go ("kafka topic transactions",
	// "K_SINK http://...") for logs.
	Target string
}

// NewGeneratorFrom wires the generator from the configuration:
//   - K_SINK set: CloudEvents posted over HTTP (a Knative SinkBinding);
//     GENERATOR_FORMAT=line is refused (a sink takes CloudEvents only);
//   - otherwise KAFKA_BROKERS: one SendMessages per tick to
//     TRANSACTIONS_TOPIC, as CloudEvents (binary mode) or, with
//     GENERATOR_FORMAT=line, as plain seed lines;
//   - neither: an error.
func NewGeneratorFrom(ctx context.Context, cfg config.Config, log *slog.Logger) (*GeneratorFunction, error) {
	h := &generator.Handler{Log: log}
	f := &Function{Name: "generator", Handler: h}
	var out sink.Sink
	var target string
	switch {
	case cfg.KSink != "":
		if cfg.GeneratorFormat == "line" {
			return nil, errors.New("GENERATOR_FORMAT=line needs KAFKA_BROKERS: K_SINK takes CloudEvents only (unset K_SINK or use GENERATOR_FORMAT=cloudevents)")
		}
		s, err := sink.NewHTTP(cfg.KSink, 10*time.Second)
		if err != nil {
			return nil, err
		}
		out, target, h.Sink = s, "K_SINK "+sink.Describe(cfg.KSink), sink.Describe(cfg.KSink)
		f.Ready = func(context.Context) error { return nil }
		f.closers = append(f.closers, s.Close)
	case len(cfg.KafkaBrokers) > 0:
		kc, err := kafka.Config("generator", cfg.KafkaVersion)
		if err != nil {
			return nil, err
		}
		p, err := sarama.NewSyncProducer(cfg.KafkaBrokers, kc)
		if err != nil {
			return nil, err
		}
		if cfg.GeneratorFormat == "line" {
			out = generator.NewLineKafka(p, cfg.TransactionsTopic)
		} else {
			out = sink.NewKafkaFromProducer(p, cfg.TransactionsTopic)
		}
		target, h.Topic = "kafka topic "+cfg.TransactionsTopic, cfg.TransactionsTopic
		brokers := cfg.KafkaBrokers
		f.Ready = func(ctx context.Context) error { return kafka.WaitReady(ctx, brokers, kc) }
		f.closers = append(f.closers, p.Close)
	default:
		return nil, errors.New("generator needs KAFKA_BROKERS or K_SINK")
	}
	h.Generator = generator.New(cfg, out, nil, nil)
	log.Info("generator ready", "to", target, "format", cfg.GeneratorFormat,
		"transfers", cfg.GeneratorTransfers, "accounts", cfg.GeneratorAccounts,
		"fraud_rate", cfg.GeneratorFraudRate, "threshold", cfg.Threshold.String())
	return &GeneratorFunction{Function: f, Generator: h.Generator, Target: target}, nil
}

func newGenerator(ctx context.Context, cfg config.Config, log *slog.Logger) (*Function, error) {
	g, err := NewGeneratorFrom(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	return g.Function, nil
}
