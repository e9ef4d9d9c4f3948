package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/fintrans/fintrans/shared/app"
	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/embedded"
	"github.com/fintrans/fintrans/shared/replay"
)

const (
	// replayLines is the size of the replay stage's file.
	replayLines = 20000
	// replayRuns is how often the replay stage runs each engine (the best
	// is kept).
	replayRuns = 3
)

// replayStage is `fintrans replay` of 20,000 seed lines without REDIS_URL
// (app.Replay: decoding, the window script, alerts as CloudEvent
// lines; its embedded Redis started and stopped inside the clock), on the
// embedded default (EMBEDDED_REDIS, auto: a redis-server from PATH when
// there is one) and on miniredis, the fallback of a machine without one.
func (r *runner) replayStage(ctx context.Context) error {
	var seed bytes.Buffer
	if err := replay.WriteSeed(&seed, replayLines, 1); err != nil {
		return err
	}
	engine, _, err := embedded.Resolve(r.opts.Config.EmbeddedRedis)
	if err != nil {
		return err
	}
	r.printf("\n[6] replay: `fintrans replay` of %d seed lines (100 accounts over a day), no REDIS_URL (its own embedded Redis, started inside the clock); best of %d runs\n",
		replayLines, replayRuns)
	run := func(engine string) (float64, error) {
		cfg := r.opts.Config
		cfg.RedisURL, cfg.EmbeddedRedis = "", engine
		stop := r.profile("6-replay-" + engine)
		defer stop()
		var rates []string
		best, alerts := 0.0, 0
		for range replayRuns {
			began := time.Now()
			sum, err := replayFile(ctx, cfg, r.quiet, seed.Bytes())
			wall := time.Since(began)
			if err != nil {
				return 0, fmt.Errorf("replay on %s: %w", engine, err)
			}
			if sum.Counted != replayLines {
				return 0, fmt.Errorf("replay on %s: %s", engine, sum)
			}
			rate := float64(replayLines) / wall.Seconds()
			rates = append(rates, fmt.Sprintf("%.0f", rate))
			best, alerts = max(best, rate), sum.Alerts
		}
		r.printf("    EMBEDDED_REDIS=%-13s %8.0f tx/s (runs: %s tx/s), %d alerts\n", engine, best, strings.Join(rates, ", "), alerts)
		return best, nil
	}
	engines := []string{engine}
	if engine != embedded.Miniredis {
		engines = append(engines, embedded.Miniredis)
	}
	for _, e := range engines {
		rate, err := run(e)
		if err != nil {
			return err
		}
		if e == engine {
			r.res.ReplayTxPerS, r.res.ReplayEngine = round(rate, 0), engine
		}
		if e == embedded.Miniredis {
			r.res.ReplayMiniredisTxPerS = round(rate, 0)
		}
	}
	if !slices.Contains(engines, embedded.RedisServer) {
		r.printf("    (no redis-server on PATH, or EMBEDDED_REDIS=miniredis: the default is miniredis)\n")
	}
	return nil
}

// replayFile is `fintrans replay` of b: the embedded Redis of
// cfg.EmbeddedRedis started, the replay run through app's wiring, the
// server stopped.
func replayFile(ctx context.Context, cfg config.Config, log *slog.Logger, b []byte) (replay.Summary, error) {
	stop, err := embedded.ForConfig(ctx, &cfg, log)
	if err != nil {
		return replay.Summary{}, err
	}
	defer stop()
	return app.Replay(ctx, cfg, log, bytes.NewReader(b), "file://bench-seed", io.Discard, io.Discard)
}
