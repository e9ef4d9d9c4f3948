// Package pipeline runs the whole fintrans pipeline in one process, the way
// `make run` does: generator (cron) -> Kafka "transactions" -> detect
// (consumer group, Redis) -> Kafka "fraud" -> viewer (cron) -> stdout, with
// the three functions also served over HTTP at /function/<name>. Kafka and
// Redis are embedded (kfake, miniredis) unless KAFKA_BROKERS / REDIS_URL
// point at real ones.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/fintrans/fintrans/shared/app"
	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/consumer"
	"github.com/fintrans/fintrans/shared/devkit/embeddedkafka"
	"github.com/fintrans/fintrans/shared/embedded"
	"github.com/fintrans/fintrans/shared/generator"
	"github.com/fintrans/fintrans/shared/kafka"
	"github.com/fintrans/fintrans/shared/redisconn"
	"github.com/fintrans/fintrans/shared/server"
)

// Partitions is the partition count of the topics the pipeline creates.
const Partitions = 4

// Options tune a local run.
type Options struct {
	Out         io.Writer                  // the viewer's output (os.Stdout in `make run`)
	Status      io.Writer                  // status lines; nil: none
	StatusEvery time.Duration              // default 5 s
	Listen      string                     // HTTP address; default 127.0.0.1:$PORT
	OnTick      func(p generator.Produced) // called after each generator tick (tests)
}

// Pipeline is a running pipeline.
type Pipeline struct {
	Config    config.Config // with the embedded addresses filled in
	Addr      string        // where the functions answer HTTP
	Consumer  *consumer.Consumer
	Detect    *app.Function // consume: detect fed by the consumer group, and its handler
	Generator *app.Function
	Viewer    *app.Function
	// Truth scores the viewer's alerts against the generator's episodes.
	Truth *generator.Truth

	log      *slog.Logger
	opts     Options
	cancel   context.CancelFunc
	cron     *cron.Cron
	wg       sync.WaitGroup
	closers  []func() error
	stopHTTP func() error
	produced atomic.Int64
	printed  atomic.Int64
	errc     chan error
}

// Start brings everything up and returns once it runs.
func Start(ctx context.Context, cfg config.Config, log *slog.Logger, opts Options) (p *Pipeline, err error) {
	if opts.StatusEvery <= 0 {
		opts.StatusEvery = 5 * time.Second
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:" + strconv.Itoa(cfg.Port)
	}
	ctx, cancel := context.WithCancel(ctx)
	p = &Pipeline{log: log, opts: opts, cancel: cancel, errc: make(chan error, 4)}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()

	topics := []string{cfg.TransactionsTopic, cfg.FraudTopic, cfg.DLQTopic}
	if len(cfg.KafkaBrokers) == 0 {
		k, err := embeddedkafka.Start(Partitions, topics...)
		if err != nil {
			return p, fmt.Errorf("embedded kafka: %w", err)
		}
		p.closers = append(p.closers, func() error { k.Close(); return nil })
		cfg.KafkaBrokers = k.Brokers
		log.Info("KAFKA_BROKERS not set: started an embedded Kafka (kfake)", "brokers", k.Brokers, "topics", topics)
	} else {
		kc, err := kafka.Config("admin", cfg.KafkaVersion, cfg.KafkaSecurity)
		if err != nil {
			return p, err
		}
		wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
		err = kafka.WaitReady(wctx, cfg.KafkaBrokers, kc)
		wcancel()
		if err != nil {
			return p, err
		}
		if err := kafka.EnsureTopics(ctx, cfg.KafkaBrokers, kc, Partitions, 0, topics...); err != nil {
			return p, err
		}
		log.Info("using Kafka", "brokers", cfg.KafkaBrokers)
	}
	if cfg.RedisURL == "" {
		stop, err := embedded.ForConfig(ctx, &cfg, log)
		if err != nil {
			return p, err
		}
		p.closers = append(p.closers, func() error { stop(); return nil })
	} else {
		log.Info("using Redis", "redis", redisconn.Describe(cfg.RedisURL))
	}
	// Locally detect delivers to Kafka itself, whatever K_SINK says.
	cfg.KSink = ""
	p.Config = cfg

	if p.Detect, err = app.New(ctx, "consume", cfg, log); err != nil {
		return p, err
	}
	p.closers = append(p.closers, p.Detect.Close)
	c := p.Detect.Consumer
	p.Consumer = c
	if p.Generator, err = app.New(ctx, "generator", cfg, log); err != nil {
		return p, err
	}
	p.closers = append(p.closers, p.Generator.Close)
	if p.Viewer, err = app.New(ctx, "viewer", cfg, log, app.WithOutput(opts.Out)); err != nil {
		return p, err
	}
	p.closers = append(p.closers, p.Viewer.Close)
	p.scoreEpisodes()

	// HTTP: the same paths as the OpenFaaS gateway.
	mux := server.Mux(nil, p.Detect.Ready)
	mux.Handle("/function/detect", p.Detect.Handler)
	mux.Handle("/function/generator", p.Generator.Handler)
	mux.Handle("/function/viewer", p.Viewer.Handler)
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return p, fmt.Errorf("listening on %s (set PORT to use another port): %w", opts.Listen, err)
	}
	p.Addr = ln.Addr().String()
	srv := server.NewHTTPServer(mux, cfg.HTTPTimeouts())
	srv.RegisterOnShutdown(p.Viewer.Viewer.StopLive) // browsers' live streams end at once
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.errc <- err
		}
	}()
	p.stopHTTP = func() error {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		return srv.Shutdown(sctx)
	}

	// detect consumes.
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if err := c.Run(ctx); err != nil && ctx.Err() == nil {
			p.errc <- err
		}
	}()

	// The cron schedules of the generator and the viewer.
	p.cron = cron.New(cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	if _, err := p.cron.AddFunc(cfg.GeneratorSchedule, func() { p.generate(ctx) }); err != nil {
		return p, fmt.Errorf("GENERATOR_SCHEDULE %q: %w", cfg.GeneratorSchedule, err)
	}
	if _, err := p.cron.AddFunc(cfg.ViewerSchedule, func() { p.view(ctx) }); err != nil {
		return p, fmt.Errorf("VIEWER_SCHEDULE %q: %w", cfg.ViewerSchedule, err)
	}
	p.cron.Start()
	if opts.Status != nil {
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.status(ctx) }()
	}
	log.Info("pipeline running", "functions", "http://"+p.Addr+"/function/{detect,generator,viewer}",
		"generator_schedule", cfg.GeneratorSchedule, "viewer_schedule", cfg.ViewerSchedule)
	return p, nil
}

