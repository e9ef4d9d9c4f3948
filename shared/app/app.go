// Package app is the one wiring: each function built from the configuration
// in one place, for every way it runs (the OpenFaaS handlers in functions/,
// `fintrans serve` and `fintrans consume`, replay, the local run).
//
// Its API: New builds a function by name, Must does so for an OpenFaaS
// handler, Replay runs a file through detect. A Function answers through its
// Handler (the request -> answer core, with net/http's ServeHTTP), and has
// Ready and Close.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/IBM/sarama"

	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/consumer"
	"github.com/fintrans/fintrans/shared/detect"
	"github.com/fintrans/fintrans/shared/generator"
	"github.com/fintrans/fintrans/shared/httpfn"
	"github.com/fintrans/fintrans/shared/kafka"
	"github.com/fintrans/fintrans/shared/logging"
	"github.com/fintrans/fintrans/shared/metrics"
	"github.com/fintrans/fintrans/shared/redisconn"
	"github.com/fintrans/fintrans/shared/replay"
	"github.com/fintrans/fintrans/shared/rules"
	"github.com/fintrans/fintrans/shared/sink"
	"github.com/fintrans/fintrans/shared/viewer"
	"github.com/fintrans/fintrans/shared/window"
)

// Function is a wired function.
type Function struct {
	Name    string
	Handler httpfn.Func // its answers (ServeHTTP serves them over net/http)

	// What the local run drives itself; nil where the function has none.
	Generator *generator.Generator // generator: Tick
	Viewer    *viewer.Viewer       // viewer: Drain
	Consumer  *consumer.Consumer   // consume: Run

	ready   func(ctx context.Context) error
	closers []func() error
}

// Ready reports whether the function can serve (Redis or Kafka answers).
func (f *Function) Ready(ctx context.Context) error {
	if f.ready == nil {
		return nil
	}
	return f.ready(ctx)
}

// Close releases the function's connections, last opened first.
func (f *Function) Close() error {
	var errs []error
	for i := len(f.closers) - 1; i >= 0; i-- {
		errs = append(errs, f.closers[i]())
	}
	return errors.Join(errs...)
}

// Option tunes New.
type Option func(*options)

type options struct{ out io.Writer }

// WithOutput sends the viewer's alert lines to w (default os.Stdout).
func WithOutput(w io.Writer) Option { return func(o *options) { o.out = w } }

// Must builds the named function from the environment, or stops the process
// with a message naming what is wrong (an OpenFaaS handler calls it at init).
func Must(name string) *Function {
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintf(os.Stderr, "fintrans %s: invalid configuration: %v\n", name, err)
		os.Exit(2)
	}
	f, err := New(context.Background(), name, cfg, logging.New(cfg))
	if err != nil {
		fmt.Fprintf(os.Stderr, "fintrans %s: %v\n", name, err)
		os.Exit(2)
	}
	return f
}

// New builds the named function: detect, generator or viewer, or consume
// (detect fed by a Kafka consumer group, with detect's handler beside it).
func New(ctx context.Context, name string, cfg config.Config, log *slog.Logger, opts ...Option) (*Function, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	switch name {
	case "detect":
		f, _, err := newDetect(ctx, cfg, log.With("function", name))
		return f, err
	case "consume":
		return newConsume(ctx, cfg, log)
	case "generator":
		return newGenerator(cfg, log.With("function", name))
	case "viewer":
		return newViewer(cfg, log.With("function", name), o.out)
	}
	return nil, fmt.Errorf("unknown function %q (detect, generator, viewer, consume)", name)
}

// ruleWatcher is the rule set in force: RULES_FILE, read again by Run
// (rules.Watcher), or without it the one rule from the variables. A bad
// file at start is an error naming RULES_FILE.
func ruleWatcher(cfg config.Config, log *slog.Logger) (*rules.Watcher, error) {
	if cfg.RulesFile == "" {
		set, err := cfg.Rules()
		if err != nil {
			return nil, err
		}
		log.Info("rules in force", "source", set.Source, "version", set.Version, "rules", set.Describe())
		return rules.Static(set), nil
	}
	return rules.NewWatcher(cfg.RulesFile, cfg.RuleDefaults(), log)
}

// openStore opens Redis and the window store of the rules in force; ready
// pings Redis.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (st *window.Rules, w *rules.Watcher, ready func(context.Context) error, closeRedis func() error, err error) {
	w, err = ruleWatcher(cfg, log)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	rdb, err := redisconn.Open(cfg)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	st, err = window.NewRules(rdb, cfg.Window(), w.Current().Rules)
	if err != nil {
		rdb.Close()
		return nil, nil, nil, nil, err
	}
	countRules(w.Current())
	// A change of RULES_FILE that parses (the watcher refused any other)
	// is in force from the next batch on.
	w.OnChange(func(s rules.Set) {
		if err := st.Set(s.Rules); err != nil {
			metrics.RulesReloadErrors.Inc()
			log.Error("rules not taken by the window store: the previous rules stay in force", "version", s.Version, "err", err)
			return
		}
		countRules(s)
	})
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := st.Load(lctx); err != nil {
		// Not fatal: Redis may come up later; every call reloads on NOSCRIPT.
		log.Warn("redis not reachable yet; will retry on each request", "redis", redisconn.Describe(cfg.RedisURL), "err", err)
	}
	return st, w, func(ctx context.Context) error { return rdb.Ping(ctx).Err() }, rdb.Close, nil
}

