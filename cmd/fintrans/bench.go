package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/fintrans/fintrans/shared/config"
	benchmark "github.com/fintrans/fintrans/shared/devkit/bench"
)

// bench measures each stage beside its ceiling (make bench). It starts its
// own redis-server (or a 3-node cluster with -cluster) unless REDIS_URL is
// set, and an in-process Kafka; the last line printed is BENCH {json}.
func bench(ctx context.Context, cfg config.Config, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	long := fs.Bool("long", false, "run each stage about 5x longer")
	cluster := fs.Bool("cluster", false, "run the Redis stages against a local 3-node Redis Cluster it starts")
	pairs := fs.Int("pairs", 10000, "pairs of the synthetic and memory stages")
	cpuprofile := fs.String("cpuprofile", "", "write one CPU profile per stage into this directory (<stage>.pprof)")
	stages := fs.String("stages", "", "comma-separated stage numbers to run (default: all), e.g. 4 or 1,2,4")
	accounts := fs.String("accounts", "", "comma-separated account counts of stage 4 (default 10,100,1000,10000)")
	script := fs.String("script", "", "a window script `file` to run instead of the built-in one (e.g. shared/devkit/bench/scriptab/floor.lua: the pipeline's ceiling with the least a transfer needs)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench takes no arguments, got %q", fs.Args())
	}
	if *pairs < 1 {
		return fmt.Errorf("-pairs must be at least 1")
	}
	only, err := intList(*stages)
	if err != nil {
		return fmt.Errorf("-stages: %w", err)
	}
	shapes, err := intList(*accounts)
	if err != nil || slices.ContainsFunc(shapes, func(n int) bool { return n < 2 }) {
		return fmt.Errorf("-accounts: want account counts of at least 2, got %q", *accounts)
	}
	var src []byte
	if *script != "" {
		if src, err = os.ReadFile(*script); err != nil {
			return fmt.Errorf("-script: %w", err)
		}
	}
	_, err = benchmark.Run(ctx, benchmark.Options{Config: cfg, Long: *long, Cluster: *cluster, Pairs: *pairs,
		CPUProfileDir: *cpuprofile, Log: log, Stages: only, Accounts: shapes, Script: string(src)}, os.Stdout)
	return err
}

// intList reads "1,2,4" (empty: nil).
func intList(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}
