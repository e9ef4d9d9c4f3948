// Command scriptab measures the window store's Redis cost per transfer for
// variants of window.lua, one after another on the same shapes, so that
// they can be compared on a machine other work shares (Redis CPU per
// transfer, from used_cpu_user + used_cpu_sys, moves little with the load;
// wall-clock rates move a lot):
//
//	cd shared/devkit && git show main:shared/window/window.lua > /tmp/before.lua
//	go run ./bench/scriptab -accounts 10,100,1000,10000 -reps 2 /tmp/before.lua ../window/window.lua
//
// Redis CPU moves with the machine's load by 10-30% from run to run; a
// count of the instructions redis-server runs a transfer does not (valgrind
// from Debian; -addr gives scriptab a server that is already running):
//
//	valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out redis-server --port 7777 --save '' &
//	go run ./bench/scriptab -addr 127.0.0.1:7777 -accounts 100 -n 20000 -reps 1 ../window/window.lua
//	redis-cli -p 7777 shutdown nosave; callgrind_annotate /tmp/cg.out | head -30
//
// (the total over n is a transfer's instructions, startup included: a few
// million; one script a server, so that the totals compare).
//
// floor.lua beside this file is the least any exact detection asks of
// Redis a transfer (one HMGET and one HSET of the pair's state, nothing
// else): on a given machine, no variant costs less, and `fintrans bench
// -script` runs the whole pipeline with it for the machine's ceiling:
//
//	go run ./bench/scriptab -accounts 100,10000 bench/scriptab/floor.lua ../window/window.lua
//
// Each shape is n transfers between `accounts` accounts, like the
// generator's (times within 5 s, amounts $0.01-$10,000), spread over 8
// partitions by pair and cut into batches of `batch`, applied by 8 workers
// through window.Store on a redis-server (or a 3-node cluster, -cluster) it
// starts. The store's Go side is this build's: a variant must speak its
// protocol.
package main

import (
	"context"
	"flag"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/redisproc"
	"github.com/fintrans/fintrans/shared/transfer"
	"github.com/fintrans/fintrans/shared/window"
)

func main() {
	accounts := flag.String("accounts", "10,100,1000,10000", "account counts, one shape each")
	n := flag.Int("n", 100000, "transfers a shape")
	reps := flag.Int("reps", 2, "rounds over the variants")
	thr := flag.Int64("thr", 10000_00, "threshold in cents")
	bsize := flag.Int("batch", 1000, "transfers an Apply")
	cluster := flag.Bool("cluster", false, "a 3-node Redis Cluster")
	evidence := flag.Int("cap", 50, "transfers listed per alert (MaxTransactions)")
	addr := flag.String("addr", "", "a redis-server already running (e.g. under valgrind --tool=callgrind, for instruction counts), no read timeout")
	cmdstats := flag.Bool("commands", false, "after each run, the commands the script called: calls and µs a transfer (standalone)")
	flag.Parse()
	scripts := flag.Args() // window.lua variants
	ctx := context.Background()
	var rdb redis.UniversalClient
	var stats func(ctx context.Context) (float64, int64, int64)
	if *cluster {
		cl, err := redisproc.StartCluster(ctx, 3, redisproc.Options{})
		if err != nil {
			panic(err)
		}
		defer cl.Close()
		cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs, PoolSize: 16})
		rdb = cc
		stats = func(ctx context.Context) (float64, int64, int64) {
			var a float64
			var b, c int64
			for _, ad := range cl.Addrs {
				x, y, z := statsOf(ctx, redis.NewClient(&redis.Options{Addr: ad}))
				a, b, c = a+x, b+y, c+z
			}
			return a, b, c
		}
	} else if *addr != "" {
		c := redis.NewClient(&redis.Options{Addr: *addr, PoolSize: 16, ReadTimeout: -1, WriteTimeout: -1})
		rdb = c
		stats = func(ctx context.Context) (float64, int64, int64) { return statsOf(ctx, c) }
	} else {
		srv, err := redisproc.Start(ctx, redisproc.Options{})
		if err != nil {
			panic(err)
		}
		defer srv.Close()
		c := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 16})
		rdb = c
		stats = func(ctx context.Context) (float64, int64, int64) { return statsOf(ctx, c) }
	}
	for _, a := range strings.Split(*accounts, ",") {
		acc, _ := strconv.Atoi(a)
		batches := shape(acc, *n, *bsize)
		for rep := 0; rep < *reps; rep++ {
			for _, sf := range scripts {
				src, _ := os.ReadFile(sf)
				window.Script = redis.NewScript(string(src))
				if cc, ok := rdb.(*redis.ClusterClient); ok {
					cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return c.FlushAll(ctx).Err() })
				} else {
					rdb.FlushAll(ctx)
				}
				st, err := window.New(rdb, window.Config{Threshold: money.Cents(*thr), Size: 10 * time.Minute, Slide: 2 * time.Minute,
					Lateness: time.Hour, MaxTransactions: *evidence, TTL: 2 * time.Hour})
				if err != nil {
					panic(err)
				}
				if c, ok := rdb.(*redis.Client); ok {
					c.ConfigResetStat(ctx)
				}
				if err := st.Load(ctx); err != nil {
					panic(err)
				}
				c0, u0, k0 := stats(ctx)
				t0 := time.Now()
				alerts := run(ctx, st, batches)
				wall := time.Since(t0)
				c1, u1, k1 := stats(ctx)
				if *cmdstats {
					printCommands(ctx, rdb, *n)
				}
				fmt.Printf("%6d accounts %-28s cpu %6.2f µs/tx  script %6.2f µs/tx  %5.1f tx/call  %8.0f tx/s  alerts %d\n", acc, sf,
					(c1-c0)*1e6/float64(*n), float64(u1-u0)/float64(*n), float64(*n)/float64(k1-k0), float64(*n)/wall.Seconds(), alerts)
			}
		}
	}
}

