// Command fintrans is the one binary of fintrans:
//
//	fintrans serve detect|generator|viewer   serve one function on $PORT (Knative)
//	fintrans consume                         detect from the Kafka topic (consumer group)
//	fintrans run                             the whole pipeline locally (make run)
//	fintrans replay [FILE|-]                 run a file of transfers through detect
//	fintrans bench                           measure throughput (make bench)
//
// Configuration is environment variables, the same in every mode.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/logging"
)

const usage = `usage:
  fintrans serve detect|generator|viewer   serve one function over HTTP on $PORT
  fintrans consume                         run detect as a Kafka consumer group on TRANSACTIONS_TOPIC
  fintrans run                             the whole pipeline on embedded Kafka and Redis (make run)
  fintrans replay [FILE|-]                 run transfers from a file through detect; alerts on stdout
  fintrans bench [-long]                   measure each stage beside its ceiling (make bench)

Configuration is read from environment variables; see README.md.`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintf(os.Stderr, "fintrans: invalid configuration: %v\n", err)
		os.Exit(2)
	}
	log := logging.New(cfg)
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	args := os.Args[2:]
	switch os.Args[1] {
	case "serve":
		err = serve(ctx, cfg, log, args)
	case "replay":
		err = replayCmd(ctx, cfg, log, args)
	case "consume":
		err = consume(ctx, cfg, log)
	case "run":
		err = run(ctx, cfg, log)
	case "bench":
		err = bench(ctx, cfg, log, args)
	case "help", "-h", "--help":
		fmt.Println(usage)
		return
	default:
		err = fmt.Errorf("unknown command %q\n%s", os.Args[1], usage)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "fintrans %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
