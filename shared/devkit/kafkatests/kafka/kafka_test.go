package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/fintrans/fintrans/shared/kafka"
	"github.com/fintrans/fintrans/shared/syncbuf"
)

func TestConfigSettings(t *testing.T) {
	cfg := mustConfig(t, "sink", "2.8.0")
	if cfg.ClientID != "fintrans-sink" {
		t.Errorf("ClientID = %q", cfg.ClientID)
	}
	if cfg.Version != sarama.V2_8_0_0 {
		t.Errorf("Version = %v", cfg.Version)
	}
	if cfg.Producer.RequiredAcks != sarama.WaitForAll || cfg.Producer.Idempotent ||
		!cfg.Producer.Return.Successes || !cfg.Producer.Return.Errors || cfg.Producer.Retry.Max != 5 ||
		cfg.Producer.Compression != sarama.CompressionNone {
		t.Errorf("producer settings: %+v", cfg.Producer)
	}
	if b := cfg.Producer.Retry.BackoffFunc; b == nil || b(0, 5) != 100*time.Millisecond || b(1, 5) != 200*time.Millisecond || b(10, 5) != 2*time.Second {
		t.Errorf("producer backoff not 100ms doubling to 2s")
	}
	if cfg.Consumer.Offsets.Initial != sarama.OffsetOldest || !cfg.Consumer.Offsets.AutoCommit.Enable ||
		cfg.Consumer.Offsets.AutoCommit.Interval != time.Second || !cfg.Consumer.Return.Errors {
		t.Errorf("consumer settings: %+v", cfg.Consumer)
	}
	if s := cfg.Consumer.Group.Rebalance.GroupStrategies; len(s) != 1 || s[0].Name() != sarama.StickyBalanceStrategyName {
		t.Errorf("group strategies = %v", s)
	}

	def := mustConfig(t, "viewer", "")
	if def.Version.String() != kafka.DefaultVersion {
		t.Errorf("default version = %v, want %s", def.Version, kafka.DefaultVersion)
	}

	if _, err := kafka.Config("sink", "two.eight", kafka.Security{}); err == nil || !strings.Contains(err.Error(), "KAFKA_VERSION") {
		t.Errorf("bad version: err = %v, want one naming KAFKA_VERSION", err)
	}
}

func TestConfigSecurityEnv(t *testing.T) {
	t.Run("bad mechanism", func(t *testing.T) {
		t.Setenv(kafka.EnvSASLUser, "u")
		t.Setenv(kafka.EnvSASLPassword, "p")
		t.Setenv(kafka.EnvSASLMechanism, "GSSAPI")
		if _, err := envConfig("x", ""); err == nil || !strings.Contains(err.Error(), kafka.EnvSASLMechanism) {
			t.Errorf("err = %v, want one naming %s", err, kafka.EnvSASLMechanism)
		}
	})
	t.Run("bad tls flag", func(t *testing.T) {
		t.Setenv(kafka.EnvTLS, "maybe")
		if _, err := envConfig("x", ""); err == nil || !strings.Contains(err.Error(), kafka.EnvTLS) {
			t.Errorf("err = %v, want one naming %s", err, kafka.EnvTLS)
		}
	})
	t.Run("missing CA file", func(t *testing.T) {
		t.Setenv(kafka.EnvTLS, "true")
		t.Setenv(kafka.EnvCAFile, t.TempDir()+"/nope.pem")
		if _, err := envConfig("x", ""); err == nil || !strings.Contains(err.Error(), kafka.EnvCAFile) {
			t.Errorf("err = %v, want one naming %s", err, kafka.EnvCAFile)
		}
	})
	t.Run("CA file without tls", func(t *testing.T) {
		t.Setenv(kafka.EnvCAFile, "/etc/ssl/ca.pem")
		if _, err := envConfig("x", ""); err == nil || !strings.Contains(err.Error(), kafka.EnvTLS) {
			t.Errorf("err = %v, want one naming %s", err, kafka.EnvTLS)
		}
	})
	t.Run("sasl user without password", func(t *testing.T) {
		t.Setenv(kafka.EnvSASLUser, "u")
		if _, err := envConfig("x", ""); err == nil || !strings.Contains(err.Error(), kafka.EnvSASLPassword) {
			t.Errorf("err = %v, want one naming %s", err, kafka.EnvSASLPassword)
		}
	})
	t.Run("tls and scram", func(t *testing.T) {
		t.Setenv(kafka.EnvTLS, "true")
		t.Setenv(kafka.EnvSASLUser, "u")
		t.Setenv(kafka.EnvSASLPassword, "p")
		t.Setenv(kafka.EnvSASLMechanism, "scram-sha-512")
		cfg := mustConfig(t, "x", "")
		if !cfg.Net.TLS.Enable || cfg.Net.TLS.Config == nil || !cfg.Net.SASL.Enable ||
			cfg.Net.SASL.Mechanism != sarama.SASLTypeSCRAMSHA512 || cfg.Net.SASL.SCRAMClientGeneratorFunc == nil {
			t.Errorf("net settings: %+v", cfg.Net)
		}
	})
}

