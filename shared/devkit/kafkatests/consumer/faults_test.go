package consumer_test

// Faults on the Kafka consumer path (SPEC §3, §4): Redis killed and
// restarted mid-stream, Redis down for ten seconds, a failing sink, a Kafka
// that comes up late or goes away. Each test holds the consumer to: every
// record processed, nothing committed before it is durable, the alerts in
// "fraud" (distinct ids) equal to the Flink reference, and Redis's counted
// state showing every distinct transfer counted exactly once.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	ce "github.com/cloudevents/sdk-go/v2/event"
	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/app"
	"github.com/fintrans/fintrans/shared/codec/cloudevent"
	"github.com/fintrans/fintrans/shared/codec/kafkarecord"
	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/consumer"
	"github.com/fintrans/fintrans/shared/detect"
	"github.com/fintrans/fintrans/shared/devkit/embeddedkafka"
	"github.com/fintrans/fintrans/shared/generator"
	"github.com/fintrans/fintrans/shared/kafka"
	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/redistest"
	"github.com/fintrans/fintrans/shared/sink"
	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/window"
	"github.com/fintrans/fintrans/shared/window/flinkref"
	"github.com/fintrans/fintrans/shared/window/windowtest"
)

const faultPartitions = 3

var faultWindow = window.Config{
	Threshold:       money.Cents(10000_00),
	Size:            10 * time.Minute,
	Slide:           2 * time.Minute,
	Lateness:        time.Hour,
	MaxTransactions: 10,
	TTL:             24 * time.Hour,
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// faultStream makes n transfers over pairs pairs within 30 minutes (well
// inside the allowed lateness), shuffled, as transfers and as events.
func faultStream(seed uint64, n, pairs int, prefix string) ([]transfer.Transfer, []ce.Event) {
	rng := rand.New(rand.NewPCG(seed, 99))
	base := time.Date(2017, 7, 23, 1, 0, 0, 0, time.UTC)
	ts := make([]transfer.Transfer, n)
	evs := make([]ce.Event, n)
	for i := range ts {
		p := rng.IntN(pairs)
		ts[i] = transfer.Transfer{
			Source: cloudevent.GeneratorSource, ID: prefix + strconv.Itoa(i),
			Time: base.Add(time.Duration(rng.Int64N(int64(30 * time.Minute)))).Truncate(time.Second),
			From: "f" + strconv.Itoa(p), To: "t" + strconv.Itoa(p%7),
			Amount: money.Cents(1 + rng.Int64N(4000_00)),
		}
		tr := ts[i]
		evs[i] = transferEvent(tr.ID, tr.Time, tr.From, tr.To, int64(tr.Amount))
	}
	return ts, evs
}

// rig is a kfake cluster, a real redis-server (AOF, fsync always) and a
// consumer group feeding a Detector.
type rig struct {
	t     *testing.T
	k     *embeddedkafka.Kafka
	kc    *sarama.Config
	srv   *redistest.Server
	rdb   *redis.Client
	st    *window.Store
	in    *sink.Kafka
	admin sarama.ClusterAdmin
	group string

	c      *consumer.Consumer
	cancel context.CancelFunc
	done   chan error
}

// dialNoise keeps go-redis's "failed to dial" lines, expected by the
// Redis-down tests, out of the output; other go-redis logs still show.
type dialNoise struct{}

func (dialNoise) Printf(_ context.Context, format string, v ...any) {
	if msg := fmt.Sprintf(format, v...); !strings.Contains(msg, "failed to dial") {
		fmt.Fprintln(os.Stderr, "redis:", msg)
	}
}

var quietDials sync.Once

func newRig(t *testing.T) *rig {
	t.Helper()
	quietDials.Do(func() { redis.SetLogger(dialNoise{}) })
	k, err := embeddedkafka.Start(faultPartitions, "transactions", "fraud", "transactions.dlq")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	srv := redistest.Start(t, redistest.WithAppendOnly())
	r := &rig{t: t, k: k, srv: srv, rdb: srv.Client(t), group: "faults-" + strings.ReplaceAll(t.Name(), "/", "-")}
	if r.kc, err = kafka.Config("test", "", kafka.Security{}); err != nil {
		t.Fatal(err)
	}
	if r.st, err = window.New(r.rdb, faultWindow); err != nil {
		t.Fatal(err)
	}
	if r.in, err = sink.NewKafka(k.Brokers, r.kc, "transactions"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.in.Close() })
	if r.admin, err = sarama.NewClusterAdmin(k.Brokers, r.kc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.admin.Close() })
	return r
}

