// Package app wires each function from configuration: the same wiring serves
// the OpenFaaS handlers in functions/, `fintrans serve` for Knative, and the
// local all-in-one run.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/detect"
	"github.com/fintrans/fintrans/shared/kafka"
	"github.com/fintrans/fintrans/shared/logging"
	"github.com/fintrans/fintrans/shared/redisconn"
	"github.com/fintrans/fintrans/shared/server"
	"github.com/fintrans/fintrans/shared/sink"
	"github.com/fintrans/fintrans/shared/window"
)

// Function is a wired function: its HTTP handler, a readiness check and what
// to close at the end.
type Function struct {
	Name    string
	Handler http.Handler
	Ready   server.ReadyFunc
	closers []func() error
}

// Close releases the function's connections.
func (f *Function) Close() error {
	var errs []error
	for i := len(f.closers) - 1; i >= 0; i-- {
		errs = append(errs, f.closers[i]())
	}
	return errors.Join(errs...)
}

// Must builds the named function from the environment, or stops the process
// with a message naming what is wrong (an OpenFaaS handler calls it at init).
func Must(name string) http.Handler {
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintf(os.Stderr, "fintrans %s: invalid configuration: %v\n", name, err)
		os.Exit(2)
	}
	log := logging.New(cfg)
	f, err := New(context.Background(), name, cfg, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fintrans %s: %v\n", name, err)
		os.Exit(2)
	}
	return f.Handler
}

// New builds the named function: detect, generator or viewer.
func New(ctx context.Context, name string, cfg config.Config, log *slog.Logger) (*Function, error) {
	log = log.With("function", name)
	switch name {
	case "detect":
		return newDetect(ctx, cfg, log)
	case "generator":
		return newGenerator(ctx, cfg, log)
	case "viewer":
		return newViewer(ctx, cfg, log)
	}
	return nil, fmt.Errorf("unknown function %q (detect, generator, viewer)", name)
}

// Store opens Redis and the window store from the configuration.
func Store(ctx context.Context, cfg config.Config, log *slog.Logger) (*window.Store, redis.UniversalClient, error) {
	rdb, err := redisconn.Open(cfg)
	if err != nil {
		return nil, nil, err
	}
	st, err := window.New(rdb, WindowConfig(cfg))
	if err != nil {
		rdb.Close()
		return nil, nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := st.Load(lctx); err != nil {
		// Not fatal: Redis may come up later; every call reloads on NOSCRIPT.
		log.Warn("redis not reachable yet; will retry on each request", "redis", redisconn.Describe(cfg.RedisURL), "err", err)
	}
	return st, rdb, nil
}

// WindowConfig maps the configuration onto the window store's.
func WindowConfig(cfg config.Config) window.Config {
	return window.Config{
		Threshold:       cfg.Threshold,
		Size:            cfg.WindowSize,
		Slide:           cfg.WindowSlide,
		Lateness:        cfg.AllowedLateness,
		MaxTransactions: cfg.AlertMaxTransactions,
		TTL:             cfg.StateTTL,
		MinReplicas:     cfg.RedisMinReplicas,
		ReplicaTimeout:  cfg.RedisReplicaTimeout,
	}
}

// AlertSink is where detect sends alerts: K_SINK over HTTP when set (Knative
// SinkBinding), otherwise FRAUD_TOPIC on KAFKA_BROKERS.
func AlertSink(cfg config.Config) (sink.Sink, string, error) {
	switch {
	case cfg.KSink != "":
		s, err := sink.NewHTTP(cfg.KSink, 10*time.Second)
		return s, "K_SINK " + sink.Describe(cfg.KSink), err
	case len(cfg.KafkaBrokers) > 0:
		kc, err := kafka.Config("detect", cfg.KafkaVersion)
		if err != nil {
			return nil, "", err
		}
		s, err := sink.NewKafka(cfg.KafkaBrokers, kc, cfg.FraudTopic)
		return s, "kafka topic " + cfg.FraudTopic, err
	}
	return nil, "", errors.New("no alert sink: set K_SINK (an HTTP sink such as a Knative KafkaSink) or KAFKA_BROKERS")
}

// Detector builds the detector (Redis + sink) from the configuration.
func Detector(ctx context.Context, cfg config.Config, log *slog.Logger) (*detect.Detector, func() error, error) {
	st, rdb, err := Store(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	sk, where, err := AlertSink(cfg)
	if err != nil {
		rdb.Close()
		return nil, nil, err
	}
	minReplicas := any(st.MinReplicas())
	if st.MinReplicas() < 0 {
		minReplicas = "auto (not known yet: found out on the first request)"
	}
	log.Info("detect ready", "redis", redisconn.Describe(cfg.RedisURL), "alerts_to", where,
		"min_replicas", minReplicas, "replica_timeout", cfg.RedisReplicaTimeout,
		"threshold", cfg.Threshold.String(), "window", cfg.WindowSize, "slide", cfg.WindowSlide, "lateness", cfg.AllowedLateness, "max_clock_skew", cfg.MaxClockSkew)
	closeAll := func() error { return errors.Join(sk.Close(), rdb.Close()) }
	// Concurrent requests (and partitions) share Redis pipelines.
	return &detect.Detector{Store: &window.Coalescer{Store: st}, Sink: sk, Log: log, Redis: rdb,
		MaxClockSkew: cfg.MaxClockSkew}, closeAll, nil
}

func newDetect(ctx context.Context, cfg config.Config, log *slog.Logger) (*Function, error) {
	d, closeAll, err := Detector(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	return &Function{
		Name:    "detect",
		Handler: &detect.Handler{Detector: d, MaxBodyBytes: cfg.MaxBodyBytes, MaxBatch: cfg.MaxBatch},
		Ready:   func(ctx context.Context) error { return d.Redis.Ping(ctx).Err() },
		closers: []func() error{closeAll},
	}, nil
}
