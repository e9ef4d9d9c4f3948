package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/fintrans/fintrans/shared/app"
	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/detect"
	"github.com/fintrans/fintrans/shared/embedded"
	"github.com/fintrans/fintrans/shared/replay"
	"github.com/fintrans/fintrans/shared/server"
	"github.com/fintrans/fintrans/shared/sink"
)

// serve runs one function as a plain HTTP server (the Knative container).
func serve(ctx context.Context, cfg config.Config, log *slog.Logger, args []string) error {
	if len(args) != 1 {
		return errors.New("serve needs one function: detect, generator or viewer")
	}
	f, err := app.New(ctx, args[0], cfg, log)
	if err != nil {
		return err
	}
	defer f.Close()
	return server.Serve(ctx, ":"+strconv.Itoa(cfg.Port), server.Mux(f.Handler, f.Ready), server.TimeoutsFrom(cfg), log)
}

// replayCmd runs a file (or stdin) of transfers through detect. With no
// REDIS_URL it uses an embedded Redis, so it runs on a fresh machine.
func replayCmd(ctx context.Context, cfg config.Config, log *slog.Logger, args []string) error {
	in, name := os.Stdin, "stdin"
	if len(args) > 1 {
		return errors.New("replay takes at most one file")
	}
	if len(args) == 1 && args[0] != "-" {
		f, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		in, name = f, args[0]
	}
	if cfg.RedisURL == "" {
		r, err := embedded.StartRedis()
		if err != nil {
			return err
		}
		defer r.Close()
		cfg.RedisURL = r.URL
		log.Info("REDIS_URL not set: using an embedded Redis for this replay")
	}
	st, rdb, err := app.Store(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer rdb.Close()
	d := &detect.Detector{Store: st, Sink: sink.Func(nil), Log: log, Redis: rdb, MaxClockSkew: cfg.MaxClockSkew}
	// Progress (lines, rate, share of the file) on stderr when it is a
	// terminal; the summary always.
	var size int64
	if st, err := in.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	var status io.Writer
	if isTerminal(os.Stderr) {
		status = os.Stderr
	}
	prog := replay.NewProgress(in, size, status, 500*time.Millisecond)
	sum, err := replay.Run(ctx, d, prog, "file://"+name, os.Stdout, os.Stderr, 500)
	prog.Stop()
	elapsed := prog.Elapsed()
	fmt.Fprintf(os.Stderr, "%s in %s (%.0f lines/s)\n", sum, elapsed.Round(time.Millisecond), float64(sum.Lines)/max(elapsed.Seconds(), 1e-3))
	return err
}
