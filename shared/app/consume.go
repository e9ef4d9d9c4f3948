package app

import (
	"context"
	"errors"
	"log/slog"

	"github.com/IBM/sarama"

	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/consumer"
	"github.com/fintrans/fintrans/shared/kafka"
)

// Consumer wires `fintrans consume`: a consumer group on TRANSACTIONS_TOPIC
// feeding the detector, with refused records sent to DLQ_TOPIC.
func Consumer(ctx context.Context, cfg config.Config, log *slog.Logger) (*consumer.Consumer, func() error, error) {
	if len(cfg.KafkaBrokers) == 0 {
		return nil, nil, errors.New("consume needs KAFKA_BROKERS")
	}
	kc, err := kafka.Config("detect", cfg.KafkaVersion)
	if err != nil {
		return nil, nil, err
	}
	if err := kafka.WaitReady(ctx, cfg.KafkaBrokers, kc); err != nil {
		return nil, nil, err
	}
	d, closeDetector, err := Detector(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	group, err := sarama.NewConsumerGroup(cfg.KafkaBrokers, cfg.ConsumerGroup, kc)
	if err != nil {
		closeDetector()
		return nil, nil, err
	}
	dlq, err := sarama.NewSyncProducer(cfg.KafkaBrokers, kc)
	if err != nil {
		group.Close()
		closeDetector()
		return nil, nil, err
	}
	c := &consumer.Consumer{Group: group, Topic: cfg.TransactionsTopic, Detector: d, DLQ: dlq,
		DLQTopic: cfg.DLQTopic, MaxBatch: cfg.MaxBatch, Log: log.With("function", "detect", "mode", "consume")}
	log.Info("consuming", "topic", cfg.TransactionsTopic, "group", cfg.ConsumerGroup, "dead_letters", cfg.DLQTopic)
	return c, func() error { return errors.Join(group.Close(), dlq.Close(), closeDetector()) }, nil
}