// countRules lists every enabled rule's series at 0 on /metrics.
func countRules(s rules.Set) {
	for _, r := range s.Enabled() {
		metrics.Alerts.WithLabelValues(r.ID)
		metrics.RuleLate.WithLabelValues(r.ID)
	}
}

// alertSink is where detect sends alerts: K_SINK over HTTP when set (Knative
// SinkBinding), otherwise FRAUD_TOPIC on KAFKA_BROKERS.
func alertSink(cfg config.Config) (sink.Sink, string, error) {
	switch {
	case cfg.KSink != "":
		s, err := sink.NewHTTP(cfg.KSink, 10*time.Second)
		return s, "K_SINK " + sink.Describe(cfg.KSink), err
	case len(cfg.KafkaBrokers) > 0:
		kc, err := kafka.Config("detect", cfg.KafkaVersion, cfg.KafkaSecurity)
		if err != nil {
			return nil, "", err
		}
		s, err := sink.NewKafka(cfg.KafkaBrokers, kc, cfg.FraudTopic)
		return s, "kafka topic " + cfg.FraudTopic, err
	}
	return nil, "", errors.New("no alert sink: set K_SINK (an HTTP sink such as a Knative KafkaSink) or KAFKA_BROKERS")
}

// newDetect wires detect: Redis, the window store behind a coalescer (so
// concurrent requests and partitions share Redis pipelines) and the sink.
func newDetect(ctx context.Context, cfg config.Config, log *slog.Logger) (*Function, *detect.Detector, error) {
	st, w, ready, closeRedis, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	sk, where, err := alertSink(cfg)
	if err != nil {
		closeRedis()
		return nil, nil, err
	}
	// RULES_FILE is read every RULES_RELOAD_INTERVAL until Close (not
	// tied to ctx, which only bounds the start).
	wctx, stopWatching := context.WithCancel(context.Background())
	if cfg.RulesFile != "" {
		go w.Run(wctx, cfg.RulesReloadInterval)
	}
	minReplicas := any(st.MinReplicas())
	if st.MinReplicas() < 0 {
		minReplicas = "auto (not known yet: found out on the first request)"
	}
	log.Info("detect ready", "redis", redisconn.Describe(cfg.RedisURL), "alerts_to", where,
		"min_replicas", minReplicas, "replica_timeout", cfg.RedisReplicaTimeout,
		"rules", w.Current().Source, "rules_version", w.Current().Version, "max_clock_skew", cfg.MaxClockSkew)
	d := &detect.Detector{Store: &window.Coalescer{Store: st}, Sink: sk, Log: log, MaxClockSkew: cfg.MaxClockSkew}
	h := &detect.Handler{Detector: d, MaxBodyBytes: cfg.MaxBodyBytes, MaxBatch: cfg.MaxBatch}
	return &Function{Name: "detect", Handler: h.Func(), ready: ready,
		closers: []func() error{closeRedis, sk.Close, func() error { stopWatching(); return nil }}}, d, nil
}

// newConsume wires `fintrans consume`: a consumer group on TRANSACTIONS_TOPIC
// feeding detect, with refused records sent to DLQ_TOPIC. It waits for Kafka.
func newConsume(ctx context.Context, cfg config.Config, log *slog.Logger) (*Function, error) {
	if len(cfg.KafkaBrokers) == 0 {
		return nil, errors.New("consume needs KAFKA_BROKERS")
	}
	kc, err := kafka.Config("detect", cfg.KafkaVersion, cfg.KafkaSecurity)
	if err != nil {
		return nil, err
	}
	if err := kafka.WaitReady(ctx, cfg.KafkaBrokers, kc); err != nil {
		return nil, err
	}
	f, d, err := newDetect(ctx, cfg, log.With("function", "detect"))
	if err != nil {
		return nil, err
	}
	group, err := sarama.NewConsumerGroup(cfg.KafkaBrokers, cfg.ConsumerGroup, kc)
	if err != nil {
		f.Close()
		return nil, err
	}
	f.closers = append(f.closers, group.Close)
	dlq, err := sarama.NewSyncProducer(cfg.KafkaBrokers, kc)
	if err != nil {
		f.Close()
		return nil, err
	}
	f.closers = append(f.closers, dlq.Close)
	f.Consumer = &consumer.Consumer{Group: group, Topic: cfg.TransactionsTopic, Detector: d, DLQ: dlq,
		DLQTopic: cfg.DLQTopic, MaxBatch: cfg.ConsumerMaxBatch, Log: log.With("function", "detect", "mode", "consume")}
	log.Info("consuming", "topic", cfg.TransactionsTopic, "group", cfg.ConsumerGroup, "dead_letters", cfg.DLQTopic)
	return f, nil
}

