// Package bench is `make bench`: it measures each stage of fintrans beside
// its ceiling, all in one run on this machine, and ends with one line
// "BENCH {json}".
//
// Stages:
//  1. Redis ceiling: pipelined EVALSHA of the real window script over
//     synthetic pairs (several connection and pipeline sizes, the best kept);
//  2. detect core: CloudEvents decoded with event.FromCloudEvent and run
//     through detect.Detector.Process (window store, alert building, a sink
//     that discards), with the ceiling's concurrency and batch size;
//  3. HTTP: the detect handler over real loopback HTTP, one binary-mode event
//     per request from many clients, and batches of 500, beside a no-op
//     handler on the same transport;
//  4. end to end: generator records pre-produced into the embedded Kafka,
//     consumed by consumer.Consumer into the fraud topic, beside a
//     consume-only ceiling; then a paced phase for the alert latency;
//  5. memory: Redis bytes per active pair;
//  6. replay: `fintrans replay` of 20,000 seed lines without REDIS_URL, on
//     the embedded default (EMBEDDED_REDIS) and on miniredis.
//
// It starts its own redis-server (or a 3-node Redis Cluster) unless REDIS_URL
// is set, and its own in-process Kafka (kfake); the replay stage starts the
// embedded Redis it measures, whatever REDIS_URL says.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/logging"
	"github.com/fintrans/fintrans/shared/redisconn"
	"github.com/fintrans/fintrans/shared/redisproc"
	"github.com/fintrans/fintrans/shared/window"
)

// builtinScript is window.Script as built, put back after a run with
// Options.Script.
var builtinScript = window.Script

// Options tune a run.
type Options struct {
	// Config is fintrans's configuration: detection settings, MAX_BATCH,
	// MAX_BODY_BYTES, KAFKA_VERSION, REDIS_POOL_SIZE, and REDIS_URL (when set,
	// that Redis is used instead of starting one; its keys are left alone
	// apart from the benchmark's own prefix, which is deleted at the end).
	Config config.Config
	// Long runs each stage about five times longer.
	Long bool
	// Cluster runs the Redis stages against a 3-node Redis Cluster started
	// for the run (ignored when REDIS_URL is set).
	Cluster bool
	// Pairs is the number of (from, to) pairs of the synthetic stages and of
	// the memory stage (default 10000).
	Pairs int
	// CPUProfileDir, when set, receives one CPU profile per stage
	// (<stage>.pprof) for `go tool pprof`.
	CPUProfileDir string
	// Stages, when set, are the numbers of the stages to run (1 to 8); the
	// others are skipped and their fields left at zero (stage 1 runs too
	// when 2, 3, 7 or 8 does: they use the concurrency it finds).
	Stages []int
	// Accounts, when set, are the account counts of stage 4 (default
	// 10, 100, 1000, 10000); the last one is the full shape (consume-only
	// ceiling, paced latency phase).
	Accounts []int
	// Script, when set, is the source of a window script that replaces the
	// built-in one for the whole run: a variant speaking its protocol, such
	// as scriptab's floor.lua (the least any exact detection asks of Redis a
	// transfer), for the pipeline's ceiling with it. A run that finds no
	// alert in stage 4's paced phase then says so instead of failing.
	Script string
	// RedisServer is the redis-server binary (default "redis-server").
	RedisServer string
	// Log receives progress messages (default: discarded).
	Log *slog.Logger
}