// TestProduceConsumeGroup is the main round trip: 300 keyed messages through
// a SyncProducer, read back by a consumer group that marks them, then a new
// session of the same group resumes from the committed offsets.
func TestProduceConsumeGroup(t *testing.T) {
	k := startKafka(t, 3, "transactions", "fraud")
	cfg := mustConfig(t, "test", "")

	produced := produce(t, k.Brokers, cfg, "transactions", 0, 300, 20)
	used := map[int32]bool{}
	for _, p := range produced {
		used[p] = true
	}
	if len(used) < 2 {
		t.Errorf("20 keys landed on %d partition(s); the hash partitioner should spread them", len(used))
	}

	first := consumeGroup(t, k.Brokers, cfg, "g1", "transactions", 300, 15*time.Second)
	if first.total != 300 || len(first.values) != 300 {
		t.Fatalf("first session: %d messages, %d distinct, want 300", first.total, len(first.values))
	}
	for key, p := range first.parts {
		if produced[key] != p {
			t.Errorf("key %s consumed from partition %d, produced to %d", key, p, produced[key])
		}
	}

	// The first session closed after marking everything: its offsets are
	// committed, so a new session must see only what is produced now.
	produce(t, k.Brokers, cfg, "transactions", 300, 30, 20)
	second := consumeGroup(t, k.Brokers, cfg, "g1", "transactions", 30, 15*time.Second)
	if second.total != 30 {
		t.Fatalf("second session: %d messages, want 30", second.total)
	}
	for v, n := range second.values {
		var i int
		if _, err := fmt.Sscanf(v, "v%d", &i); err != nil || i < 300 || n != 1 {
			t.Errorf("second session saw %q %d time(s): replayed after commit", v, n)
		}
	}

	// The committed offsets are visible to an admin too.
	admin, err := sarama.NewClusterAdmin(k.Brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	offs, err := admin.ListConsumerGroupOffsets("g1", map[string][]int32{"transactions": {0, 1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, b := range offs.Blocks["transactions"] {
		sum += b.Offset
	}
	if sum != 330 {
		t.Errorf("committed offsets sum to %d, want 330", sum)
	}
}

// TestCloudEventRoundTrip writes a CloudEvent into a producer message with the
// kafka_sarama binding and reads it back from a consumer message.
func TestCloudEventRoundTrip(t *testing.T) {
	k := startKafka(t, 3, "transactions", "fraud")
	cfg := mustConfig(t, "test", "")

	ev := cloudevents.New()
	ev.SetID("tx-42")
	ev.SetType("fintrans.transaction")
	ev.SetSource("/generator")
	ev.SetTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	ev.SetExtension("partitionkey", "acct-7")
	if err := ev.SetData("application/json", map[string]any{"from": "acct-7", "to": "acct-9", "amount": "12.34"}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pm := sarama.ProducerMessage{Topic: "fraud"}
	if err := kafka_sarama.WriteProducerMessage(ctx, binding.ToMessage(&ev), &pm); err != nil {
		t.Fatal(err)
	}
	if pm.Key == nil {
		t.Fatal("WriteProducerMessage did not set the key from partitionkey")
	}
	p, err := sarama.NewSyncProducer(k.Brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	part, off, err := p.SendMessage(&pm)
	p.Close()
	if err != nil {
		t.Fatal(err)
	}

	c, err := sarama.NewConsumer(k.Brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition("fraud", part, off)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var cm *sarama.ConsumerMessage
	select {
	case cm = <-pc.Messages():
	case <-ctx.Done():
		t.Fatal("timed out waiting for the event")
	}
	if string(cm.Key) != "acct-7" {
		t.Errorf("record key = %q, want acct-7", cm.Key)
	}

	got, err := binding.ToEvent(ctx, kafka_sarama.NewMessageFromConsumerMessage(cm))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != "tx-42" || got.Type() != "fintrans.transaction" || got.Source() != "/generator" {
		t.Errorf("attributes: %v", got)
	}
	if pk, _ := got.Extensions()["partitionkey"].(string); pk != "acct-7" {
		t.Errorf("partitionkey = %#v", got.Extensions()["partitionkey"])
	}
	if !got.Time().Equal(ev.Time()) {
		t.Errorf("time = %v, want %v", got.Time(), ev.Time())
	}
	if string(got.Data()) != string(ev.Data()) || got.DataContentType() != "application/json" {
		t.Errorf("data = %s (%s), want %s", got.Data(), got.DataContentType(), ev.Data())
	}
}

func TestEnsureTopics(t *testing.T) {
	k := startKafka(t, 3, "transactions", "fraud")
	cfg := mustConfig(t, "admin", "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// New topics are created, seeded ones are left alone; replication 0
	// means min(3, brokers) = 1 here.
	if err := kafka.EnsureTopics(ctx, k.Brokers, cfg, 4, 0, "transactions", "transactions.dlq", "alerts"); err != nil {
		t.Fatal(err)
	}
	// Idempotent.
	if err := kafka.EnsureTopics(ctx, k.Brokers, cfg, 4, 1, "transactions.dlq"); err != nil {
		t.Fatal(err)
	}

	client, err := sarama.NewClient(k.Brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for topic, want := range map[string]int{"transactions": 3, "transactions.dlq": 4, "alerts": 4} {
		ps, err := client.Partitions(topic)
		if err != nil || len(ps) != want {
			t.Errorf("%s: %d partitions (err %v), want %d", topic, len(ps), err, want)
		}
	}

	// More replicas than brokers is refused by the cluster.
	err = kafka.EnsureTopics(ctx, k.Brokers, cfg, 1, 3, "over-replicated")
	if !errors.Is(err, sarama.ErrInvalidReplicationFactor) {
		t.Errorf("replication 3 on 1 broker: err = %v", err)
	}
	if err := kafka.EnsureTopics(ctx, k.Brokers, cfg, 0, 1, "zero"); err == nil {
		t.Error("0 partitions accepted")
	}
}

func TestWaitReady(t *testing.T) {
	k := startKafka(t, 1, "transactions")
	cfg := mustConfig(t, "test", "")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := kafka.WaitReady(ctx, k.Brokers, cfg); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("WaitReady took %v against a running cluster", d)
	}

	// A port nothing listens on: refused until the context ends.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel2()
	start = time.Now()
	err = kafka.WaitReady(ctx2, []string{dead}, cfg)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("WaitReady returned %v after its context ended", d-700*time.Millisecond)
	}
	t.Logf("closed port: %v", err)
}

// A consumer that takes a partition's records in batches some 300 ms apart
// (consumer.Consumer under a backlog: up to CONSUMER_MAX_BATCH records a
// batch, 8 partitions sharing Redis) keeps the partition in its broker's
// fetches. Past MaxProcessingTime with the partition's buffer full, sarama
// drops it and subscribes it again in rounds 100 ms apart: with its 100 ms
// default every backlog ended with records waiting 100 ms in no fetch.
func TestSlowBatchesKeepTheirFetch(t *testing.T) {
	logs := &syncbuf.Buffer{}
	prev := sarama.Logger
	sarama.Logger = log.New(logs, "", 0)
	t.Cleanup(func() { sarama.Logger = prev })

	k := startKafka(t, 1, "slow")
	cfg := mustConfig(t, "consumer", "")
	batch := cfg.ChannelBufferSize
	n := 3 * batch
	produce(t, k.Brokers, cfg, "slow", 0, n, 1)
	c, err := sarama.NewConsumer(k.Brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := c.ConsumePartition("slow", 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	for got := 0; got < n; {
		for i := 0; i < batch && got < n; i++ {
			select {
			case <-pc.Messages():
				got++
			case <-time.After(10 * time.Second):
				t.Fatalf("%d of %d records in 10 s", got, n)
			}
		}
		time.Sleep(300 * time.Millisecond) // the batch's work
	}
	pc.Close()
	c.Close()
	if s := logs.String(); strings.Contains(s, "abandoned subscription") {
		t.Errorf("sarama dropped the partition from its fetches (MaxProcessingTime %s):\n%s", cfg.Consumer.MaxProcessingTime, s)
	}
}
