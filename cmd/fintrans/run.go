package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/devkit/pipeline"
)

// run is `make run`: the whole pipeline in one process until Ctrl-C.
func run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	defer ownTerminal()()
	p, err := pipeline.Start(ctx, cfg, log, pipeline.Options{Out: os.Stdout, Status: os.Stderr})
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		log.Info("stopping")
	case err = <-p.Err():
		log.Error("a component stopped", "err", err)
	}
	if cerr := p.Close(); cerr != nil {
		log.Warn("closing", "err", cerr)
	}
	return err
}
