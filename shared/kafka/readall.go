package kafka

import (
	"context"
	"fmt"

	"github.com/IBM/sarama"
)

// ReadAll reads every record of every partition of topic that exists now
// (up to each partition's high-water mark when called), without a consumer
// group. Tests, the benchmark and tools use it to see what a topic holds.
func ReadAll(ctx context.Context, brokers []string, cfg *sarama.Config, topic string) ([]*sarama.ConsumerMessage, error) {
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		return nil, err
	}
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, err
	}
	defer cons.Close()
	var out []*sarama.ConsumerMessage
	for _, p := range parts {
		hwm, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, err
		}
		oldest, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return nil, err
		}
		if hwm <= oldest {
			continue
		}
		pc, err := cons.ConsumePartition(topic, p, oldest)
		if err != nil {
			return nil, err
		}
		for done := false; !done; {
			select {
			case m := <-pc.Messages():
				out = append(out, m)
				done = m.Offset >= hwm-1
			case err := <-pc.Errors():
				pc.Close()
				return nil, fmt.Errorf("reading %s/%d: %w", topic, p, err)
			case <-ctx.Done():
				pc.Close()
				return nil, ctx.Err()
			}
		}
		pc.Close()
	}
	return out, nil
}