// newGenerator wires the generator:
//   - K_SINK set: CloudEvents posted over HTTP (a Knative SinkBinding);
//     GENERATOR_FORMAT=line is refused (a sink takes CloudEvents only);
//   - otherwise KAFKA_BROKERS: one SendMessages per tick to
//     TRANSACTIONS_TOPIC, as CloudEvents (binary mode) or, with
//     GENERATOR_FORMAT=line, as plain seed lines;
//   - neither: an error.
func newGenerator(cfg config.Config, log *slog.Logger) (*Function, error) {
	h := &generator.Handler{Log: log}
	f := &Function{Name: "generator"}
	var out sink.Sink
	var target string
	switch {
	case cfg.KSink != "":
		if cfg.GeneratorFormat == "line" {
			return nil, errors.New("GENERATOR_FORMAT=line needs KAFKA_BROKERS: K_SINK takes CloudEvents only (unset K_SINK or use GENERATOR_FORMAT=cloudevents)")
		}
		s, err := sink.NewHTTP(cfg.KSink, 10*time.Second)
		if err != nil {
			return nil, err
		}
		out, target, h.Sink = s, "K_SINK "+sink.Describe(cfg.KSink), sink.Describe(cfg.KSink)
		f.closers = append(f.closers, s.Close)
	case len(cfg.KafkaBrokers) > 0:
		kc, err := kafka.Config("generator", cfg.KafkaVersion, cfg.KafkaSecurity)
		if err != nil {
			return nil, err
		}
		p, err := sarama.NewSyncProducer(cfg.KafkaBrokers, kc)
		if err != nil {
			return nil, err
		}
		if cfg.GeneratorFormat == "line" {
			out = generator.NewLineKafka(p, cfg.TransactionsTopic)
		} else {
			out = sink.NewKafkaFromProducer(p, cfg.TransactionsTopic)
		}
		target, h.Topic = "kafka topic "+cfg.TransactionsTopic, cfg.TransactionsTopic
		brokers := cfg.KafkaBrokers
		f.ready = func(ctx context.Context) error { return kafka.WaitReady(ctx, brokers, kc) }
		f.closers = append(f.closers, p.Close)
	default:
		return nil, errors.New("generator needs KAFKA_BROKERS or K_SINK")
	}
	h.Generator = generator.New(cfg.Generator(), out, nil, nil)
	f.Handler, f.Generator = h.Func(), h.Generator
	log.Info("generator ready", "to", target, "format", cfg.GeneratorFormat,
		"transfers", cfg.GeneratorTransfers, "accounts", cfg.GeneratorAccounts,
		"fraud_rate", cfg.GeneratorFraudRate, "threshold", cfg.Threshold.String())
	return f, nil
}

// newViewer wires the viewer: it needs KAFKA_BROKERS, reads FRAUD_TOPIC in
// the group VIEWER_GROUP and prints alerts to out (nil: os.Stdout). It does
// not connect before the first Drain.
func newViewer(cfg config.Config, log *slog.Logger, out io.Writer) (*Function, error) {
	if len(cfg.KafkaBrokers) == 0 {
		return nil, errors.New("viewer needs KAFKA_BROKERS (it reads the fraud topic " + cfg.FraudTopic + ")")
	}
	kc, err := kafka.Config("viewer", cfg.KafkaVersion, cfg.KafkaSecurity)
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = os.Stdout
	}
	v := viewer.New(viewer.Config{Brokers: cfg.KafkaBrokers, Topic: cfg.FraudTopic, Group: cfg.ViewerGroup, JSON: cfg.LogFormat == "json"},
		kc, out, log)
	// The token itself is never logged: only whether one protects the alerts.
	log.Info("viewer ready", "topic", cfg.FraudTopic, "group", cfg.ViewerGroup, "format", cfg.LogFormat,
		"alerts_need_token", cfg.ViewerToken != "")
	h := &viewer.Handler{Viewer: v, Token: cfg.ViewerToken}
	return &Function{Name: "viewer", Handler: h.Func(), Viewer: v, ready: v.Ready, closers: []func() error{v.Close}}, nil
}

// Replay runs the transfers of in (seed lines or CloudEvent JSON lines,
// named source) through detect's code path against REDIS_URL, writing alerts
// to out and refusals to errw (see package replay).
func Replay(ctx context.Context, cfg config.Config, log *slog.Logger, in io.Reader, source string, out, errw io.Writer) (replay.Summary, error) {
	st, _, _, closeRedis, err := openStore(ctx, cfg, log)
	if err != nil {
		return replay.Summary{}, err
	}
	defer closeRedis()
	d := &detect.Detector{Store: st, Log: log, MaxClockSkew: cfg.MaxClockSkew}
	return replay.Run(ctx, d, in, source, out, errw, 500)
}
