package main

import (
	"context"
	"errors"
	"log/slog"
	"strconv"

	"github.com/fintrans/fintrans/shared/app"
	"github.com/fintrans/fintrans/shared/config"
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
	return server.Serve(ctx, ":"+strconv.Itoa(cfg.Port), server.Mux(f.Handler, f.Ready), cfg.HTTPTimeouts(), log)
}
