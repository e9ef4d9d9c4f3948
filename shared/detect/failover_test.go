package detect_test

// Redis Cluster failover under load (issue 15): nothing detect acknowledged
// is lost or counted twice, and detect serves again seconds after the
// promotion.
//
// 3 primaries with a replica each on loopback. A stream is posted to detect's
// HTTP handler in batches by two senders that retry every batch until it is
// answered 2xx, as a transport does. Mid-stream the replica of one primary is
// frozen (DEBUG SLEEP) until that primary, which hears no REPLCONF ACK,
// drops it (repl-timeout): from then on its writes reach no replica. The
// senders go on for a moment, then the primary is killed (SIGKILL); when the
// replica wakes it is promoted (cluster-replica-validity-factor 0: however
// stale). Afterwards the distinct alerts are exactly the reference's and
// every transfer is counted exactly once.
//
// The guarantee is REDIS_MIN_REPLICAS: detect answers 503 while the frozen
// replica confirms nothing, so the batches are sent again after the failover.
// FAILOVER_MIN_REPLICAS=0 runs the same test without it: the batches
// acknowledged between the drop and the kill then exist on the dead primary
// only, and the test fails (counts and alerts lost).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"
	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/detect"
	"github.com/fintrans/fintrans/shared/redisconn"
	"github.com/fintrans/fintrans/shared/redisproc"
	"github.com/fintrans/fintrans/shared/redistest"
	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/window"
	"github.com/fintrans/fintrans/shared/window/flinkref"
	"github.com/fintrans/fintrans/shared/window/windowtest"
)

// memSink accepts every alert.
type memSink struct {
	mu  sync.Mutex
	ids map[string]int
}

func (s *memSink) Send(_ context.Context, es []ce.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range es {
		s.ids[e.ID()]++
	}
	return nil
}

func (s *memSink) Close() error { return nil }

// batchBody is a CloudEvents batch (application/cloudevents-batch+json).
func batchBody(ts []transfer.Transfer) []byte {
	type data struct {
		From   string `json:"from"`
		To     string `json:"to"`
		Amount string `json:"amount"`
	}
	type ev struct {
		SpecVersion     string `json:"specversion"`
		Type            string `json:"type"`
		Source          string `json:"source"`
		ID              string `json:"id"`
		Time            string `json:"time"`
		DataContentType string `json:"datacontenttype"`
		Data            data   `json:"data"`
	}
	evs := make([]ev, len(ts))
	for i, t := range ts {
		evs[i] = ev{"1.0", "io.fintrans.transaction", t.Source, t.ID, t.Time.Format(time.RFC3339Nano),
			"application/json", data{t.From, t.To, t.Amount.String()}}
	}
	b, _ := json.Marshal(evs)
	return b
}

func nodeClient(t *testing.T, s *redistest.Server) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { c.Close() })
	return c
}

