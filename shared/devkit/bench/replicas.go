package bench

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"
	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/detect"
	"github.com/fintrans/fintrans/shared/redisproc"
	"github.com/fintrans/fintrans/shared/sink"
	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/window"
)

// replicasStage is stage 7: what REDIS_MIN_REPLICAS costs. On a primary of
// its own with one replica (loopback), the detect core runs as in stage 2,
// once without WAIT and once with REDIS_MIN_REPLICAS=1 (WAIT 1 after each
// pipeline, on its connection): throughput and batch latency of each.
func (r *runner) replicasStage(ctx context.Context) error {
	primary, err := redisproc.Start(ctx, redisproc.Options{Binary: r.opts.RedisServer, Args: []string{"--repl-diskless-sync-delay", "0"}})
	if err != nil {
		return redisStartErr(err)
	}
	defer primary.Close()
	replica, err := redisproc.Start(ctx, redisproc.Options{Binary: r.opts.RedisServer})
	if err != nil {
		return redisStartErr(err)
	}
	defer replica.Close()
	prdb, rrdb := redis.NewClient(primary.ClientOptions()), redis.NewClient(replica.ClientOptions())
	defer prdb.Close()
	defer rrdb.Close()
	host, port, _ := strings.Cut(primary.Addr, ":")
	if err := rrdb.SlaveOf(ctx, host, port).Err(); err != nil {
		return err
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		info, err := rrdb.Info(ctx, "replication").Result()
		if err == nil && redisproc.ParseInfo(info)["master_link_status"] == "up" {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replica link not up: %v", err)
		}
	}
	conns, pipe := max(r.conns, 8), max(r.pipe, 64)
	if r.conns > 0 {
		conns, pipe = r.conns, r.pipe
	}
	r.printf("\n[7] REDIS_MIN_REPLICAS cost: detect core on a primary with one replica (own: %s -> %s), %d workers x batches of %d\n",
		primary.Addr, replica.Addr, conns, pipe)
	run := func(minReplicas int) (rate, p50, p99 float64, err error) {
		if err := prdb.FlushAll(ctx).Err(); err != nil {
			return 0, 0, 0, err
		}
		wc := r.cfg.Window()
		wc.MinReplicas, wc.ReplicaTimeout = minReplicas, time.Second
		st, err := window.New(prdb, wc)
		if err != nil {
			return 0, 0, 0, err
		}
		if err := st.Load(ctx); err != nil {
			return 0, 0, 0, err
		}
		d := &detect.Detector{Store: &window.Coalescer{Store: st}, Log: r.quiet, MaxClockSkew: streamSkew,
			Sink: sink.Func(func(context.Context, []ce.Event) error { return nil })}
		n := int(max(r.detect, 20000) * r.t.stage.Seconds() * 1.2)
		batches := r.buildEvents(n, pipe)
		deadline := time.Now().Add(r.t.stage)
		var mu sync.Mutex
		var lat []float64
		var refused atomic.Int64
		start := time.Now()
		done, err := drive(ctx, d, batches, conns, deadline, func(p detect.Processed, took time.Duration) {
			for _, res := range p.Results {
				if res.Status != transfer.Counted {
					refused.Add(1)
				}
			}
			mu.Lock()
			lat = append(lat, float64(took.Microseconds())/1000)
			mu.Unlock()
		})
		wall := time.Since(start)
		if err != nil {
			return 0, 0, 0, err
		}
		if len(lat) == 0 {
			return 0, 0, 0, errors.New("no batch done")
		}
		if n := refused.Load(); n > 0 {
			// The synthetic stream runs ahead of the clock (streamSkew): a
			// transfer refused did not measure the store.
			return 0, 0, 0, fmt.Errorf("%d of %d transfers not counted", n, done)
		}
		sort.Float64s(lat)
		return float64(done) / wall.Seconds(), lat[len(lat)/2], lat[len(lat)*99/100], nil
	}
	noWait, p50a, p99a, err := run(0)
	if err != nil {
		return err
	}
	r.printf("    REDIS_MIN_REPLICAS=0  %9s tx/s    batch p50 %.2f ms p99 %.2f ms\n", num(noWait), p50a, p99a)
	wait, p50b, p99b, err := run(1)
	if err != nil {
		return err
	}
	r.printf("    REDIS_MIN_REPLICAS=1  %9s tx/s    batch p50 %.2f ms p99 %.2f ms\n", num(wait), p50b, p99b)
	r.printf("    => WAIT for one replica keeps %s of the throughput; +%.2f ms on the median batch\n", pct(wait, noWait), p50b-p50a)
	r.res.ReplicasNoWaitTxPerS = round(noWait, 0)
	r.res.ReplicasWaitTxPerS = round(wait, 0)
	r.res.ReplicasWaitRatio = round(wait/noWait, 3)
	r.res.ReplicasNoWaitP50Ms = round(p50a, 2)
	r.res.ReplicasWaitP50Ms = round(p50b, 2)
	r.res.ReplicasWaitP99Ms = round(p99b, 2)
	return nil
}
