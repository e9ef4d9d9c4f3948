package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// EnsureTopics creates the topics that do not exist yet, each with partitions
// partitions and the given replication factor; topics that already exist are
// left as they are (their partition count is not checked or changed).
//
// A replication factor <= 0 means "3, or the number of brokers if fewer",
// which suits both a single-broker development cluster and a production one.
// A factor larger than the broker count is refused by the cluster.
//
// It uses a sarama.ClusterAdmin built from cfg. If ctx ends first, ctx's error
// is returned (the admin connection is closed in the background).
func EnsureTopics(ctx context.Context, brokers []string, cfg *sarama.Config, partitions int32, replication int16, topics ...string) error {
	if len(topics) == 0 {
		return nil
	}
	if partitions < 1 {
		return fmt.Errorf("ensure topics %v: partitions must be >= 1, got %d", topics, partitions)
	}
	return runCtx(ctx, func() error {
		admin, err := sarama.NewClusterAdmin(brokers, cfg)
		if err != nil {
			return fmt.Errorf("ensure topics: kafka admin %v: %w", brokers, err)
		}
		defer admin.Close()

		if replication <= 0 {
			bs, _, err := admin.DescribeCluster()
			if err != nil {
				return fmt.Errorf("ensure topics: describe cluster: %w", err)
			}
			replication = int16(min(3, max(1, len(bs))))
		}
		for _, t := range topics {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			err := admin.CreateTopic(t, &sarama.TopicDetail{
				NumPartitions:     partitions,
				ReplicationFactor: replication,
			}, false)
			if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
				return fmt.Errorf("ensure topics: create %q (%d partitions, replication %d): %w",
					t, partitions, replication, err)
			}
		}
		return nil
	})
}

// WaitReady waits until the cluster answers a metadata request, for startup
// against a Kafka that is still booting. It retries with exponential backoff
// (100ms doubling to 2s) until a fresh client gets metadata listing at least
// one broker, or ctx ends; then it returns an error wrapping ctx.Err() that
// also carries the last connection error.
func WaitReady(ctx context.Context, brokers []string, cfg *sarama.Config) error {
	if len(brokers) == 0 {
		return errors.New("kafka wait ready: no brokers given")
	}
	// One attempt = one quick try: no internal metadata retries (this loop
	// retries) and a bounded dial timeout.
	c := *cfg
	c.Metadata.Retry.Max = 0
	if c.Net.DialTimeout <= 0 || c.Net.DialTimeout > 5*time.Second {
		c.Net.DialTimeout = 5 * time.Second
	}
	attempt := func() error {
		client, err := sarama.NewClient(brokers, &c)
		if err != nil {
			return err
		}
		defer client.Close()
		if err := client.RefreshMetadata(); err != nil {
			return err
		}
		if len(client.Brokers()) == 0 {
			return errors.New("metadata lists no brokers")
		}
		return nil
	}

	wait := backoff(100*time.Millisecond, 2*time.Second)
	var lastErr error
	notReady := func() error {
		if lastErr == nil {
			return fmt.Errorf("kafka %v not ready: %w", brokers, ctx.Err())
		}
		return fmt.Errorf("kafka %v not ready: %w (last error: %v)", brokers, ctx.Err(), lastErr)
	}
	for try := 0; ; try++ {
		err := runCtx(ctx, attempt)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			if !errors.Is(err, ctx.Err()) {
				lastErr = err
			}
			return notReady()
		}
		lastErr = err
		t := time.NewTimer(wait(try, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return notReady()
		case <-t.C:
		}
	}
}

// runCtx runs fn, returning its error, or ctx's error if ctx ends first (fn
// then finishes in the background). sarama's admin and client calls take no
// context, so this is how they are bounded.
func runCtx(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
