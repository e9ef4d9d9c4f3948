package generator_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/generator"
	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/sink"
	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/window/flinkref"
)

// simulate runs ticks of a generator one simulated second apart and returns
// every transfer and the truth scored against the Flink reference's alerts.
func simulate(t *testing.T, cfg config.Config, ticks int) ([]transfer.Transfer, *generator.Truth, time.Time) {
	t.Helper()
	clock := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	g := generator.New(cfg.Generator(), sink.Func(func(context.Context, []ce.Event) error { return nil }),
		rand.New(rand.NewPCG(16, 61)), func() time.Time { return clock })
	truth := generator.NewTruth()
	var all []transfer.Transfer
	for range ticks {
		p, err := g.Tick(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p.Transfers...)
		truth.Injected(p.Episodes, clock)
		clock = clock.Add(time.Second)
	}
	for k := range flinkref.Alerts(all, cfg.Threshold, cfg.WindowSize, cfg.WindowSlide) {
		start := time.UnixMilli(k.Start).UTC()
		truth.Alert(k.AlertID(), transfer.Alert{From: k.From, To: k.To, WindowStart: start, WindowEnd: start.Add(cfg.WindowSize)})
	}
	return all, truth, clock.Add(time.Hour)
}

// The default profile: over 20 simulated minutes of the default rate, every
// injected episode is caught by the reference's alerts, and alerts that no
// episode explains are rare; pairs repeat and amounts are skewed, none over
// the threshold alone.
func TestRealisticProfileEpisodesAreCaughtAndAlertsExplained(t *testing.T) {
	cfg := config.Default()
	if cfg.GeneratorProfile != config.ProfileRealistic {
		t.Fatalf("default profile %q", cfg.GeneratorProfile)
	}
	all, truth, later := simulate(t, cfg, 1200)
	s := truth.Score(later)
	t.Logf("%d transfers: %s", len(all), s)
	if s.Injected < 200 || s.Caught != s.Injected || s.Recent != 0 {
		t.Errorf("episodes: %s; want at least 200 injected, all caught", s)
	}
	if s.Unexplained*100 > s.Alerts { // under 1%
		t.Errorf("alerts: %s; want under 1%% unexplained", s)
	}

	pairs := map[[2]string]int{}
	var everyday []money.Cents
	for _, tr := range all {
		pairs[[2]string{tr.From, tr.To}]++
		if n, err := strconv.Atoi(tr.From); err != nil || n < 0 || n >= cfg.GeneratorAccounts {
			t.Fatalf("account %q outside 0..%d", tr.From, cfg.GeneratorAccounts-1)
		}
		if tr.Amount >= cfg.Threshold {
			t.Fatalf("transfer %+v alone reaches the threshold", tr)
		}
		everyday = append(everyday, tr.Amount)
	}
	// About 1,000 accounts times 2-6 payees (plus the episodes' pairs):
	// pairs repeat, on average many times each.
	if len(pairs) > cfg.GeneratorAccounts*generator.MaxPayees+s.Injected || len(all)/len(pairs) < 10 {
		t.Errorf("%d distinct pairs over %d transfers: pairs do not repeat", len(pairs), len(all))
	}
	slices.Sort(everyday)
	median := everyday[len(everyday)/2]
	p999 := everyday[len(everyday)*999/1000]
	if median > 100_00 || p999 < 1000_00 {
		t.Errorf("amounts: median %s, 99.9th percentile %s; want most small (median under 100) and rare large ones", median, p999)
	}
}

// The seed profile reproduces the seed's generator: 10 accounts, uniform
// amounts up to 10,000, so that a large share of the alerts is everyday
// traffic crossing the threshold, which no episode explains.
func TestSeedProfileDrownsEpisodes(t *testing.T) {
	cfg, err := config.FromMap(map[string]string{"GENERATOR_PROFILE": "seed"})
	if err != nil {
		t.Fatal(err)
	}
	all, truth, later := simulate(t, cfg, 60)
	s := truth.Score(later)
	t.Logf("%d transfers: %s", len(all), s)
	accounts := map[string]bool{}
	for _, tr := range all {
		accounts[tr.From] = true
	}
	if len(accounts) != 10 || s.Caught != s.Injected || s.Unexplained*4 < s.Alerts {
		t.Errorf("seed profile: %d accounts, %s; want 10 accounts, every episode caught, over a quarter of the alerts unexplained", len(accounts), s)
	}
}
