package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/devkit/embeddedkafka"
	"github.com/fintrans/fintrans/shared/kafka"
)

// TestMain clears the security variables so that the tests do not depend on
// the caller's environment; tests that need them use t.Setenv.
func TestMain(m *testing.M) {
	for _, v := range []string{kafka.EnvTLS, kafka.EnvCAFile, kafka.EnvSASLUser, kafka.EnvSASLPassword, kafka.EnvSASLMechanism} {
		os.Unsetenv(v)
	}
	os.Exit(m.Run())
}

// startKafka starts an embedded cluster for one test.
func startKafka(t *testing.T, partitions int32, topics ...string) *embeddedkafka.Kafka {
	t.Helper()
	k, err := embeddedkafka.Start(partitions, topics...)
	if err != nil {
		t.Fatalf("StartKafka: %v", err)
	}
	t.Cleanup(k.Close)
	return k
}

// mustConfig builds a config or fails the test.
func mustConfig(t *testing.T, role, version string) *sarama.Config {
	t.Helper()
	cfg, err := envConfig(role, version)
	if err != nil {
		t.Fatalf("Config(%q, %q): %v", role, version, err)
	}
	return cfg
}

// envConfig builds a config with the security settings of the environment,
// read as every fintrans process reads them (config.Load).
func envConfig(role, version string) (*sarama.Config, error) {
	c, err := config.Load()
	if err != nil {
		return nil, err
	}
	return kafka.Config(role, version, c.KafkaSecurity)
}

// produce sends n keyed messages "v<first+i>" with keys "acct-<(first+i)%keys>"
// and returns the partition each key went to.
func produce(t *testing.T, brokers []string, cfg *sarama.Config, topic string, first, n, keys int) map[string]int32 {
	t.Helper()
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatalf("NewSyncProducer: %v", err)
	}
	defer p.Close()
	msgs := make([]*sarama.ProducerMessage, n)
	for i := range msgs {
		j := first + i
		msgs[i] = &sarama.ProducerMessage{
			Topic: topic,
			Key:   sarama.StringEncoder(fmt.Sprintf("acct-%d", j%keys)),
			Value: sarama.StringEncoder(fmt.Sprintf("v%d", j)),
		}
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatalf("SendMessages: %v", err)
	}
	parts := make(map[string]int32)
	for _, m := range msgs {
		k := string(m.Key.(sarama.StringEncoder))
		if prev, ok := parts[k]; ok && prev != m.Partition {
			t.Fatalf("key %s went to partitions %d and %d", k, prev, m.Partition)
		}
		parts[k] = m.Partition
	}
	return parts
}

// seen is what a consumer group session read.
type seen struct {
	mu     sync.Mutex
	values map[string]int // value -> times seen
	parts  map[string]int32
	total  int
}

// collector is a sarama.ConsumerGroupHandler that records and marks every
// message and calls done once want messages have been seen.
type collector struct {
	s    *seen
	want int
	done func()
}

func (c *collector) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (c *collector) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (c *collector) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			c.s.mu.Lock()
			c.s.values[string(m.Value)]++
			c.s.parts[string(m.Key)] = m.Partition
			c.s.total++
			reached := c.s.total >= c.want
			c.s.mu.Unlock()
			sess.MarkMessage(m, "")
			if reached {
				c.done()
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

// consumeGroup runs a consumer group on topic until want messages are seen or
// timeout passes, then closes the group (which commits the marked offsets).
func consumeGroup(t *testing.T, brokers []string, cfg *sarama.Config, group, topic string, want int, timeout time.Duration) *seen {
	t.Helper()
	cg, err := sarama.NewConsumerGroup(brokers, group, cfg)
	if err != nil {
		t.Fatalf("NewConsumerGroup: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	s := &seen{values: make(map[string]int), parts: make(map[string]int32)}
	h := &collector{s: s, want: want, done: cancel}

	var groupErrs []error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for err := range cg.Errors() {
			groupErrs = append(groupErrs, err)
		}
	}()

	for ctx.Err() == nil {
		if err := cg.Consume(ctx, []string{topic}, h); err != nil {
			if errors.Is(err, sarama.ErrClosedConsumerGroup) {
				break
			}
			t.Logf("Consume: %v", err)
			time.Sleep(50 * time.Millisecond)
		}
	}
	timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
	if err := cg.Close(); err != nil {
		t.Errorf("close consumer group: %v", err)
	}
	wg.Wait()
	for _, err := range groupErrs {
		t.Logf("consumer group error: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if timedOut && s.total < want {
		t.Fatalf("group %s: timed out after %v with %d of %d messages", group, timeout, s.total, want)
	}
	return s
}