func statsOf(ctx context.Context, rdb *redis.Client) (float64, int64, int64) {
	info := redisproc.ParseInfo(rdb.Info(ctx, "cpu", "commandstats").Val())
	u, _ := strconv.ParseFloat(info["used_cpu_user"], 64)
	s, _ := strconv.ParseFloat(info["used_cpu_sys"], 64)
	calls, usec := cmdStat(info["cmdstat_evalsha"])
	return u + s, usec, calls
}

// cmdStat reads one command's line of INFO commandstats
// ("calls=3,usec=40,usec_per_call=13.33,..."): its calls and µs.
func cmdStat(line string) (calls, usec int64) {
	for _, kv := range strings.Split(line, ",") {
		k, v, _ := strings.Cut(kv, "=")
		x, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "calls":
			calls = x
		case "usec":
			usec = x
		}
	}
	return calls, usec
}

// shape: n transfers over acc accounts, generator-like (time now minus up
// to 5 s, amounts 1c..$10000), 8 partitions by pair, batches of 1000.
func shape(acc, n, bsize int) [][]transfer.Transfer {
	rng := rand.New(rand.NewPCG(1, 2))
	parts := make([][]transfer.Transfer, 8)
	now := time.Now()
	for i := 0; i < n; i++ {
		f := rng.IntN(acc)
		t := rng.IntN(acc - 1)
		if t >= f {
			t++
		}
		from, to := strconv.Itoa(f), strconv.Itoa(t)
		h := fnv.New32a()
		h.Write([]byte(from + "/" + to))
		p := h.Sum32() % 8
		parts[p] = append(parts[p], transfer.Transfer{Source: "/gen", ID: "0b8f2c1e-5a6d-4f3e-9c7b-1d2e3f4a5b6c-" + strconv.Itoa(i),
			Time: now.Add(-time.Duration(rng.Int64N(5000)) * time.Millisecond).Truncate(time.Second), From: from, To: to,
			Amount: money.Cents(1 + rng.Int64N(1000000))})
	}
	var out [][]transfer.Transfer
	for _, p := range parts {
		for len(p) > 0 {
			k := min(bsize, len(p))
			out = append(out, p[:k])
			p = p[k:]
		}
	}
	return out
}

func run(ctx context.Context, st *window.Store, batches [][]transfer.Transfer) int {
	var mu sync.Mutex
	next, alerts := 0, 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(batches) {
					return
				}
				out, err := st.Apply(ctx, batches[i])
				if err != nil {
					panic(err)
				}
				a := 0
				for _, o := range out {
					a += len(o.Alerts)
				}
				mu.Lock()
				alerts += a
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return alerts
}

// printCommands prints INFO commandstats per transfer: how often the script
// called each command, and the µs Redis spent in it (the script's own Lua
// work is evalsha's usec less the others').
func printCommands(ctx context.Context, rdb redis.UniversalClient, n int) {
	c, ok := rdb.(*redis.Client)
	if !ok {
		return
	}
	info := redisproc.ParseInfo(c.Info(ctx, "commandstats").Val())
	var names []string
	for k := range info {
		if strings.HasPrefix(k, "cmdstat_") {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		calls, usec := cmdStat(info[k])
		fmt.Printf("      %-22s %7.3f calls/tx %7.3f µs/tx\n", strings.TrimPrefix(k, "cmdstat_"), float64(calls)/float64(n), float64(usec)/float64(n))
	}
}
