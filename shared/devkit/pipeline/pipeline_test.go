package pipeline_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fintrans/fintrans/shared/codec/cloudevent"
	"github.com/fintrans/fintrans/shared/codec/kafkarecord"
	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/devkit/pipeline"
	"github.com/fintrans/fintrans/shared/generator"
	"github.com/fintrans/fintrans/shared/kafka"
	"github.com/fintrans/fintrans/shared/redistest"
	"github.com/fintrans/fintrans/shared/syncbuf"
	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/window/flinkref"
)

// TestEndToEnd runs the whole pipeline over the Kafka protocol (kfake, driven
// by sarama) and a real redis-server: every injected episode is alerted, the
// viewer prints each alert exactly once, and the alerts equal the Flink
// reference computed from everything the generator produced.
func TestEndToEnd(t *testing.T) {
	srv := redistest.Start(t)
	cfg, err := config.FromMap(map[string]string{
		"REDIS_URL":            srv.URL,
		"GENERATOR_TRANSFERS":  "400",
		"GENERATOR_ACCOUNTS":   "10",
		"GENERATOR_FRAUD_RATE": "0.1",
		"GENERATOR_SCHEDULE":   "@every 1s",
		"VIEWER_SCHEDULE":      "@every 1s",
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var episodes []generator.Episode
	produced := 0
	out := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := pipeline.Start(context.Background(), cfg, log, pipeline.Options{
		Out: out, Listen: "127.0.0.1:0",
		OnTick: func(pr generator.Produced) {
			mu.Lock()
			defer mu.Unlock()
			episodes = append(episodes, pr.Episodes...)
			produced += pr.Sent
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	// robfig/cron ticks at most once a second. The functions answer on their
	// local paths too.
	req, _ := http.NewRequest(http.MethodPost, "http://"+p.Addr+"/function/detect",
		strings.NewReader(`{"from":"curl-a","to":"curl-b","amount":12.50}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Type", cloudevent.TransactionType)
	req.Header.Set("Ce-Id", "curl-1")
	req.Header.Set("Ce-Source", "/curl")
	req.Header.Set("Ce-Time", time.Now().UTC().Format(time.RFC3339))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("POST /function/detect: %d", res.StatusCode)
	}

	time.Sleep(3 * time.Second)
	p.StopSchedules()
	mu.Lock()
	total := produced
	mu.Unlock()
	if total < 800 || len(episodes) == 0 {
		t.Fatalf("generator produced %d transfers and %d episodes in 3 s", total, len(episodes))
	}
	deadline := time.Now().Add(30 * time.Second)
	for p.Consumer.Processed.Load() < int64(total) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := p.Consumer.Processed.Load(); got != int64(total) {
		t.Fatalf("detect processed %d of %d", got, total)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		n, err := p.Drain(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}

	// The reference from everything in the transactions topic.
	kc, _ := kafka.Config("test", "", kafka.Security{})
	records, err := kafka.ReadAll(ctx, p.Config.KafkaBrokers, kc, cfg.TransactionsTopic)
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != total {
		t.Fatalf("transactions topic holds %d records, generator sent %d", len(records), total)
	}
	var transfers []transfer.Transfer
	for _, r := range records {
		it := new(kafkarecord.Decoder).Decode(r)
		if it.Err != nil {
			t.Fatalf("generator wrote an invalid record: %v", it.Err)
		}
		transfers = append(transfers, it.Transfer)
	}
	want := flinkref.Alerts(transfers, cfg.Threshold, cfg.WindowSize, cfg.WindowSlide)
	wantIDs := map[string]bool{}
	for k := range want {
		wantIDs[k.AlertID()] = true
	}

	frauds, err := kafka.ReadAll(ctx, p.Config.KafkaBrokers, kc, cfg.FraudTopic)
	if err != nil {
		t.Fatal(err)
	}
	gotIDs := map[string]bool{}
	for _, r := range frauds {
		for _, h := range r.Headers {
			if string(h.Key) == "ce_id" {
				gotIDs[string(h.Value)] = true
			}
		}
	}
	if !sameSet(gotIDs, wantIDs) {
		t.Fatalf("alerts in %s differ from the reference: got %d, want %d", cfg.FraudTopic, len(gotIDs), len(wantIDs))
	}
	for _, ep := range episodes {
		if id := transfer.AlertID(ep.From, ep.To, ep.WindowStart); !gotIDs[id] {
			t.Errorf("episode %s->%s total %s at %s not alerted", ep.From, ep.To, ep.Total, ep.WindowStart)
		}
	}

	// The viewer printed each alert exactly once.
	printed := map[string]int{}
	for _, m := range regexp.MustCompile(`Detected Fraud: TransactionAggregate \{[^\n]*id=(fraud-[0-9a-f]+)`).FindAllStringSubmatch(out.String(), -1) {
		printed[m[1]]++
	}
	for id := range wantIDs {
		if printed[id] != 1 {
			t.Errorf("alert %s printed %d times", id, printed[id])
		}
	}
	if len(printed) != len(wantIDs) {
		t.Errorf("viewer printed %d distinct alerts, want %d", len(printed), len(wantIDs))
	}
	t.Logf("%d transfers, %d episodes, %d alerts", total, len(episodes), len(wantIDs))
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}