// fraudSink is a Kafka sink to "fraud".
func (r *rig) fraudSink() sink.Sink {
	s, err := sink.NewKafka(r.k.Brokers, r.kc, "fraud")
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { s.Close() })
	return s
}

// start runs a consumer until stop (or the test's end).
func (r *rig) start(out sink.Sink, maxBatch int) {
	group, err := sarama.NewConsumerGroup(r.k.Brokers, r.group, r.kc)
	if err != nil {
		r.t.Fatal(err)
	}
	r.c = &consumer.Consumer{Group: group, Topic: "transactions",
		Detector: &detect.Detector{Store: r.st, Sink: out, Log: quiet},
		MaxBatch: maxBatch, Log: quiet}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- r.c.Run(ctx) }()
	r.t.Cleanup(r.stop)
}

func (r *rig) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		r.t.Error("consumer did not stop within 20 s")
	}
	r.c.Group.Close()
	r.cancel = nil
}

func (r *rig) produce(evs []ce.Event) {
	r.t.Helper()
	if err := r.in.Send(context.Background(), evs); err != nil {
		r.t.Fatal(err)
	}
}

// produceSlowly sends evs in chunks of 200 every 100 ms in the background.
func (r *rig) produceSlowly(evs []ce.Event) <-chan error {
	errc := make(chan error, 1)
	go func() {
		for len(evs) > 0 {
			n := min(200, len(evs))
			if err := r.in.Send(context.Background(), evs[:n]); err != nil {
				errc <- err
				return
			}
			evs = evs[n:]
			time.Sleep(100 * time.Millisecond)
		}
		errc <- nil
	}()
	return errc
}

// committed is the sum of the group's committed offsets (0 before any commit).
func (r *rig) committed() int64 {
	parts := make([]int32, faultPartitions)
	for i := range parts {
		parts[i] = int32(i)
	}
	offs, err := r.admin.ListConsumerGroupOffsets(r.group, map[string][]int32{"transactions": parts})
	if err != nil {
		return 0 // kfake: GROUP_ID_NOT_FOUND before the first commit
	}
	var sum int64
	for _, b := range offs.Blocks["transactions"] {
		if b.Err == sarama.ErrNoError && b.Offset > 0 {
			sum += b.Offset
		}
	}
	return sum
}

// waitFor polls cond every 50 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *rig) waitAllCommitted(n int, timeout time.Duration) {
	r.t.Helper()
	waitFor(r.t, timeout, fmt.Sprintf("%d records committed", n), func() bool { return r.committed() == int64(n) })
	if got := r.c.Processed.Load(); got < int64(n) {
		r.t.Fatalf("committed %d records but processed only %d", n, got)
	}
}

// checkAlerts compares the distinct alert ids in "fraud" with the reference.
func (r *rig) checkAlerts(brokers []string, ts []transfer.Transfer) int {
	r.t.Helper()
	want := flinkref.Alerts(ts, faultWindow.Threshold, faultWindow.Size, faultWindow.Slide)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	recs, err := kafka.ReadAll(ctx, brokers, r.kc, "fraud")
	if err != nil {
		r.t.Fatal(err)
	}
	got := map[string]int{}
	for _, m := range recs {
		for _, h := range m.Headers {
			if string(h.Key) == "ce_id" {
				got[string(h.Value)]++
			}
		}
	}
	var missing, extra int
	for k := range want {
		if got[k.AlertID()] == 0 {
			missing++
		}
	}
	wantIDs := map[string]bool{}
	for k := range want {
		wantIDs[k.AlertID()] = true
	}
	for id := range got {
		if !wantIDs[id] {
			extra++
		}
	}
	if missing > 0 || extra > 0 || len(want) == 0 {
		r.t.Fatalf("alerts in fraud differ from the Flink reference: %d distinct, %d reference, %d missing, %d extra", len(got), len(want), missing, extra)
	}
	return len(want)
}