// Result is what the last line reports.
type Result struct {
	RedisCeilingOps float64 `json:"redis_ceiling_ops"`
	DetectTxPerS    float64 `json:"detect_tx_per_s"`
	HTTPBatchTxPerS float64 `json:"http_batch_tx_per_s"`
	E2ETxPerS       float64 `json:"e2e_tx_per_s"`
	// End to end by the generator's account count (10, 100, 1000, 10000),
	// the same number of records each; e2e_tx_per_s is the 10000 one.
	E2EByAccounts map[string]float64 `json:"e2e_by_accounts"`
	// The same shapes with the README's example rule set (four enabled
	// rules), on a quarter of the records.
	E2EExampleRulesByAccounts map[string]float64 `json:"e2e_example_rules_by_accounts"`
	AlertP50Ms                float64            `json:"alert_p50_ms"`
	AlertP99Ms                float64            `json:"alert_p99_ms"`
	RedisBytesPerPair         float64            `json:"redis_bytes_per_pair"`
	// Stage 5 in two steps: Redis CPU per transfer (used_cpu_user+sys, all
	// servers: unlike the script time of INFO commandstats, it does not grow
	// when other processes take the core) for a pair's first transfer (new)
	// and for its later ones (warm, one transfer of a pair a call), the
	// script time too, and bytes per group (pair) seen once and warm (20
	// transfers over 10 minutes; = redis_bytes_per_pair).
	RedisUsPerTxNew        float64 `json:"redis_us_per_transfer_new"`
	RedisUsPerTxWarm       float64 `json:"redis_us_per_transfer_warm"`
	RedisScriptUsPerTxNew  float64 `json:"redis_script_us_per_transfer_new"`
	RedisScriptUsPerTxWarm float64 `json:"redis_script_us_per_transfer_warm"`
	RedisBytesPerGroupOnce float64 `json:"redis_bytes_per_group_once"`
	RedisBytesPerGroupWarm float64 `json:"redis_bytes_per_group_warm"`
	// `fintrans replay` of 20,000 seed lines without REDIS_URL, on the
	// embedded default (ReplayEngine: redis-server when on PATH) and on
	// miniredis, the fallback without one
	ReplayTxPerS          float64 `json:"replay_tx_per_s"`
	ReplayEngine          string  `json:"replay_engine"`
	ReplayMiniredisTxPerS float64 `json:"replay_miniredis_tx_per_s"`

	DetectRatio      float64 `json:"detect_ratio"`
	HTTPSingleTxPerS float64 `json:"http_single_tx_per_s"`
	HTTPNoopReqPerS  float64 `json:"http_noop_req_per_s"`
	E2ECeilingTxPerS float64 `json:"e2e_consume_only_tx_per_s"`
	ProduceTxPerS    float64 `json:"produce_tx_per_s"`
	CeilingGridBest  float64 `json:"redis_ceiling_grid_best_ops"`
	CeilingConns     int     `json:"ceiling_conns"`
	CeilingPipeline  int     `json:"ceiling_pipeline"`
	RedisUsPerTx     float64 `json:"redis_us_per_transfer"`
	// Redis time in the window script per transfer in each e2e shape.
	RedisUsByAccounts map[string]float64 `json:"redis_us_by_accounts"`
	// Redis CPU (used_cpu_user + used_cpu_sys) per transfer in each e2e shape.
	RedisCPUUsByAccounts map[string]float64 `json:"redis_cpu_us_by_accounts"`
	AlertLatencyCount    int                `json:"alert_latency_samples"`
	// REDIS_MIN_REPLICAS cost (stage 7): detect core on a primary with one
	// replica, without and with WAIT 1.
	ReplicasNoWaitTxPerS float64 `json:"replicas_nowait_tx_per_s"`
	ReplicasWaitTxPerS   float64 `json:"replicas_wait_tx_per_s"`
	ReplicasWaitRatio    float64 `json:"replicas_wait_ratio"`
	ReplicasNoWaitP50Ms  float64 `json:"replicas_nowait_batch_p50_ms"`
	ReplicasWaitP50Ms    float64 `json:"replicas_wait_batch_p50_ms"`
	ReplicasWaitP99Ms    float64 `json:"replicas_wait_batch_p99_ms"`
	// Rules (stage 8): detect core with the seed's one rule and with the
	// README's example rule set; the cost of each rule beyond the first,
	// in µs of Redis script time a transfer.
	RulesOneTxPerS     float64 `json:"rules_one_tx_per_s"`
	RulesExampleTxPerS float64 `json:"rules_example_tx_per_s"`
	RulesExampleCount  int     `json:"rules_example_count"`
	RuleUsPerTransfer  float64 `json:"rule_us_per_transfer"`
	Cluster            bool    `json:"cluster"`
	Long               bool    `json:"long"`
	Seconds            float64 `json:"seconds"`
}

