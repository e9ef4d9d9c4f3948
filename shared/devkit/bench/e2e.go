package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"

	"github.com/fintrans/fintrans/shared/codec/cloudevent"
	"github.com/fintrans/fintrans/shared/codec/kafkarecord"
	"github.com/fintrans/fintrans/shared/consumer"
	"github.com/fintrans/fintrans/shared/detect"
	"github.com/fintrans/fintrans/shared/devkit/embeddedkafka"
	"github.com/fintrans/fintrans/shared/generator"
	"github.com/fintrans/fintrans/shared/kafka"
	"github.com/fintrans/fintrans/shared/rules"
	"github.com/fintrans/fintrans/shared/sink"
	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/window"
)

const (
	e2ePartitions = 8
	produceBatch  = 1000
)

// e2eShapes are the generator's account counts stage 4 runs, each on the same
// number of pre-produced records: from the seed's 10 accounts (90 pairs, every
// one warm, many transfers of a pair in each batch) to 10,000 (nearly every
// transfer the first of its pair). The last one also gets the consume-only
// ceiling and the paced latency phase (e2e_tx_per_s, alert_p50_ms, ...).
var e2eShapes = []int{10, 100, 1000, 10000}

// e2eStage is stage 4: for each shape of e2eShapes, the generator's records
// pre-produced into the embedded Kafka, then consumer.Consumer (Redis + a
// Kafka sink to fraud) until all are processed.
func (r *runner) e2eStage(ctx context.Context) error {
	r.res.E2EByAccounts = map[string]float64{}
	r.res.RedisUsByAccounts = map[string]float64{}
	r.res.RedisCPUUsByAccounts = map[string]float64{}
	shapes := e2eShapes
	if len(r.opts.Accounts) > 0 {
		shapes = r.opts.Accounts
	}
	r.printf("\n[4] end to end: kfake %q (%d partitions) -> consumer.Consumer -> detect -> kfake %q; generator over %v accounts, %s records each\n",
		"transactions", e2ePartitions, "fraud", shapes, num(float64(r.t.e2eN)))
	for i, accounts := range shapes {
		if err := r.e2eShape(ctx, accounts, i == len(shapes)-1, nil); err != nil {
			return fmt.Errorf("%d accounts: %w", accounts, err)
		}
	}
	// The same shapes with the README's example rule set, on a quarter of
	// the records (its four rules cost about four times one).
	set, err := rules.Parse(exampleRules, r.cfg.RuleDefaults())
	if err != nil {
		return err
	}
	r.res.E2EExampleRulesByAccounts = map[string]float64{}
	r.printf("    with the example rule set (%d enabled rules), %s records each:\n", len(set.Enabled()), num(float64(r.t.e2eN/4)))
	for _, accounts := range shapes {
		if err := r.e2eShape(ctx, accounts, false, set.Rules); err != nil {
			return fmt.Errorf("%d accounts, example rules: %w", accounts, err)
		}
	}
	return nil
}

