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
	c, closeAll, err := app.Consumer(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeAll()
	ready := func(ctx context.Context) error { return c.Detector.Redis.Ping(ctx).Err() }
	go func() {
		if err := server.Serve(ctx, ":"+strconv.Itoa(cfg.Port), server.Mux(nil, ready), server.TimeoutsFrom(cfg), log); err != nil {
			log.Error("operational endpoints stopped", "err", err)
		}
	}()
	return c.Run(ctx)
}