// countedTransfers is the number of transfers Redis holds as counted: the
// sum of every pair's sequence number.
func countedTransfers(t *testing.T, rdb redis.UniversalClient) int64 {
	t.Helper()
	ctx := context.Background()
	var n int64
	iter := rdb.Scan(ctx, 0, "ft:{*}:h", 500).Iterator()
	for iter.Next(ctx) {
		v, err := rdb.HGet(ctx, iter.Val(), "n").Int64()
		if err != nil {
			t.Fatal(err)
		}
		n += v
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// checkCountedOnce holds Redis's state to the distinct transfers (see
// windowtest.CountedOnce), and no other transfer is counted in any pair.
func checkCountedOnce(t *testing.T, rdb redis.UniversalClient, st *window.Store, ts []transfer.Transfer) {
	t.Helper()
	windowtest.CountedOnce(t, st, ts)
	seen := map[[2]string]bool{}
	for _, tr := range ts {
		seen[[2]string{tr.Source, tr.ID}] = true
	}
	if got := countedTransfers(t, rdb); got != int64(len(seen)) {
		t.Errorf("Redis holds %d counted transfers over all pairs, want %d", got, len(seen))
	}
}

// infoField reads one "name:value" line of INFO section.
func infoField(t *testing.T, rdb *redis.Client, section, name string) string {
	t.Helper()
	info, err := rdb.Info(context.Background(), section).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && k == name {
			return v
		}
	}
	return ""
}

// TestRedisKilledAndRestartedMidStream: Redis (appendonly yes, appendfsync
// always) is killed with SIGKILL while the consumer works through a stream
// and restarted from its AOF. Every record is processed, nothing is counted
// twice or lost, the alerts equal the reference, and the restarted Redis got
// the script again through the NOSCRIPT path.
func TestRedisKilledAndRestartedMidStream(t *testing.T) {
	start := time.Now()
	r := newRig(t)
	ts, evs := faultStream(1, 6000, 200, "kill-")
	r.start(r.fraudSink(), 50)

	// A backlog, so that the kill lands while batches are in flight.
	r.produce(evs[:3000])
	waitFor(t, 20*time.Second, "500 records processed", func() bool { return r.c.Processed.Load() >= 500 })
	atKill := r.c.Processed.Load()
	r.srv.Kill()
	killed := time.Now()
	r.produce(evs[3000:4000]) // arrive while Redis is down
	// Down until go-redis's own retries gave up and the consumer saw the
	// fault (it then retries the batch itself, with backoff).
	waitFor(t, 20*time.Second, "the consumer to see Redis down", func() bool { return r.c.Faults.Load() > 0 })
	faultsWhileDown, down := r.c.Faults.Load(), time.Since(killed)
	r.srv.Restart(t)
	if ok, err := r.rdb.ScriptExists(context.Background(), window.Script.Hash()).Result(); err != nil || ok[0] {
		// The consumer may already have reloaded it; that is fine too.
		t.Logf("script present right after restart: %v %v", ok, err)
	}
	r.produce(evs[4000:])
	r.waitAllCommitted(len(evs), 30*time.Second)
	r.stop()
	if atKill >= 3000 || faultsWhileDown == 0 {
		t.Fatalf("Redis was not killed mid-stream: %d of the 3000 backlog processed, %d faults while down", atKill, faultsWhileDown)
	}

	n := r.checkAlerts(r.k.Brokers, ts)
	checkCountedOnce(t, r.rdb, r.st, ts)
	// The restarted server lost its script cache: the consumer hit NOSCRIPT
	// and loaded the script again (counters since the restart).
	if v := infoField(t, r.rdb, "errorstats", "errorstat_NOSCRIPT"); !strings.HasPrefix(v, "count=") || v == "count=0" {
		t.Errorf("no NOSCRIPT error since the restart (%q): the script cache was not lost or not reloaded", v)
	}
	if v := infoField(t, r.rdb, "commandstats", "cmdstat_script|load"); !strings.HasPrefix(v, "calls=") {
		t.Errorf("SCRIPT LOAD not called since the restart (%q)", v)
	}
	t.Logf("killed at %d/%d processed, down %v; %d faults retried; %d alerts; %v", atKill, len(evs), down.Round(time.Millisecond), r.c.Faults.Load(), n, time.Since(start).Round(time.Millisecond))
}

// TestRedisDownTenSeconds: Redis is stopped for ten seconds while records keep
// arriving. During the outage the group's committed offsets and the
// processed count do not move and the HTTP face answers 503 with
// Retry-After; after the restart everything is processed exactly once in
// effect.
func TestRedisDownTenSeconds(t *testing.T) {
	start := time.Now()
	r := newRig(t)
	ts, evs := faultStream(2, 6000, 200, "down-")
	fraud := r.fraudSink()
	r.start(fraud, 50)
	web := httptest.NewServer(&detect.Handler{Detector: r.c.Detector, MaxBodyBytes: 1 << 20, MaxBatch: 100})
	t.Cleanup(web.Close)
	// One transfer over the threshold on its own, sent over HTTP.
	httpTransfer := transfer.Transfer{Source: "/http", ID: "web-1", Time: time.Date(2017, 7, 23, 1, 3, 0, 0, time.UTC), From: "web-a", To: "web-b", Amount: 12000_00}
	post := func() (int, string, string) {
		req, _ := http.NewRequest(http.MethodPost, web.URL, strings.NewReader(`{"from":"web-a","to":"web-b","amount":"12000.00"}`))
		for k, v := range map[string]string{"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Type": cloudevent.TransactionType,
			"Ce-Id": httpTransfer.ID, "Ce-Source": httpTransfer.Source, "Ce-Time": httpTransfer.Time.Format(time.RFC3339)} {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("Retry-After"), string(b)
	}

	first := r.produceSlowly(evs[:3000])
	waitFor(t, 20*time.Second, "1000 records processed", func() bool { return r.c.Processed.Load() >= 1000 })
	stopped := time.Now()
	r.srv.Stop()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	r.produce(evs[3000:]) // the rest arrives during the outage

	// Offsets marked before the outage may still be auto-committed within
	// the first second; after that nothing may move.
	time.Sleep(1500 * time.Millisecond)
	baseCommitted, baseProcessed := r.committed(), r.c.Processed.Load()
	code, retry, body := post()
	if (code != http.StatusServiceUnavailable && code != http.StatusTooManyRequests) || retry == "" {
		t.Fatalf("detect answered %d (Retry-After %q) with Redis down: %s", code, retry, body)
	}
	samples := 0
	for time.Since(stopped) < 10*time.Second {
		if c, p := r.committed(), r.c.Processed.Load(); c != baseCommitted || p != baseProcessed {
			t.Fatalf("during the outage: committed %d -> %d, processed %d -> %d", baseCommitted, c, baseProcessed, p)
		}
		samples++
		time.Sleep(250 * time.Millisecond)
	}
	if baseCommitted >= int64(len(evs)) || samples < 10 {
		t.Fatalf("outage check is vacuous: committed %d of %d, %d samples", baseCommitted, len(evs), samples)
	}
	faultsDuringOutage := r.c.Faults.Load()
	r.srv.Restart(t)

	// The transport retries the refused request: now it counts and alerts.
	waitFor(t, 10*time.Second, "detect to answer 200 after the restart", func() bool {
		code, _, _ := post()
		return code == http.StatusOK
	})
	r.waitAllCommitted(len(evs), 30*time.Second)
	r.stop()

	all := append(append([]transfer.Transfer{}, ts...), httpTransfer)
	n := r.checkAlerts(r.k.Brokers, all)
	checkCountedOnce(t, r.rdb, r.st, all)
	if faultsDuringOutage == 0 {
		t.Error("the consumer saw no fault while Redis was down")
	}
	t.Logf("outage at %d committed / %d processed; %d faults retried during it; %d alerts; %v",
		baseCommitted, baseProcessed, faultsDuringOutage, n, time.Since(start).Round(time.Millisecond))
}

// gateSink fails every Send while down is set.
type gateSink struct {
	sink.Sink
	down  atomic.Bool
	calls atomic.Int64
}

func (g *gateSink) Send(ctx context.Context, es []ce.Event) error {
	g.calls.Add(1)
	if g.down.Load() {
		return errors.New("sink: down")
	}
	return g.Sink.Send(ctx, es)
}

// TestFailingSinkBoundsInFlightWork: with the sink failing, 20000 records
// wait in Kafka; the consumer neither acknowledges nor applies more than two
// batches per partition ahead (the one it delivers and the next, applied
// meanwhile: Redis's counted transfers stay within 2 x partitions x MaxBatch
// of the processed count, nothing moves for seconds),
// its heap stays bounded, and once the sink is back every record is
// processed and every alert arrives.
func TestFailingSinkBoundsInFlightWork(t *testing.T) {
	start := time.Now()
	const n, maxBatch = 20000, 500
	r := newRig(t)
	ts, evs := faultStream(3, n, 1000, "sink-")
	for i := 0; i < n; i += 2000 {
		r.produce(evs[i:min(i+2000, n)])
	}
	gate := &gateSink{Sink: r.fraudSink()}
	gate.down.Store(true)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	r.start(gate, maxBatch)
	// Wait until the consumer is stuck on the sink: the sink was asked and
	// the counts did not move for two seconds.
	var processed, counted int64
	stableSince := time.Now()
	waitFor(t, 30*time.Second, "the consumer to settle on the failing sink", func() bool {
		p, c := r.c.Processed.Load(), countedTransfers(t, r.rdb)
		if p != processed || c != counted {
			processed, counted, stableSince = p, c, time.Now()
		}
		return gate.calls.Load() >= faultPartitions && time.Since(stableSince) > 2*time.Second
	})
	if processed >= n {
		t.Fatalf("everything was processed with the sink down (%d)", processed)
	}
	if inFlight := counted - processed; inFlight < 0 || inFlight > 2*faultPartitions*maxBatch {
		t.Fatalf("%d transfers applied to Redis but not acknowledged; at most %d (two batches per partition) may be", inFlight, 2*faultPartitions*maxBatch)
	} else if inFlight <= faultPartitions*maxBatch {
		t.Fatalf("%d transfers applied to Redis but not acknowledged: no partition applied its next batch while the sink held the one before", inFlight)
	}
	if c := r.committed(); c > processed {
		t.Fatalf("committed %d records but only %d were processed", c, processed)
	}
	// Three more seconds: the consumer keeps retrying the same batches and
	// reads nothing further into Redis.
	calls := gate.calls.Load()
	time.Sleep(3 * time.Second)
	if p, c := r.c.Processed.Load(), countedTransfers(t, r.rdb); p != processed || c != counted {
		t.Fatalf("with the sink down, processed %d -> %d and counted %d -> %d", processed, p, counted, c)
	}
	if gate.calls.Load() <= calls {
		t.Fatal("the consumer stopped retrying the sink")
	}
	runtime.GC()
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	growth := int64(during.HeapInuse) - int64(before.HeapInuse)
	if growth > 50<<20 {
		t.Fatalf("heap in use grew by %d MB while %d records waited", growth>>20, n-processed)
	}

	gate.down.Store(false)
	r.waitAllCommitted(n, 35*time.Second)
	r.stop()
	alerts := r.checkAlerts(r.k.Brokers, ts)
	checkCountedOnce(t, r.rdb, r.st, ts)
	t.Logf("stuck at %d processed, %d counted (in flight %d), heap %+d KB, %d sink calls while down; %d alerts; %v",
		processed, counted, counted-processed, growth>>10, calls, alerts, time.Since(start).Round(time.Millisecond))
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// kafkaRig is a broker on a fixed port that can go away and come back (as a
// new, empty kfake cluster: kfake keeps its data in memory), a real Redis,
// and the configuration pointing at both.
type kafkaRig struct {
	t    *testing.T
	port int
	cfg  config.Config
	kc   *sarama.Config
	mu   sync.Mutex
	k    *embeddedkafka.Kafka
}

func newKafkaRig(t *testing.T, group string) *kafkaRig {
	t.Helper()
	port := freePort(t)
	srv := redistest.Start(t, redistest.WithAppendOnly())
	cfg, err := config.FromMap(map[string]string{"KAFKA_BROKERS": "127.0.0.1:" + strconv.Itoa(port), "REDIS_URL": srv.URL,
		"MAX_BATCH": "100", "CONSUMER_GROUP": group, "GENERATOR_TRANSFERS": "300", "GENERATOR_ACCOUNTS": "12", "GENERATOR_FRAUD_RATE": "0.2"})
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kafka.Config("test", "", kafka.Security{})
	if err != nil {
		t.Fatal(err)
	}
	r := &kafkaRig{t: t, port: port, cfg: cfg, kc: kc}
	t.Cleanup(r.stopBroker)
	return r
}

func (r *kafkaRig) startBroker() error {
	k, err := embeddedkafka.StartWith(embeddedkafka.Options{Ports: []int{r.port}, Partitions: faultPartitions},
		r.cfg.TransactionsTopic, r.cfg.FraudTopic, r.cfg.DLQTopic)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.k = k
	r.mu.Unlock()
	return nil
}

func (r *kafkaRig) stopBroker() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.k.Close()
	r.k = nil
}

// consumer wires detect's consumer with app.New("consume") (which waits for Kafka)
// and runs it until the test ends.
func (r *kafkaRig) consumer(ctx context.Context) (*consumer.Consumer, error) {
	f, err := app.New(ctx, "consume", r.cfg, quiet)
	if err != nil {
		return nil, err
	}
	c, closeConsumer := f.Consumer, f.Close
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	r.t.Cleanup(func() {
		stop()
		<-done
		closeConsumer()
	})
	return c, nil
}

// generator makes a seeded generator with a settable clock, writing to the
// transactions topic through its own producer.
func (r *kafkaRig) generator(retries int) (*generator.Generator, func(time.Duration)) {
	pc := *r.kc
	pc.Producer.Retry.Max = retries
	pc.Metadata.Retry.Max = retries
	prod, err := sarama.NewSyncProducer(r.cfg.KafkaBrokers, &pc)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { prod.Close() })
	var mu sync.Mutex
	clock := time.Date(2017, 7, 23, 1, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	return generator.New(r.cfg.Generator(), sink.NewKafkaFromProducer(prod, r.cfg.TransactionsTopic), rand.New(rand.NewPCG(7, 7)), now), advance
}

// waitCommitted waits until the consumer committed n records and processed
// at least n.
func (r *kafkaRig) waitCommitted(c *consumer.Consumer, n int, timeout time.Duration) {
	r.t.Helper()
	admin, err := sarama.NewClusterAdmin(r.cfg.KafkaBrokers, r.kc)
	if err != nil {
		r.t.Fatal(err)
	}
	defer admin.Close()
	rg := &rig{t: r.t, kc: r.kc, admin: admin, group: r.cfg.ConsumerGroup, c: c}
	rg.waitAllCommitted(n, timeout)
}

// TestKafkaComesUpLate: detect's consumer is wired (app.New("consume"), which
// waits for Kafka with backoff) against a broker that comes up two seconds
// later; then it processes everything the generator sends, and the alerts
// equal the reference.
func TestKafkaComesUpLate(t *testing.T) {
	start := time.Now()
	r := newKafkaRig(t, "late")
	up := make(chan error, 1)
	go func() {
		time.Sleep(2 * time.Second)
		up <- r.startBroker()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := r.consumer(ctx)
	waited := time.Since(start)
	if err := <-up; err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatalf("consumer against a late broker: %v", err)
	}
	if waited < 2*time.Second {
		t.Fatalf("app.New(consume) returned after %v, before the broker was up", waited)
	}
	gen, advance := r.generator(r.kc.Producer.Retry.Max)
	var sent []transfer.Transfer
	for i := 0; i < 3; i++ {
		p, err := gen.Tick(context.Background())
		if err != nil || p.Sent != len(p.Transfers) {
			t.Fatalf("tick %d: sent %d of %d: %v", i, p.Sent, len(p.Transfers), err)
		}
		sent = append(sent, p.Transfers...)
		advance(time.Minute)
	}
	r.waitCommitted(c, len(sent), 30*time.Second)
	n := checkAlertsIn(t, r.cfg, r.kc, sent, "late start")
	t.Logf("app.New(consume) waited %v for the broker; %d transfers, %d alerts; %v", waited.Round(time.Millisecond), len(sent), n, time.Since(start).Round(time.Millisecond))
}

// TestKafkaBrokerReplaced: the broker goes away under a running generator
// and consumer. A generator tick fails with an error and reports nothing
// sent; a new broker comes up on the same port, the next ticks succeed, and
// the consumer, which kept retrying on its own, processes them.
//
// kfake keeps its data in memory, so the new broker is an empty cluster:
// the records and offsets of before are gone (a real Kafka restart keeps
// them). The test asserts only what the API promises across that: failed
// ticks say so, what successful ticks sent is in the topic, and the consumer
// resumes without help.
func TestKafkaBrokerReplaced(t *testing.T) {
	start := time.Now()
	r := newKafkaRig(t, "replaced")
	if err := r.startBroker(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := r.consumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// With the product's retries (5 producer retries, each refreshing
	// metadata with its own 5 retries) a tick against a dead broker takes
	// about 20 s to fail; one retry keeps this test short and changes
	// nothing of what it checks.
	gen, advance := r.generator(1)
	p, err := gen.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r.waitCommitted(c, len(p.Transfers), 30*time.Second)
	checkAlertsIn(t, r.cfg, r.kc, p.Transfers, "before the broker went away")

	// The broker goes away: a tick fails and says so.
	r.stopBroker()
	advance(2 * time.Hour) // later windows, none shared with before
	p, err = gen.Tick(context.Background())
	if err == nil || p.Sent != 0 {
		t.Fatalf("tick with the broker down: sent %d, err %v", p.Sent, err)
	}
	downTick := time.Since(start)

	// A new broker on the same port; ticks succeed again (the producer
	// reconnects on its own; allow it a few ticks). A tick that fails may
	// have delivered part of its batch (at least once): it says Sent 0 and
	// returns the batch, and its records may or may not be in the topic.
	if err := r.startBroker(); err != nil {
		t.Fatal(err)
	}
	var after []transfer.Transfer
	maybe := map[string]bool{}
	failed := 0
	for ok := 0; ok < 2; {
		p, err := gen.Tick(context.Background())
		if err != nil {
			if p.Sent != 0 {
				t.Fatalf("a failed tick reported %d sent", p.Sent)
			}
			for _, tr := range p.Transfers {
				maybe[tr.ID] = true
			}
			if failed++; failed > 5 {
				t.Fatalf("ticks keep failing after the broker came back: %v", err)
			}
			continue
		}
		after = append(after, p.Transfers...)
		ok++
	}
	// Every transfer of a successful tick is in the topic; anything else
	// there comes from a tick that reported failure. The consumer processes
	// all of it.
	rctx, rcancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer rcancel()
	recs, err := kafka.ReadAll(rctx, r.cfg.KafkaBrokers, r.kc, r.cfg.TransactionsTopic)
	if err != nil {
		t.Fatal(err)
	}
	inTopic := map[string]bool{}
	var topicTransfers []transfer.Transfer
	for _, m := range recs {
		it := new(kafkarecord.Decoder).Decode(m)
		if it.Err != nil {
			t.Fatalf("bad record in the topic: %v", it.Err)
		}
		inTopic[it.Transfer.ID] = true
		topicTransfers = append(topicTransfers, it.Transfer)
	}
	sent := map[string]bool{}
	for _, tr := range after {
		sent[tr.ID] = true
		if !inTopic[tr.ID] {
			t.Fatalf("transfer %s of a successful tick is not in the topic", tr.ID)
		}
	}
	for id := range inTopic {
		if !sent[id] && !maybe[id] {
			t.Fatalf("transfer %s in the topic comes from no tick after the restart", id)
		}
	}
	r.waitCommitted(c, len(recs), 30*time.Second)
	n := checkAlertsIn(t, r.cfg, r.kc, topicTransfers, "after the broker came back")
	t.Logf("tick with the broker down failed at %v; after the restart %d failed ticks (%d of their records delivered anyway), %d transfers sent, %d alerts; %v",
		downTick.Round(time.Millisecond), failed, len(recs)-len(after), len(after), n, time.Since(start).Round(time.Millisecond))
}

// checkAlertsIn compares the fraud topic's distinct ids with the reference
// of ts.
func checkAlertsIn(t *testing.T, cfg config.Config, kc *sarama.Config, ts []transfer.Transfer, when string) int {
	t.Helper()
	want := flinkref.Alerts(ts, cfg.Threshold, cfg.WindowSize, cfg.WindowSlide)
	wantIDs := map[string]bool{}
	for k := range want {
		wantIDs[k.AlertID()] = true
	}
	var got map[string]bool
	// The last batch's alerts are in the topic before its offset is
	// committed, but give ReadAll a moment on a fresh cluster.
	waitFor(t, 15*time.Second, "the fraud topic to be readable", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		recs, err := kafka.ReadAll(ctx, cfg.KafkaBrokers, kc, cfg.FraudTopic)
		if err != nil {
			return false
		}
		got = map[string]bool{}
		for _, m := range recs {
			for _, h := range m.Headers {
				if string(h.Key) == "ce_id" {
					got[string(h.Value)] = true
				}
			}
		}
		return true
	})
	var diff []string
	for id := range wantIDs {
		if !got[id] {
			diff = append(diff, "missing "+id)
		}
	}
	for id := range got {
		if !wantIDs[id] {
			diff = append(diff, "extra "+id)
		}
	}
	sort.Strings(diff)
	if len(diff) > 0 || len(want) == 0 {
		t.Fatalf("%s: alerts differ from the reference (%d): %v", when, len(want), diff)
	}
	return len(want)
}