func waitFor(t *testing.T, what string, limit time.Duration, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not after %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func TestClusterFailoverLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("a failover takes some 20 s")
	}
	minReplicas := "auto" // resolves to 1: every primary has a replica
	if v := os.Getenv("FAILOVER_MIN_REPLICAS"); v != "" {
		minReplicas = v
	}
	begin := time.Now()
	cl := redistest.StartClusterWithReplicas(t, 3, 1, redistest.WithArgs(
		"--enable-debug-command", "yes",
		"--cluster-replica-validity-factor", "0", // a lagging replica may still be promoted
		"--repl-diskless-sync-delay", "0",
		"--repl-ping-replica-period", "1",
		"--repl-timeout", "2", // a primary drops a replica silent for 2 s
	))
	cfg, err := config.FromMap(map[string]string{"REDIS_URL": cl.URL, "REDIS_MIN_REPLICAS": minReplicas,
		"REDIS_REPLICA_TIMEOUT": "300ms", "ALERT_MAX_TRANSACTIONS": "10"})
	if err != nil {
		t.Fatal(err)
	}
	rdb, err := redisconn.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	wc := crashCfg
	wc.MinReplicas, wc.ReplicaTimeout = cfg.RedisMinReplicas, cfg.RedisReplicaTimeout
	st, err := window.New(rdb, wc)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster of 3+3 up in %v; REDIS_MIN_REPLICAS=%s resolved to %d", time.Since(begin).Round(time.Millisecond), minReplicas, st.MinReplicas())

	sk := &memSink{ids: map[string]int{}}
	d := &detect.Detector{Store: &window.Coalescer{Store: st}, Sink: sk, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	srv := httptest.NewServer(&detect.Handler{Detector: d, MaxBodyBytes: 1 << 20, MaxBatch: 1000})
	t.Cleanup(srv.Close)

	rng := rand.New(rand.NewPCG(15, 2017))
	ts := crashStream(rng, 3000, 60)
	want := flinkref.Alerts(ts, crashCfg.Threshold, crashCfg.Size, crashCfg.Slide)
	var bodies [][]byte
	for i := 0; i < len(ts); i += 10 {
		bodies = append(bodies, batchBody(ts[i:min(i+10, len(ts))]))
	}

	// The senders: each batch is posted until answered 2xx; a sender paces
	// itself (some 25 batches a second in all), so that the stream lasts
	// through the failover.
	var (
		next, acked, refused atomic.Int64
		mu                   sync.Mutex
		lastRefusal          time.Time
		firstAckAfter        = map[string]time.Time{} // phase -> first ack seen in it
		phase                atomic.Value
	)
	phase.Store("before")
	client := &http.Client{Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) {
					return
				}
				for {
					resp, err := client.Post(srv.URL, "application/cloudevents-batch+json", strings.NewReader(string(bodies[i])))
					code := 0
					if err == nil {
						code = resp.StatusCode
						resp.Body.Close()
					}
					if code/100 == 2 {
						acked.Add(1)
						mu.Lock()
						if p := phase.Load().(string); firstAckAfter[p].IsZero() {
							firstAckAfter[p] = time.Now()
						}
						mu.Unlock()
						time.Sleep(80 * time.Millisecond)
						break
					}
					if code != http.StatusServiceUnavailable {
						t.Errorf("batch %d: answer %d %v", i, code, err)
						return
					}
					refused.Add(1)
					mu.Lock()
					lastRefusal = time.Now()
					mu.Unlock()
					select {
					case <-stop:
						return
					case <-time.After(100 * time.Millisecond):
					}
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()

	// Mid-stream: freeze the replica of primary 0 until primary 0 drops it.
	waitFor(t, "an eighth of the stream acknowledged", 20*time.Second, func() bool { return acked.Load() >= int64(len(bodies)/8) })
	primary, replica := cl.Nodes[0], cl.ReplicasOf(0)[0]
	pc, rc := nodeClient(t, primary), nodeClient(t, replica)
	ctx := context.Background()
	const sleep = 9 * time.Second
	frozen := time.Now()
	go func() { _ = rc.Do(ctx, "DEBUG", "SLEEP", strconv.Itoa(int(sleep/time.Second))).Err() }()
	dropped := waitFor(t, "primary drops its frozen replica", 7*time.Second, func() bool {
		info, err := pc.Info(ctx, "replication").Result()
		return err == nil && redisproc.ParseInfo(info)["connected_slaves"] == "0"
	})
	a0, r0 := acked.Load(), refused.Load()
	phase.Store("dropped")
	// Let the senders run against a primary whose writes reach no replica.
	time.Sleep(1200 * time.Millisecond)
	a1, r1 := acked.Load(), refused.Load()
	primary.Kill()
	killed := time.Now()
	phase.Store("killed")
	t.Logf("replica frozen; dropped by its primary after %v; then %d batches acknowledged and %d answers 503 in 1.2 s; primary killed (SIGKILL)",
		dropped.Round(time.Millisecond), a1-a0, r1-r0)
	if a1 == int64(len(bodies)) {
		t.Fatalf("the stream ended before the kill: the test proves nothing")
	}

	// The replica wakes at the end of its sleep and is promoted.
	var promoted time.Time
	forced := false
	waitFor(t, "replica promoted", 25*time.Second, func() bool {
		role, err := rc.Do(ctx, "ROLE").Slice()
		if err == nil && len(role) > 0 && role[0] == "master" {
			promoted = time.Now()
			return true
		}
		if !forced && time.Since(frozen) > sleep+8*time.Second {
			forced = true // not promoted on its own yet: a loaded machine; force it
			_ = rc.Do(ctx, "CLUSTER", "FAILOVER", "TAKEOVER").Err()
		}
		return false
	})
	phase.Store("promoted")
	t.Logf("replica promoted %v after the kill (%v after it woke)%s", promoted.Sub(killed).Round(time.Millisecond),
		promoted.Sub(frozen.Add(sleep)).Round(time.Millisecond), map[bool]string{true: " by CLUSTER FAILOVER TAKEOVER", false: ""}[forced])

	waitFor(t, "every batch acknowledged", 30*time.Second, func() bool { return acked.Load() == int64(len(bodies)) })
	mu.Lock()
	recovery := lastRefusal.Sub(promoted)
	firstAck := firstAckAfter["promoted"]
	mu.Unlock()
	if recovery < 0 {
		recovery = 0
	}
	if firstAck.IsZero() {
		t.Fatalf("the stream ended before the promotion: the test proves nothing")
	}
	t.Logf("recovery: last 503 %v after the promotion, first 2xx %v after it; %d answers 503 in all; whole test %v",
		recovery.Round(time.Millisecond), firstAck.Sub(promoted).Round(time.Millisecond), refused.Load(), time.Since(begin).Round(time.Millisecond))
	if recovery > 5*time.Second {
		t.Errorf("detect answered 503 until %v after the promotion, want a few seconds at most", recovery)
	}

	// Nothing acknowledged was lost or counted twice.
	var missing, extra []string
	wantIDs := map[string]bool{}
	for k := range want {
		wantIDs[k.AlertID()] = true
		if sk.ids[k.AlertID()] == 0 {
			missing = append(missing, fmt.Sprintf("%s->%s@%s", k.From, k.To, time.UnixMilli(k.Start).UTC().Format(time.TimeOnly)))
		}
	}
	for id := range sk.ids {
		if !wantIDs[id] {
			extra = append(extra, id)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("alerts differ from the reference (%d alerts): %d missing %v, %d extra %v",
			len(want), len(missing), first10(missing), len(extra), first10(extra))
	}
	windowtest.CountedOnce(t, st, ts)
}