// e2eShape runs one shape: a fresh Redis state and a fresh kfake, N records
// pre-produced by the generator over accounts accounts, then the detect
// consumer until all are processed. With full, a consume-only group on the
// same records is the ceiling, and a paced phase below capacity then gives
// the alert latency. With a rule set, detection runs it (window.Rules) on a
// quarter of the records, and the rate goes to e2e_example_rules_by_accounts.
func (r *runner) e2eShape(ctx context.Context, accounts int, full bool, set []rules.Rule) error {
	if err := r.reset(ctx); err != nil {
		return err
	}
	const txTopic, fraudTopic, dlqTopic = "transactions", "fraud", "transactions.dlq"
	k, err := embeddedkafka.Start(e2ePartitions, txTopic, fraudTopic, dlqTopic)
	if err != nil {
		return err
	}
	defer k.Close()
	kc, err := kafka.Config("bench", r.cfg.KafkaVersion, r.cfg.KafkaSecurity)
	if err != nil {
		return err
	}
	in, err := sink.NewKafka(k.Brokers, kc, txTopic)
	if err != nil {
		return err
	}
	defer in.Close()
	gcfg := r.cfg
	gcfg.GeneratorAccounts = accounts
	gcfg.GeneratorTransfers = produceBatch
	// The seed's uniform stream, which the figures in the README measure.
	gcfg.GeneratorProfile = "seed"
	gen := generator.New(gcfg.Generator(), in, rand.New(rand.NewPCG(4, 4)), nil)

	N := r.t.e2eN
	if set != nil {
		N /= 4
	}
	pairs := accounts * (accounts - 1)
	r.printf("    %6s accounts (%s pairs):\n", num(float64(accounts)), num(float64(pairs)))

	// Pre-produce N transfers, two producers' worth of ticks at once.
	start := time.Now()
	var produced atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for produced.Load() < int64(N) && ctx.Err() == nil {
				p, err := gen.Tick(ctx)
				if err != nil {
					errc <- err
					return
				}
				produced.Add(int64(p.Sent))
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return fmt.Errorf("producing: %w", err)
	}
	N = int(produced.Load())
	prodRate := float64(N) / time.Since(start).Seconds()
	r.res.ProduceTxPerS = round(prodRate, 0)
	r.printf("      pre-produced %s transfers (generator.Tick of %d + sink.Kafka) at %s tx/s\n", num(float64(N)), produceBatch, num(prodRate))

	ceil := 0.0
	if full {
		// Ceiling: a consumer group that only decodes and marks.
		stop := r.profile("4-e2e-consume-only")
		m := r.startMeter(ctx)
		c, err := consumeOnly(ctx, k.Brokers, kc, txTopic, int64(N))
		u := m.stop(ctx)
		stop()
		if err != nil {
			return err
		}
		ceil = c
		r.res.E2ECeilingTxPerS = round(ceil, 0)
		r.printf("      consume-only ceiling (sarama group + kafkarecord.Decode + mark)   %9s tx/s   %s\n", num(ceil), u)
	}

	// The detect consumer.
	var st window.Applier
	if set == nil {
		st, err = r.store(ctx)
	} else {
		base := r.cfg.Window()
		base.KeyPrefix = r.prefix
		var rs *window.Rules
		if rs, err = window.NewRules(r.rdb, base, set); err == nil {
			err, st = rs.Load(ctx), rs
		}
	}
	if err != nil {
		return err
	}
	out, err := sink.NewKafka(k.Brokers, kc, fraudTopic)
	if err != nil {
		return err
	}
	defer out.Close()
	dlq, err := sarama.NewSyncProducer(k.Brokers, kc)
	if err != nil {
		return err
	}
	defer dlq.Close()
	group, err := sarama.NewConsumerGroup(k.Brokers, "fintrans-detect-bench", kc)
	if err != nil {
		return err
	}
	c := &consumer.Consumer{Group: group, Topic: txTopic, Detector: &detect.Detector{Store: &window.Coalescer{Store: st}, Sink: out, Log: r.quiet},
		DLQ: dlq, DLQTopic: dlqTopic, MaxBatch: r.cfg.ConsumerMaxBatch, Log: r.quiet}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	name := fmt.Sprintf("4-e2e-detect-%d", accounts)
	if set != nil {
		name += "-example-rules"
	}
	stop := r.profile(name)
	m := r.startMeter(ctx)
	began := time.Now()
	go func() { done <- c.Run(cctx) }()
	stopConsumer := func() {
		cancel()
		<-done
		group.Close()
	}
	first, last, ok := waitProcessed(ctx, c, int64(N), 0, 120*time.Second)
	u := m.stop(ctx)
	stop()
	if !ok {
		stopConsumer()
		return fmt.Errorf("consumer processed %d of %d records in 120 s", c.Processed.Load(), N)
	}
	rate := float64(int64(N)-first.n) / last.Sub(first.at).Seconds()
	key := strconv.Itoa(accounts)
	if set != nil {
		r.res.E2EExampleRulesByAccounts[key] = round(rate, 0)
		r.printf("      example rules: %9s tx/s, %d alerts, %.1f µs of Redis CPU a transfer   %s\n", num(rate), c.Alerts.Load(), u.cpuPer(int64(N)), u)
		stopConsumer()
		if c.DeadLettered.Load() > 0 || c.Faults.Load() > 0 {
			r.printf("      warning: %d dead-lettered, %d faults\n", c.DeadLettered.Load(), c.Faults.Load())
		}
		return nil
	}
	r.res.E2EByAccounts[key] = round(rate, 0)
	r.res.RedisUsByAccounts[key] = round(u.usPer(int64(N)), 2)
	r.res.RedisCPUUsByAccounts[key] = round(u.cpuPer(int64(N)), 2)
	r.printf("      detect consumer (CONSUMER_MAX_BATCH %d, mean batch %.0f)  %9s tx/s   %s of detect core; group join %s; %d alerts; a transfer: %.1f µs in the script, %.1f µs of Redis CPU   %s\n",
		r.cfg.ConsumerMaxBatch, float64(c.Processed.Load())/float64(max(1, c.Batches.Load())), num(rate), pct(rate, r.detect), first.at.Sub(began).Round(time.Millisecond), c.Alerts.Load(), u.usPer(int64(N)), u.cpuPer(int64(N)), u)
	if !full {
		stopConsumer()
		if c.DeadLettered.Load() > 0 || c.Faults.Load() > 0 {
			r.printf("      warning: %d dead-lettered, %d faults\n", c.DeadLettered.Load(), c.Faults.Load())
		}
		return nil
	}
	r.res.E2ETxPerS = round(rate, 0)
	r.printf("      = %s of consume-only\n", pct(rate, ceil))

	// Paced phase: live production below capacity, for the alert latency,
	// in small ticks (every 10 ms) so that it is a stream, not bursts.
	const tickEvery = 10 * time.Millisecond
	pace := min(max(rate/2, 500), 5000)
	perTick := max(1, int(pace*tickEvery.Seconds()))
	pcfg := gcfg
	pcfg.GeneratorTransfers = perTick
	// Its transfers are dated a window and a slide back (within the allowed
	// lateness): windows the backlog did not touch, so that they fire alerts
	// of their own at any shape (at 100 accounts every window of the
	// backlog's time has fired, and `-accounts 100` found no alert to time).
	back := r.cfg.WindowSize + r.cfg.WindowSlide
	if back > r.cfg.AllowedLateness {
		back = 0
	}
	pgen := generator.New(pcfg.Generator(), in, rand.New(rand.NewPCG(7, 7)), func() time.Time { return time.Now().Add(-back) })
	phaseB := map[string]bool{}
	tick := time.NewTicker(tickEvery)
	end := time.Now().Add(r.t.paced)
	for time.Now().Before(end) && ctx.Err() == nil {
		<-tick.C
		p, err := pgen.Tick(ctx)
		if err != nil {
			tick.Stop()
			stopConsumer()
			return fmt.Errorf("paced producing: %w", err)
		}
		for _, t := range p.Transfers {
			phaseB[t.ID] = true
		}
	}
	tick.Stop()
	_, _, ok = waitProcessed(ctx, c, int64(N+len(phaseB)), 0, 60*time.Second)
	stopConsumer()
	if !ok {
		return fmt.Errorf("consumer processed %d of %d records", c.Processed.Load(), N+len(phaseB))
	}
	if c.DeadLettered.Load() > 0 || c.Faults.Load() > 0 {
		r.printf("    warning: %d dead-lettered, %d faults\n", c.DeadLettered.Load(), c.Faults.Load())
	}

	// Alert latency: the crossing transfer's record time -> the alert's.
	rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
	defer rcancel()
	txs, err := kafka.ReadAll(rctx, k.Brokers, kc, txTopic)
	if err != nil {
		return err
	}
	frauds, err := kafka.ReadAll(rctx, k.Brokers, kc, fraudTopic)
	if err != nil {
		return err
	}
	lat, distinct, err := alertLatencies(txs, frauds, phaseB)
	if err != nil {
		return err
	}
	sortFloats(lat)
	r.res.AlertP50Ms = round(percentile(lat, 50), 1)
	r.res.AlertP99Ms = round(percentile(lat, 99), 1)
	r.res.AlertLatencyCount = len(lat)
	r.printf("    paced phase: %s tx/s for %s (%d transfers); alert latency (transfer record -> fraud record) p50 %.1f ms, p99 %.1f ms, max %.1f ms over %d alerts; %d distinct alerts in %q\n",
		num(float64(perTick)/tickEvery.Seconds()), r.t.paced, len(phaseB), r.res.AlertP50Ms, r.res.AlertP99Ms, percentile(lat, 100), len(lat), distinct, fraudTopic)
	if len(lat) == 0 {
		if r.opts.Script != "" {
			r.printf("    (no alert in the paced phase: the -script fired none)\n")
			return nil
		}
		return errors.New("no alert in the paced phase: latency not measured")
	}
	return nil
}

