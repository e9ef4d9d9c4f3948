package embeddedkafka_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/fintrans/fintrans/shared/devkit/embeddedkafka"
	"github.com/fintrans/fintrans/shared/kafka"
)

func TestStartSeedsTopics(t *testing.T) {
	k, err := embeddedkafka.Start(3, "transactions", "fraud")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if len(k.Brokers) != 1 || !strings.HasPrefix(k.Brokers[0], "127.0.0.1:") {
		t.Fatalf("Brokers = %v, want one loopback address", k.Brokers)
	}

	cfg, err := kafka.Config("test", "", kafka.Security{})
	if err != nil {
		t.Fatal(err)
	}
	client, err := sarama.NewClient(k.Brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for _, topic := range []string{"transactions", "fraud"} {
		ps, err := client.Partitions(topic)
		if err != nil || len(ps) != 3 {
			t.Errorf("%s: partitions %v (err %v), want 3", topic, ps, err)
		}
	}

	k.Close()
	k.Close() // idempotent
}

func TestStartWithFixedPortsAndBrokers(t *testing.T) {
	port := freePort(t)
	k, err := embeddedkafka.StartWith(embeddedkafka.Options{Ports: []int{port}, Partitions: 2}, "t")
	if err != nil {
		t.Fatal(err)
	}
	if want := "127.0.0.1:" + strconv.Itoa(port); len(k.Brokers) != 1 || k.Brokers[0] != want {
		t.Errorf("Brokers = %v, want [%s]", k.Brokers, want)
	}
	k.Close()

	// Three brokers: partition leaders and the group coordinator are spread
	// over them, and a produce/consume-group round trip still works.
	k3, err := embeddedkafka.StartWith(embeddedkafka.Options{Brokers: 3, Partitions: 3}, "transactions")
	if err != nil {
		t.Fatal(err)
	}
	defer k3.Close()
	if len(k3.Brokers) != 3 {
		t.Fatalf("Brokers = %v, want 3", k3.Brokers)
	}
	cfg, err := kafka.Config("test", "2.8.0", kafka.Security{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := sarama.NewSyncProducer(k3.Brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{
			Topic: "transactions",
			Key:   sarama.StringEncoder(fmt.Sprintf("k%d", i%5)),
			Value: sarama.StringEncoder(strconv.Itoa(i)),
		}); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()

	cg, err := sarama.NewConsumerGroup(k3.Brokers, "g3", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := &countHandler{want: 30, done: cancel}
	for ctx.Err() == nil {
		if err := cg.Consume(ctx, []string{"transactions"}, h); err != nil {
			t.Fatalf("Consume: %v", err)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n != 30 {
		t.Fatalf("consumed %d of 30 on a 3-broker cluster", h.n)
	}
}

// countHandler marks and counts messages; one ConsumeClaim runs per
// partition, hence the mutex.
type countHandler struct {
	mu      sync.Mutex
	n, want int
	done    func()
}

func (h *countHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *countHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *countHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-c.Messages():
			if !ok {
				return nil
			}
			s.MarkMessage(m, "")
			h.mu.Lock()
			h.n++
			reached := h.n >= h.want
			h.mu.Unlock()
			if reached {
				h.done()
			}
		case <-s.Context().Done():
			return nil
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
