package main

import (
	"context"
	"log/slog"
	"strconv"

	"github.com/fintrans/fintrans/shared/app"
	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/server"
)

// consume runs detect as a Kafka consumer group (plain Kubernetes, OpenFaaS
// CE), with /healthz, /readyz and /metrics on $PORT.
func consume(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	f, err := app.New(ctx, "consume", cfg, log)
	if err != nil {
		return err
	}
	defer f.Close()
	go func() {
		if err := server.Serve(ctx, ":"+strconv.Itoa(cfg.Port), server.Mux(nil, f.Ready), cfg.HTTPTimeouts(), log); err != nil {
			log.Error("operational endpoints stopped", "err", err)
		}
	}()
	return f.Consumer.Run(ctx)
}
