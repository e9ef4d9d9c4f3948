package generator_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/fintrans/fintrans/shared/app"
	"github.com/fintrans/fintrans/shared/codec/cloudevent"
	"github.com/fintrans/fintrans/shared/codec/kafkarecord"
	"github.com/fintrans/fintrans/shared/codec/seedline"
	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/devkit/embeddedkafka"
	"github.com/fintrans/fintrans/shared/embedded"
	"github.com/fintrans/fintrans/shared/generator"
	"github.com/fintrans/fintrans/shared/kafka"
	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/redisconn"
	"github.com/fintrans/fintrans/shared/sink"
	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/window"
)

var now = time.Date(2017, 7, 23, 1, 6, 47, 123_000_000, time.UTC)

// capture is a sink that keeps what it was sent, one slice per Send call.
type capture struct {
	mu    sync.Mutex
	calls [][]ce.Event
}

func (c *capture) sink() sink.Func {
	return func(ctx context.Context, evs []ce.Event) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.calls = append(c.calls, append([]ce.Event(nil), evs...))
		return nil
	}
}

func newGen(cfg config.Config, out sink.Sink, seed uint64) *generator.Generator {
	return generator.New(cfg.Generator(), out, rand.New(rand.NewPCG(seed, seed+1)), func() time.Time { return now })
}

func TestTickMakesValidTransfers(t *testing.T) {
	cfg := config.Default()
	cfg.GeneratorTransfers = 200
	cfg.GeneratorAccounts = 7
	cfg.GeneratorMinAmount = 5_00
	cfg.GeneratorMaxAmount = 123_45
	c := &capture{}
	g := newGen(cfg, c.sink(), 1)
	ids := map[string]bool{}
	for tick := range 5 {
		p, err := g.Tick(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Transfers) != 200 || p.Sent != 200 {
			t.Fatalf("tick %d: %d transfers, %d sent; want 200", tick, len(p.Transfers), p.Sent)
		}
		if len(c.calls) != tick+1 || len(c.calls[tick]) != 200 {
			t.Fatalf("tick %d: %d Send calls, last with %d events; want one call of 200", tick, len(c.calls), len(c.calls[tick]))
		}
		inEpisode := map[string]bool{}
		for _, ep := range p.Episodes {
			for _, id := range ep.IDs {
				inEpisode[id] = true
			}
		}
		for i, tr := range p.Transfers {
			if err := tr.Validate(); err != nil {
				t.Errorf("transfer %+v: %v", tr, err)
			}
			if ids[tr.ID] {
				t.Errorf("id %s repeated", tr.ID)
			}
			ids[tr.ID] = true
			for _, acc := range []string{tr.From, tr.To} {
				if n, err := strconv.Atoi(acc); err != nil || n < 0 || n >= 7 || strconv.Itoa(n) != acc {
					t.Errorf("account %q is not one of 0..6", acc)
				}
			}
			if !inEpisode[tr.ID] {
				if tr.Amount < 5_00 || tr.Amount >= 123_45 {
					t.Errorf("amount %s outside [5.00, 123.45)", tr.Amount)
				}
				if d := now.Sub(tr.Time); d < 0 || d > generator.MaxJitter+time.Second {
					t.Errorf("time %s is %s before now", tr.Time, d)
				}
			}
			if !tr.Time.Equal(tr.Time.Truncate(time.Second)) {
				t.Errorf("time %s not whole seconds", tr.Time)
			}

			// The event carries exactly the transfer.
			e := c.calls[tick][i]
			if e.Type() != cloudevent.TransactionType || e.Source() != cloudevent.GeneratorSource || e.DataContentType() != "application/json" {
				t.Errorf("event attributes: %s", e)
			}
			if k, _ := e.Extensions()[cloudevent.PartitionKey].(string); k != transfer.PairKey(tr.From, tr.To) {
				t.Errorf("partitionkey %q, want %q", k, transfer.PairKey(tr.From, tr.To))
			}
			if err := e.Validate(); err != nil {
				t.Error(err)
			}
			want := `{"from":"` + tr.From + `","to":"` + tr.To + `","amount":` + tr.Amount.String() + `}`
			if string(e.Data()) != want {
				t.Errorf("data %s, want %s", e.Data(), want)
			}
			it := cloudevent.FromEvent(e)
			if it.Err != nil || it.Transfer != tr {
				t.Errorf("decoded %+v (err %v), want %+v", it.Transfer, it.Err, tr)
			}
		}
	}

	// Another generator (a restart) never reuses an id.
	p, err := newGen(cfg, c.sink(), 1).Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range p.Transfers {
		if ids[tr.ID] {
			t.Errorf("restarted generator reused id %s", tr.ID)
		}
	}
}