func (p *Pipeline) generate(ctx context.Context) {
	prod, err := p.Generator.Generator.Tick(ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("generator tick failed; the next tick tries again", "err", err)
		}
		return
	}
	p.produced.Add(int64(prod.Sent))
	if p.opts.OnTick != nil {
		p.opts.OnTick(prod)
	}
}

func (p *Pipeline) view(ctx context.Context) {
	n, err := p.Viewer.Viewer.Drain(ctx)
	p.printed.Add(int64(n))
	if err != nil && ctx.Err() == nil {
		p.log.Warn("viewer tick failed; the next tick tries again", "err", err)
	}
}

// Drain runs one viewer tick now (tests).
func (p *Pipeline) Drain(ctx context.Context) (int, error) {
	n, err := p.Viewer.Viewer.Drain(ctx)
	p.printed.Add(int64(n))
	return n, err
}

// Produced is the number of transfers the generator's cron ticks sent.
func (p *Pipeline) Produced() int64 { return p.produced.Load() }

func (p *Pipeline) status(ctx context.Context) {
	t := time.NewTicker(p.opts.StatusEvery)
	defer t.Stop()
	var lastProduced, lastProcessed int64
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			produced, processed := p.produced.Load(), p.Consumer.Processed.Load()
			secs := now.Sub(last).Seconds()
			fmt.Fprintf(p.opts.Status, "status: produced %d (%.0f/s), processed %d (%.0f/s), alerts %d, printed %d, dead-lettered %d, %s\n",
				produced, float64(produced-lastProduced)/secs, processed, float64(processed-lastProcessed)/secs,
				p.Consumer.Alerts.Load(), p.printed.Load(), p.Consumer.DeadLettered.Load(), p.Truth.Score(now))
			lastProduced, lastProcessed, last = produced, processed, now
		}
	}
}

// Err reports a component that stopped on its own.
func (p *Pipeline) Err() <-chan error { return p.errc }

// StopSchedules stops the generator's and the viewer's cron schedules and
// waits for a running tick to end; everything else keeps running (tests).
func (p *Pipeline) StopSchedules() {
	if p.cron != nil {
		<-p.cron.Stop().Done()
	}
}

// Close stops the schedules, the consumer and the server, then closes every
// connection and the embedded services, in reverse order of start.
func (p *Pipeline) Close() error {
	if p.cron != nil {
		<-p.cron.Stop().Done()
	}
	var errs []error
	if p.stopHTTP != nil {
		errs = append(errs, p.stopHTTP())
	}
	p.cancel()
	p.wg.Wait()
	for i := len(p.closers) - 1; i >= 0; i-- {
		errs = append(errs, p.closers[i]())
	}
	return errors.Join(errs...)
}
