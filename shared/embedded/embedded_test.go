package embedded_test

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
	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/embedded"
	"github.com/fintrans/fintrans/shared/kafka"
)

func TestStartKafkaSeedsTopics(t *testing.T) {
	k, err := embedded.StartKafka(3, "transactions", "fraud")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if len(k.Brokers) != 1 || !strings.HasPrefix(k.Brokers[0], "127.0.0.1:") {
		t.Fatalf("Brokers = %v, want one loopback address", k.Brokers)
	}

	cfg, err := kafka.Config("test", "")
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

func TestStartKafkaWithFixedPortsAndBrokers(t *testing.T) {
	port := freePort(t)
	k, err := embedded.StartKafkaWith(embedded.KafkaOptions{Ports: []int{port}, Partitions: 2}, "t")
	if err != nil {
		t.Fatal(err)
	}
	if want := "127.0.0.1:" + strconv.Itoa(port); len(k.Brokers) != 1 || k.Brokers[0] != want {
		t.Errorf("Brokers = %v, want [%s]", k.Brokers, want)
	}
	k.Close()

	// Three brokers: partition leaders and the group coordinator are spread
	// over them, and a produce/consume-group round trip still works.
	k3, err := embedded.StartKafkaWith(embedded.KafkaOptions{Brokers: 3, Partitions: 3}, "transactions")
	if err != nil {
		t.Fatal(err)
	}
	defer k3.Close()
	if len(k3.Brokers) != 3 {
		t.Fatalf("Brokers = %v, want 3", k3.Brokers)
	}
	cfg, err := kafka.Config("test", "2.8.0")
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

// fraudScript exercises the commands fintrans's detection script relies on.
const fraudScript = `
local total = redis.call('HINCRBY', KEYS[1], 'total', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'count', 1)
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
local inWindow = redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[4], '+inf')
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local hm = redis.call('HMGET', KEYS[1], 'total', 'count', 'missing')
local decoded = cjson.decode('{"ok":true}')
return {total, #inWindow, hm[1], hm[2], hm[3] == false and 'nil' or 'set', tostring(decoded.ok)}
`

func TestRedisEvalSha(t *testing.T) {
	r, err := embedded.StartRedis()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !strings.HasPrefix(r.URL, "redis://127.0.0.1:") {
		t.Fatalf("URL = %q", r.URL)
	}
	opts, err := redis.ParseURL(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	sha, err := rdb.ScriptLoad(ctx, fraudScript).Result()
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"pair:a:b", "win:a:b"}
	run := func(amount, score int, member string) []any {
		t.Helper()
		res, err := rdb.EvalSha(ctx, sha, keys, amount, score, member, 1000, 60000).Result()
		if err != nil {
			t.Fatal(err)
		}
		return res.([]any)
	}
	run(700, 1000, "tx1")
	run(300, 500, "tx0") // out of the window (score < 1000)
	got := run(250, 2000, "tx2")
	want := []any{int64(1250), int64(2), "1250", "3", "nil", "true"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("EVALSHA = %#v, want %#v", got, want)
	}
	if ttl := rdb.PTTL(ctx, keys[0]).Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("PTTL = %v, want (0, 1m]", ttl)
	}

	// Unknown script: NOSCRIPT, as with a real server (go-redis's Script
	// helper relies on it to fall back to EVAL).
	if err := rdb.EvalSha(ctx, strings.Repeat("0", 40), keys).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOSCRIPT") {
		t.Errorf("EVALSHA of unknown sha: %v", err)
	}

	// TTLs follow the wall clock.
	if err := rdb.Set(ctx, "short", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	rdb.PExpire(ctx, "short", 50*time.Millisecond)
	time.Sleep(120 * time.Millisecond)
	if n := rdb.Exists(ctx, "short").Val(); n != 0 {
		t.Error("key with a 50ms TTL still exists after 120ms")
	}

	r.Close()
	r.Close() // idempotent
	if c, err := net.DialTimeout("tcp", r.Addr, time.Second); err == nil {
		c.Close()
		t.Error("redis still listening after Close")
	}
}
