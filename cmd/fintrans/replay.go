package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/fintrans/fintrans/shared/app"
	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/embedded"
)

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
	stop, err := embedded.ForConfig(ctx, &cfg, log)
	if err != nil {
		return err
	}
	defer stop()
	sum, err := app.Replay(ctx, cfg, log, in, "file://"+name, os.Stdout, os.Stderr)
	fmt.Fprintln(os.Stderr, sum)
	return err
}
