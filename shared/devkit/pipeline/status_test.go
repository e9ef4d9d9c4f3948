package pipeline_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/devkit/pipeline"
	"github.com/fintrans/fintrans/shared/generator"
	"github.com/fintrans/fintrans/shared/redistest"
	"github.com/fintrans/fintrans/shared/syncbuf"
)

// TestStatusSaysEpisodesAreCaught runs the default (realistic) profile: the
// status line counts the episodes the generator injected (from its cron and
// from a POST, whose answer lists them) and says every one was caught, and
// that no or almost no alert lacks an episode to explain it.
func TestStatusSaysEpisodesAreCaught(t *testing.T) {
	srv := redistest.Start(t)
	cfg, err := config.FromMap(map[string]string{
		"REDIS_URL":           srv.URL,
		"GENERATOR_TRANSFERS": "300",
		// More episodes than the default 0.01, so that a few seconds hold several.
		"GENERATOR_FRAUD_RATE": "0.05",
		"GENERATOR_SCHEDULE":   "@every 1s",
		"VIEWER_SCHEDULE":      "@every 1s",
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	episodes, produced := 0, 0
	status := &syncbuf.Buffer{}
	p, err := pipeline.Start(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), pipeline.Options{
		Out: io.Discard, Status: status, StatusEvery: 300 * time.Millisecond, Listen: "127.0.0.1:0",
		OnTick: func(pr generator.Produced) {
			mu.Lock()
			defer mu.Unlock()
			episodes += len(pr.Episodes)
			produced += pr.Sent
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	res, err := http.Post("http://"+p.Addr+"/function/generator", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var ans generator.Answer
	err = json.NewDecoder(res.Body).Decode(&ans)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 || len(ans.Injected) != ans.Episodes || ans.Produced != 300 {
		t.Fatalf("POST /function/generator: %d %+v (err %v)", res.StatusCode, ans, err)
	}

	time.Sleep(4 * time.Second)
	p.StopSchedules()
	mu.Lock()
	wantEpisodes, total := episodes+ans.Episodes, int64(produced+ans.Produced)
	mu.Unlock()
	if wantEpisodes < 5 {
		t.Fatalf("only %d episodes injected", wantEpisodes)
	}
	deadline := time.Now().Add(30 * time.Second)
	for p.Consumer.Processed.Load() < total && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
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

	// The next status lines carry the final score.
	re := regexp.MustCompile(`, caught (\d+) of (\d+) episodes \(\+(\d+) in flight\), (\d+) of (\d+) alerts unexplained\n`)
	var m []string
	for time.Now().Before(deadline) {
		all := re.FindAllStringSubmatch(status.String(), -1)
		if len(all) > 0 {
			m = all[len(all)-1]
			if m[1] == strconv.Itoa(wantEpisodes) && m[2] == m[1] {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if m == nil {
		t.Fatalf("no score in the status lines:\n%s", status.String())
	}
	caught, due, unexplained, alerts := atoi(m[1]), atoi(m[2]), atoi(m[4]), atoi(m[5])
	t.Logf("last status score: %s", m[0][2:])
	if caught != wantEpisodes || due != wantEpisodes || alerts < caught || unexplained*20 > alerts {
		t.Fatalf("status says %q; want caught %d of %d and under 5%% of the alerts unexplained", m[0], wantEpisodes, wantEpisodes)
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