// durations of the stages.
type timing struct {
	trial   time.Duration // one ceiling trial
	stage   time.Duration // one measured stage
	paced   time.Duration // the paced latency phase of e2e
	e2eN    int           // transfers pre-produced for e2e
	perPair int           // transfers per pair in the memory stage
}

func timings(long bool) timing {
	t := timing{trial: 2 * time.Second, stage: 3 * time.Second, paced: 5 * time.Second, e2eN: 200000, perPair: 20}
	if long {
		t.trial, t.stage, t.paced, t.e2eN = 5*t.trial, 5*t.stage, 5*t.paced, 5*t.e2eN
	}
	return t
}

// runner holds what the stages share.
type runner struct {
	opts   Options
	cfg    config.Config
	out    io.Writer
	log    *slog.Logger
	quiet  *slog.Logger // what detect and the consumer log to (formatted, then discarded)
	t      timing
	rdb    redis.UniversalClient
	own    bool   // the Redis is ours: FLUSHALL is allowed
	prefix string // key prefix of the window store
	res    Result

	nServers    int           // Redis servers (cluster masters)
	stream      *stream       // the synthetic stream of stages 1-3
	windowCfg   window.Config // the store's configuration (for the ceiling's capturer)
	conns, pipe int           // best ceiling concurrency and pipeline size
	detect      float64       // detect core tx/s
}

// Run runs every stage and writes the report to out; the last line written
// is "BENCH " followed by the JSON of the Result.
func Run(ctx context.Context, opts Options, out io.Writer) (Result, error) {
	began := time.Now()
	if opts.Pairs <= 0 {
		opts.Pairs = 10000
	}
	if opts.RedisServer == "" {
		opts.RedisServer = "redis-server"
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	r := &runner{opts: opts, cfg: opts.Config, out: out, log: opts.Log, t: timings(opts.Long)}
	if opts.Script != "" {
		window.Script = redis.NewScript(opts.Script)
		defer func() { window.Script = builtinScript }()
	}
	r.quiet = logging.NewTo(io.Discard, r.cfg)
	r.res.Long = opts.Long

	where, closeRedis, err := r.openRedis(ctx)
	if err != nil {
		return r.res, err
	}
	defer closeRedis()
	if opts.CPUProfileDir != "" {
		if err := os.MkdirAll(opts.CPUProfileDir, 0o755); err != nil {
			return r.res, err
		}
	}
	st, _ := readStats(ctx, r.rdb)
	r.nServers = st.servers
	r.printf("fintrans bench: %d CPUs (GOMAXPROCS %d), %s, redis %s %s; %s per stage%s\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), st.version, where, r.t.stage, map[bool]string{true: " (-long)"}[opts.Long])
	if opts.Script != "" {
		r.printf("window script: NOT the built-in one (-script, sha1 %s)\n", window.Script.Hash())
	}
	r.printf("config: threshold %s, window %s slide %s, lateness %s, %d synthetic pairs\n",
		r.cfg.Threshold, r.cfg.WindowSize, r.cfg.WindowSlide, r.cfg.AllowedLateness, opts.Pairs)

	stages := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"1-redis-ceiling", r.ceilingStage},
		{"2-detect", r.detectStage},
		{"3-http", r.httpStage},
		{"4-e2e", r.e2eStage},
		{"5-memory", r.memoryStage},
		{"6-replay", r.replayStage},
		{"7-replicas", r.replicasStage},
		{"8-rules", r.rulesStage},
	}
	r.stream = newStream(r.opts.Pairs, time.Now().Add(-time.Hour))
	// Stages 2, 3, 7 and 8 run at the concurrency and batch size stage 1
	// finds.
	if len(opts.Stages) > 0 && !slices.Contains(opts.Stages, 1) &&
		slices.ContainsFunc(opts.Stages, func(n int) bool { return n == 2 || n == 3 || n == 7 || n == 8 }) {
		opts.Stages = append(opts.Stages, 1)
	}
	var errs []error
	for i, s := range stages {
		if len(opts.Stages) > 0 && !slices.Contains(opts.Stages, i+1) {
			continue
		}
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		if err := s.fn(ctx); err != nil {
			r.printf("    stage %s failed: %v\n", s.name, err)
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
			if errors.Is(err, context.Canceled) {
				break
			}
		}
	}
	if !r.own {
		if err := deletePrefix(context.WithoutCancel(ctx), r.rdb, r.prefix); err != nil {
			errs = append(errs, fmt.Errorf("deleting the benchmark's keys (%s*): %w", r.prefix, err))
		}
	}
	r.res.Seconds = round(time.Since(began).Seconds(), 1)
	b, _ := json.Marshal(r.res)
	fmt.Fprintf(out, "BENCH %s\n", b)
	return r.res, errors.Join(errs...)
}

