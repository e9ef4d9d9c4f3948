package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/redisproc"
)

// forEachServer runs fn on the standalone client, or on every master of a
// cluster client.
func forEachServer(ctx context.Context, rdb redis.UniversalClient, fn func(ctx context.Context, c *redis.Client) error) error {
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, fn)
	}
	if c, ok := rdb.(*redis.Client); ok {
		return fn(ctx, c)
	}
	return fmt.Errorf("unsupported redis client %T", rdb)
}

// serverStats sums INFO fields over every server (every master).
type serverStats struct {
	usedMemory int64
	cpu        time.Duration // used_cpu_user + used_cpu_sys
	evalCalls  int64         // cmdstat_evalsha calls
	evalUsec   int64         // cmdstat_evalsha usec
	servers    int
	version    string
}

func readStats(ctx context.Context, rdb redis.UniversalClient) (serverStats, error) {
	var mu sync.Mutex
	var st serverStats
	err := forEachServer(ctx, rdb, func(ctx context.Context, c *redis.Client) error {
		info, err := c.Info(ctx, "memory", "cpu", "commandstats", "server").Result()
		if err != nil {
			return err
		}
		f := redisproc.ParseInfo(info)
		mu.Lock()
		defer mu.Unlock()
		st.servers++
		st.version = f["redis_version"]
		n, _ := strconv.ParseInt(f["used_memory"], 10, 64)
		st.usedMemory += n
		for _, k := range []string{"used_cpu_user", "used_cpu_sys"} {
			x, _ := strconv.ParseFloat(f[k], 64)
			st.cpu += time.Duration(x * float64(time.Second))
		}
		// cmdstat_evalsha:calls=N,usec=U,usec_per_call=...
		for _, kv := range strings.Split(f["cmdstat_evalsha"], ",") {
			k, v, _ := strings.Cut(kv, "=")
			x, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "calls":
				st.evalCalls += x
			case "usec":
				st.evalUsec += x
			}
		}
		return nil
	})
	return st, err
}

// flushAll empties every server.
func flushAll(ctx context.Context, rdb redis.UniversalClient) error {
	return forEachServer(ctx, rdb, func(ctx context.Context, c *redis.Client) error {
		return c.FlushAll(ctx).Err()
	})
}

// deletePrefix removes every key starting with prefix (used on a Redis the
// benchmark does not own, instead of FLUSHALL).
func deletePrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	return forEachServer(ctx, rdb, func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var batch []string
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
			if len(batch) == 1000 {
				if err := c.Unlink(ctx, batch...).Err(); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if len(batch) > 0 {
			if err := c.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
		}
		return iter.Err()
	})
}
