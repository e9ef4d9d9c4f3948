package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/fintrans/fintrans/shared/app"
	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/replay"
	"github.com/fintrans/fintrans/shared/server"
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
// REDIS_URL it uses an embedded Redis (EMBEDDED_REDIS), so it runs on a
// fresh machine.
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
	sum, err := replay.FromConfig(ctx, cfg, log, in, name, os.Stdout, os.Stderr)
	fmt.Fprintln(os.Stderr, sum)
	return err
}