// openRedis starts a server or a cluster (or uses REDIS_URL) and opens the
// client the way production does (redisconn.Open).
func (r *runner) openRedis(ctx context.Context) (string, func(), error) {
	closers := []func(){}
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	var where string
	switch {
	case r.cfg.RedisURL != "":
		r.prefix = "ftbench-" + fmt.Sprint(time.Now().UnixNano()%1e9) + ":"
		where = "at REDIS_URL " + redisconn.Describe(r.cfg.RedisURL) + " (not ours: keys under " + r.prefix + ", memory figure is approximate)"
		if r.opts.Cluster {
			where += "; -cluster ignored"
		}
	case r.opts.Cluster:
		c, err := redisproc.StartCluster(ctx, 3, redisproc.Options{Binary: r.opts.RedisServer})
		if err != nil {
			return "", closeAll, redisStartErr(err)
		}
		closers = append(closers, c.Close)
		addrs := c.Addrs
		r.cfg.RedisURL = "redis://" + addrs[0] + "?addr=" + strings.Join(addrs[1:], "&addr=")
		r.own, r.prefix, r.res.Cluster = true, "ft:", true
		where = "3-node cluster (own: " + strings.Join(addrs, ", ") + ")"
	default:
		s, err := redisproc.Start(ctx, redisproc.Options{Binary: r.opts.RedisServer})
		if err != nil {
			return "", closeAll, redisStartErr(err)
		}
		closers = append(closers, s.Close)
		r.cfg.RedisURL = "redis://" + s.Addr + "/0"
		r.own, r.prefix = true, "ft:"
		where = "standalone (own: " + s.Addr + ")"
	}
	rdb, err := redisconn.Open(r.cfg)
	if err != nil {
		closeAll()
		return "", func() {}, err
	}
	closers = append(closers, func() { rdb.Close() })
	r.rdb = rdb
	if err := rdb.Ping(ctx).Err(); err != nil {
		closeAll()
		return "", func() {}, err
	}
	return where, closeAll, nil
}

// redisStartErr adds how to fix a missing redis-server binary.
func redisStartErr(err error) error {
	if errors.Is(err, exec.ErrNotFound) {
		return fmt.Errorf("%w (install redis-server, or set REDIS_URL)", err)
	}
	return err
}

// store is a window store on the benchmark's Redis and prefix, script loaded.
func (r *runner) store(ctx context.Context) (*window.Store, error) {
	wc := r.cfg.Window()
	wc.KeyPrefix = r.prefix
	st, err := window.New(r.rdb, wc)
	if err != nil {
		return nil, err
	}
	return st, st.Load(ctx)
}