type mark struct {
	n  int64
	at time.Time
}

// waitProcessed polls the consumer until it has processed want records; it
// returns the moment the consumer first took records into a batch after
// the call (and how many were processed then) and the moment want was
// reached.
func waitProcessed(ctx context.Context, c *consumer.Consumer, want, base int64, limit time.Duration) (mark, time.Time, bool) {
	var first mark
	deadline := time.Now().Add(limit)
	received := c.Received.Load()
	for ctx.Err() == nil && time.Now().Before(deadline) {
		n := c.Processed.Load()
		// From the first batch taken (not the first one done: with large
		// batches the partitions' first batches are all but done by then,
		// and their records would count without their time).
		if first.at.IsZero() && c.Received.Load() > received {
			first = mark{n: n, at: time.Now()}
		}
		if n >= want {
			return first, time.Now(), true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return first, time.Time{}, false
}

// countingHandler decodes and marks every record, nothing else.
type countingHandler struct {
	n     atomic.Int64
	first atomic.Int64 // unix ns of the first record
	dec   kafkarecord.Decoder
}

func (h *countingHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *countingHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *countingHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		h.first.CompareAndSwap(0, time.Now().UnixNano())
		if it := h.dec.Decode(m); it.Err != nil {
			return it.Err
		}
		sess.MarkMessage(m, "")
		h.n.Add(1)
	}
	return nil
}

// consumeOnly reads n records with a consumer group that only decodes them,
// and returns records/s from the first record to the last.
func consumeOnly(ctx context.Context, brokers []string, kc *sarama.Config, topic string, n int64) (float64, error) {
	group, err := sarama.NewConsumerGroup(brokers, "bench-consume-only", kc)
	if err != nil {
		return 0, err
	}
	h := &countingHandler{}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		var err error
		for cctx.Err() == nil {
			if err = group.Consume(cctx, []string{topic}, h); err != nil {
				break
			}
		}
		done <- err
	}()
	deadline := time.Now().Add(60 * time.Second)
	for h.n.Load() < n && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(2 * time.Millisecond)
	}
	end := time.Now()
	cancel()
	err = <-done
	group.Close()
	if got := h.n.Load(); got < n {
		return 0, fmt.Errorf("consume-only read %d of %d records: %v", got, n, err)
	}
	return float64(n) / end.Sub(time.Unix(0, h.first.Load())).Seconds(), nil
}

