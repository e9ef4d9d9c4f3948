package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/fintrans/fintrans/shared/app"
	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/embedded"
	"github.com/fintrans/fintrans/shared/replay"
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
	sum, err := app.Replay(ctx, cfg, log, prog, "file://"+name, os.Stdout, os.Stderr)
	prog.Stop()
	elapsed := prog.Elapsed()
	fmt.Fprintf(os.Stderr, "%s in %s (%.0f lines/s)\n", sum, elapsed.Round(time.Millisecond), float64(sum.Lines)/max(elapsed.Seconds(), 1e-3))
	return err
}