// reset empties our Redis between stages (never a Redis that is not ours).
func (r *runner) reset(ctx context.Context) error {
	if !r.own {
		return nil
	}
	return flushAll(ctx, r.rdb)
}

func (r *runner) printf(format string, args ...any) {
	fmt.Fprintf(r.out, format, args...)
}

// profile starts a CPU profile of a timed section when asked to; the
// returned func stops it. Preparation outside the clock is not profiled.
func (r *runner) profile(section string) func() {
	if r.opts.CPUProfileDir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(r.opts.CPUProfileDir, section+".pprof"))
	if err != nil {
		r.log.Warn("cpu profile", "err", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		r.log.Warn("cpu profile", "err", err)
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// meter measures wall time and the CPU used by this process, by Redis and
// by the whole machine (the rest is other load sharing the cores).
type meter struct {
	r       *runner
	wall    time.Time
	cpu     time.Duration
	machine time.Duration
	redis   serverStats
}

func (r *runner) startMeter(ctx context.Context) *meter {
	st, _ := readStats(ctx, r.rdb)
	return &meter{r: r, wall: time.Now(), cpu: cpuTime(), machine: machineBusy(), redis: st}
}

// usage is what a stage cost.
type usage struct {
	wall              time.Duration
	benchCores        float64       // CPU of this process / wall
	redisCores        float64       // CPU of Redis / wall (all servers)
	otherCores        float64       // CPU of everything else on the machine / wall
	redisCPU          time.Duration // CPU Redis used (all servers)
	evalCalls         int64
	evalUsec          int64 // Redis time in the window script
	redisUsPerEvalsha float64
}

// usPer is the Redis time in the window script per transfer, n transfers
// having run.
func (u usage) usPer(n int64) float64 {
	if n <= 0 {
		return 0
	}
	return float64(u.evalUsec) / float64(n)
}

// cpuPer is the CPU Redis used per transfer, in µs, n transfers having run:
// unlike the script time (commandstats, wall time inside the call), it does
// not grow when other processes take the core from Redis, and it includes
// reading the calls and writing the answers.
func (u usage) cpuPer(n int64) float64 {
	if n <= 0 {
		return 0
	}
	return float64(u.redisCPU.Microseconds()) / float64(n)
}

func (m *meter) stop(ctx context.Context) usage {
	wall := time.Since(m.wall)
	cpu := cpuTime() - m.cpu
	machine := machineBusy() - m.machine
	st, _ := readStats(ctx, m.r.rdb)
	u := usage{wall: wall, benchCores: cpu.Seconds() / wall.Seconds(),
		redisCores: (st.cpu - m.redis.cpu).Seconds() / wall.Seconds(), redisCPU: st.cpu - m.redis.cpu,
		evalCalls: st.evalCalls - m.redis.evalCalls, evalUsec: st.evalUsec - m.redis.evalUsec}
	if m.r.own && machine > 0 {
		u.otherCores = max(0, machine.Seconds()/wall.Seconds()-u.benchCores-u.redisCores)
	}
	if u.evalCalls > 0 {
		u.redisUsPerEvalsha = float64(st.evalUsec-m.redis.evalUsec) / float64(u.evalCalls)
	}
	return u
}

func (u usage) String() string {
	s := fmt.Sprintf("[cpu: bench %.2f, redis %.2f, other %.2f cores", u.benchCores, u.redisCores, u.otherCores)
	if u.evalCalls > 0 {
		s += fmt.Sprintf("; %.1f µs/script call in redis", u.redisUsPerEvalsha)
	}
	return s + "]"
}

// percentile of sorted values (nearest rank).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func sortFloats(v []float64) { sort.Float64s(v) }

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// num formats a rate with thousands separators.
func num(x float64) string {
	s := fmt.Sprintf("%.0f", x)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func pct(a, b float64) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", 100*a/b)
}