// alertLatencies joins each alert (first record of each alert id) to the
// transfer that crossed the threshold: among the alert's listed transfers of
// the paced phase, those whose event time is the alert's time (the latest
// produced of them when several share it). It returns the latencies in ms
// and the number of distinct alerts.
func alertLatencies(txs, frauds []*sarama.ConsumerMessage, paced map[string]bool) ([]float64, int, error) {
	produced := make(map[string]time.Time, len(txs))
	for _, m := range txs {
		for _, h := range m.Headers {
			if string(h.Key) == "ce_id" {
				produced[string(h.Value)] = m.Timestamp
				break
			}
		}
	}
	type fired struct {
		at    time.Time
		alert transfer.Alert
	}
	alerts := map[string]fired{}
	for _, m := range frauds {
		e, err := binding.ToEvent(context.Background(), kafka_sarama.NewMessageFromConsumerMessage(m))
		if err != nil {
			return nil, 0, fmt.Errorf("fraud record %d/%d: %w", m.Partition, m.Offset, err)
		}
		a, err := cloudevent.ToAlert(*e)
		if err != nil {
			return nil, 0, err
		}
		if f, seen := alerts[e.ID()]; !seen || m.Timestamp.Before(f.at) {
			alerts[e.ID()] = fired{at: m.Timestamp, alert: a}
		}
	}
	var lat []float64
	for _, f := range alerts {
		var crossed time.Time
		for _, t := range f.alert.Transactions {
			if !paced[t.ID] || !t.Time.Equal(f.alert.Time) {
				continue
			}
			if p, ok := produced[t.ID]; ok && !p.After(f.at) && p.After(crossed) {
				crossed = p
			}
		}
		if !crossed.IsZero() {
			lat = append(lat, float64(f.at.Sub(crossed).Microseconds())/1000)
		}
	}
	return lat, len(alerts), nil
}