func TestEpisodes(t *testing.T) {
	for _, tc := range []struct {
		name              string
		threshold         money.Cents
		size, slide       time.Duration
		rate              float64
		transfers, ticks  int
		wantMin, wantMaxF float64 // bounds on the share of episode transfers
	}{
		{"default", 10000_00, 10 * time.Minute, 2 * time.Minute, 0.05, 100, 40, 0.04, 0.06},
		{"all fraud", 10000_00, 10 * time.Minute, 2 * time.Minute, 1, 50, 10, 0.9, 1},
		{"small ticks", 10000_00, 10 * time.Minute, 2 * time.Minute, 0.05, 10, 400, 0.04, 0.06},
		{"tumbling 1m", 500_00, time.Minute, time.Minute, 0.3, 100, 20, 0.25, 0.35},
		{"tiny threshold", 2, 10 * time.Minute, 2 * time.Minute, 0.2, 30, 20, 0.15, 0.25},
	} {
		for _, profile := range []string{config.ProfileRealistic, config.ProfileSeed} {
			t.Run(profile+"/"+tc.name, func(t *testing.T) {
				cfg := config.Default()
				cfg.GeneratorProfile = profile
				cfg.Threshold, cfg.WindowSize, cfg.WindowSlide = tc.threshold, tc.size, tc.slide
				cfg.GeneratorFraudRate, cfg.GeneratorTransfers = tc.rate, tc.transfers
				clock := now
				g := generator.New(cfg.Generator(), sink.Func(func(context.Context, []ce.Event) error { return nil }),
					rand.New(rand.NewPCG(7, 8)), func() time.Time { return clock })
				fraud, total, episodes := 0, 0, 0
				for range tc.ticks {
					clock = clock.Add(1357 * time.Millisecond)
					p, err := g.Tick(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					byID := map[string]transfer.Transfer{}
					for _, tr := range p.Transfers {
						byID[tr.ID] = tr
					}
					total += len(p.Transfers)
					for _, ep := range p.Episodes {
						episodes++
						fraud += len(ep.IDs)
						checkEpisode(t, cfg, clock, ep, byID)
					}
				}
				share := float64(fraud) / float64(total)
				t.Logf("%d episodes, %d of %d transfers (%.3f)", episodes, fraud, total, share)
				if share < tc.wantMin || share > tc.wantMaxF {
					t.Errorf("episode share %.3f outside [%.2f, %.2f]", share, tc.wantMin, tc.wantMaxF)
				}
			})
		}
	}
}

// span is the longest spread of an episode's times under cfg's profile.
func span(cfg config.Config) time.Duration {
	if cfg.GeneratorProfile == config.ProfileSeed {
		return generator.EpisodeSpan
	}
	return generator.RealisticEpisodeSpan
}

func checkEpisode(t *testing.T, cfg config.Config, now time.Time, ep generator.Episode, byID map[string]transfer.Transfer) {
	t.Helper()
	n := len(ep.IDs)
	if n < generator.MinEpisode || n > generator.MaxEpisode || len(ep.Times) != n || len(ep.Amounts) != n {
		t.Fatalf("episode of %d transfers: %+v", n, ep)
	}
	var sum money.Cents
	for i, id := range ep.IDs {
		tr, ok := byID[id]
		if !ok {
			t.Fatalf("episode transfer %s not in the batch", id)
		}
		if tr.From != ep.From || tr.To != ep.To || !tr.Time.Equal(ep.Times[i]) || tr.Amount != ep.Amounts[i] {
			t.Errorf("episode transfer %+v does not match the episode %+v", tr, ep)
		}
		if tr.Amount >= cfg.Threshold {
			t.Errorf("episode amount %s is not under the threshold %s", tr.Amount, cfg.Threshold)
		}
		if tr.Time.Before(ep.WindowStart) || !tr.Time.Before(ep.WindowStart.Add(cfg.WindowSize)) {
			t.Errorf("episode time %s outside its window [%s, +%s)", tr.Time, ep.WindowStart, cfg.WindowSize)
		}
		if d := now.Sub(tr.Time); d < 0 || d > span(cfg)+generator.MaxJitter {
			t.Errorf("episode time %s is %s before now", tr.Time, d)
		}
		sum += tr.Amount
	}
	if sum != ep.Total || sum <= cfg.Threshold {
		t.Errorf("episode total %s (sum %s) is not over the threshold %s", ep.Total, sum, cfg.Threshold)
	}
	if ep.Last.Sub(ep.First) >= span(cfg) {
		t.Errorf("episode spans %s, want under %s", ep.Last.Sub(ep.First), span(cfg))
	}
	if ep.WindowStart.UnixMilli()%cfg.WindowSlide.Milliseconds() != 0 {
		t.Errorf("window start %s is not aligned to the slide", ep.WindowStart)
	}
}

// Every episode is alerted by the real window store (on the embedded Redis),
// for the window the episode names.
func TestEpisodesAreAlerted(t *testing.T) {
	r, err := embedded.StartRedis()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cfg := config.Default()
	cfg.RedisURL = r.URL
	cfg.GeneratorFraudRate = 0.2
	cfg.GeneratorTransfers = 100
	rdb, err := redisconn.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	st, err := window.New(rdb, cfg.Window())
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now().UTC()
	g := generator.New(cfg.Generator(), sink.Func(func(context.Context, []ce.Event) error { return nil }),
		rand.New(rand.NewPCG(3, 4)), func() time.Time { return clock })
	alerted := map[string]bool{}
	var episodes []generator.Episode
	for range 5 {
		clock = clock.Add(time.Second)
		p, err := g.Tick(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		episodes = append(episodes, p.Episodes...)
		outs, err := st.Apply(context.Background(), p.Transfers)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range outs {
			for _, a := range o.Alerts {
				alerted[a.ID()] = true
			}
		}
	}
	if len(episodes) < 10 {
		t.Fatalf("only %d episodes", len(episodes))
	}
	for _, ep := range episodes {
		if !alerted[transfer.AlertID(ep.From, ep.To, ep.WindowStart)] {
			t.Errorf("episode %s->%s in window %s (total %s) was not alerted", ep.From, ep.To, ep.WindowStart, ep.Total)
		}
	}
}

func TestTickSendsToKafka(t *testing.T) {
	k, err := embeddedkafka.Start(3, "transactions")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	kc, err := kafka.Config("generator", "", kafka.Security{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := sink.NewKafka(k.Brokers, kc, "transactions")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cfg := config.Default()
	p, err := newGen(cfg, out, 9).Tick(context.Background())
	if err != nil || p.Sent != 100 {
		t.Fatalf("Tick: sent %d, err %v", p.Sent, err)
	}
	recs := consumeAll(t, k.Brokers, "transactions", 100)
	want := map[string]transfer.Transfer{}
	for _, tr := range p.Transfers {
		want[tr.ID] = tr
	}
	partOf := map[string]int32{}
	for _, m := range recs {
		it := new(kafkarecord.Decoder).Decode(m)
		if it.Err != nil {
			t.Fatalf("record %d/%d: %v", m.Partition, m.Offset, it.Err)
		}
		if it.Transfer != want[it.Transfer.ID] {
			t.Errorf("record %+v, want %+v", it.Transfer, want[it.Transfer.ID])
		}
		pair := transfer.PairKey(it.Transfer.From, it.Transfer.To)
		if string(m.Key) != pair {
			t.Errorf("record key %q, want %q", m.Key, pair)
		}
		if p, ok := partOf[pair]; ok && p != m.Partition {
			t.Errorf("pair %s on partitions %d and %d", pair, p, m.Partition)
		}
		partOf[pair] = m.Partition
		delete(want, it.Transfer.ID)
	}
	if len(want) != 0 {
		t.Errorf("%d transfers missing from the topic", len(want))
	}
}

func TestLineFormat(t *testing.T) {
	k, err := embeddedkafka.Start(2, "transactions")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	kc, err := kafka.Config("generator", "", kafka.Security{})
	if err != nil {
		t.Fatal(err)
	}
	prod, err := sarama.NewSyncProducer(k.Brokers, kc)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	cfg := config.Default()
	cfg.GeneratorTransfers = 50
	p, err := newGen(cfg, generator.NewLineKafka(prod, "transactions"), 5).Tick(context.Background())
	if err != nil || p.Sent != 50 {
		t.Fatalf("Tick: sent %d, err %v", p.Sent, err)
	}
	type key struct {
		from, to string
		at       time.Time
		amount   money.Cents
	}
	want := map[key]int{}
	for _, tr := range p.Transfers {
		want[key{tr.From, tr.To, tr.Time, tr.Amount}]++
	}
	for _, m := range consumeAll(t, k.Brokers, "transactions", 50) {
		line := string(m.Value)
		if len(m.Headers) != 0 {
			t.Errorf("line record has headers %v", m.Headers)
		}
		tr, err := seedline.Parse(line)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if parts := strings.Split(line, ";"); len(parts) != 4 || len(parts[0]) != len("2017-07-23T01:06:47Z") || !strings.Contains(parts[3], ".") || len(strings.Split(parts[3], ".")[1]) != 2 {
			t.Errorf("line %q is not in the seed's format with a 2-decimal amount", line)
		}
		if string(m.Key) != transfer.PairKey(tr.From, tr.To) {
			t.Errorf("key %q for line %q", m.Key, line)
		}
		k := key{tr.From, tr.To, tr.Time, tr.Amount}
		if want[k] == 0 {
			t.Errorf("unexpected line %q", line)
		}
		want[k]--
		// Detect reads it as a valid transfer.
		if it := new(kafkarecord.Decoder).Decode(m); it.Err != nil {
			t.Errorf("detect would refuse %q: %v", line, it.Err)
		}
	}
}

func TestHandler(t *testing.T) {
	cfg := config.Default()
	cfg.GeneratorTransfers = 20
	cfg.GeneratorFraudRate = 0.5
	c := &capture{}
	h := &generator.Handler{Generator: newGen(cfg, c.sink(), 11), Topic: "transactions"}

	// The cron-connector's empty POST, and a PingSource CloudEvent.
	ping := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"specversion":"1.0","id":"1","type":"dev.knative.sources.ping","source":"/p","data":{}}`))
	ping.Header.Set("Content-Type", "application/cloudevents+json")
	for _, req := range []*http.Request{httptest.NewRequest(http.MethodPost, "/", nil), ping} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var ans map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil || rec.Code != 200 {
			t.Fatalf("POST: %d %s", rec.Code, rec.Body)
		}
		if ans["produced"] != 20.0 || ans["topic"] != "transactions" || ans["episodes"].(float64) < 1 {
			t.Errorf("POST answer %s", rec.Body)
		}
		// The answer lists the injected episodes: pair, transfers and total.
		injected, _ := ans["injected"].([]any)
		if len(injected) != int(ans["episodes"].(float64)) {
			t.Fatalf("POST answer lists %d episodes, says %v: %s", len(injected), ans["episodes"], rec.Body)
		}
		for _, e := range injected {
			ep, _ := e.(map[string]any)
			ids, _ := ep["ids"].([]any)
			total, _ := ep["total"].(float64)
			if ep["from"] == "" || ep["to"] == "" || len(ids) < generator.MinEpisode || total <= 10000 {
				t.Errorf("injected episode %v", e)
			}
		}
	}
	if len(c.calls) != 2 {
		t.Errorf("%d Send calls, want 2", len(c.calls))
	}

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != 405 || rec.Header().Get("Allow") != "POST" {
		t.Errorf("GET: %d Allow=%q", rec.Code, rec.Header().Get("Allow"))
	}

	failing := sink.Func(func(context.Context, []ce.Event) error {
		return errors.New("kafka: broker\ndown")
	})
	h = &generator.Handler{Generator: newGen(cfg, failing, 12), Sink: "http://sink", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	body := rec.Body.String()
	if rec.Code != 503 || !strings.HasPrefix(body, `{"error":`) || strings.Count(body, "\n") != 1 || !strings.Contains(body, "broker down") {
		t.Errorf("failing sink: %d %q", rec.Code, body)
	}
}

// consumeAll reads want records from every partition of topic.
func consumeAll(t *testing.T, brokers []string, topic string, want int) []*sarama.ConsumerMessage {
	t.Helper()
	kc, err := kafka.Config("test", "", kafka.Security{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := kafka.ReadAll(ctx, brokers, kc, topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < want {
		t.Fatalf("got %d of %d records", len(out), want)
	}
	return out
}

func TestWiring(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := config.Default()
	if _, err := app.New(context.Background(), "generator", cfg, log); err == nil || !strings.Contains(err.Error(), "KAFKA_BROKERS or K_SINK") {
		t.Errorf("no brokers, no sink: err %v", err)
	}
	cfg.KSink = "http://127.0.0.1:1/"
	cfg.GeneratorFormat = "line"
	if _, err := app.New(context.Background(), "generator", cfg, log); err == nil || !strings.Contains(err.Error(), "GENERATOR_FORMAT=line") {
		t.Errorf("K_SINK with line format: err %v", err)
	}

	k, err := embeddedkafka.Start(1, "transactions")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	for _, format := range []string{"cloudevents", "line"} {
		cfg := config.Default()
		cfg.KafkaBrokers = k.Brokers
		cfg.GeneratorFormat = format
		cfg.GeneratorTransfers = 10
		g, err := app.New(context.Background(), "generator", cfg, log)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Ready(context.Background()); err != nil {
			t.Errorf("Ready: %v", err)
		}
		if p, err := g.Generator.Tick(context.Background()); err != nil || p.Sent != 10 {
			t.Errorf("%s: Tick sent %d, err %v", format, p.Sent, err)
		}
		rec := httptest.NewRecorder()
		g.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"topic":"transactions"`) {
			t.Errorf("%s: POST %d %s", format, rec.Code, rec.Body)
		}
		if err := g.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	recs := consumeAll(t, k.Brokers, "transactions", 40)
	lines := 0
	for _, m := range recs {
		if it := new(kafkarecord.Decoder).Decode(m); it.Err != nil {
			t.Errorf("record %d: %v", m.Offset, it.Err)
		}
		if len(m.Headers) == 0 {
			lines++
		}
	}
	if lines != 20 {
		t.Errorf("%d line records, want 20", lines)
	}
}
