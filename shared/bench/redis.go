package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is one redis-server process the benchmark started: no
// persistence, loopback only, killed by Close (and by the kernel if this
// process dies first, on Linux).
type redisServer struct {
	Addr    string
	port    int
	busPort int // cluster bus port, 0 for a standalone server
	dir     string
	cmd     *exec.Cmd
	done    chan struct{}
}

// startRedis starts a redis-server on a free loopback port. With cluster
// set the node is cluster-enabled (and still has to be given slots).
func startRedis(ctx context.Context, binary string, cluster bool) (*redisServer, error) {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s, err := launchRedis(ctx, binary, cluster)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	return nil, lastErr
}

func launchRedis(ctx context.Context, binary string, cluster bool) (*redisServer, error) {
	n := 1
	if cluster {
		n = 2
	}
	ports, err := freePorts(n)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "fintrans-bench-redis-")
	if err != nil {
		return nil, err
	}
	s := &redisServer{port: ports[0], dir: dir, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))}
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--protected-mode", "no",
		"--dir", dir,
		"--logfile", filepath.Join(dir, "redis.log"),
	}
	if cluster {
		s.busPort = ports[1]
		args = append(args,
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-port", strconv.Itoa(s.busPort),
			"--cluster-node-timeout", "2000",
		)
	}
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = sysProcAttr()
	if err := spawn(cmd); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("exec %s: %w (install redis-server, or set REDIS_URL)", binary, err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(ctx); err != nil {
		logs, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
		s.Close()
		return nil, fmt.Errorf("%w\n%s", err, tail(string(logs), 5))
	}
	return s, nil
}

func (s *redisServer) waitReady(ctx context.Context) error {
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: time.Second})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-s.done:
			return fmt.Errorf("redis-server on %s exited during startup", s.Addr)
		default:
		}
		err := rdb.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s not ready: %w", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Close kills the server and removes its directory.
func (s *redisServer) Close() {
	if s == nil || s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
	os.RemoveAll(s.dir)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// spawn starts cmd from one OS thread that lives as long as the process:
// Pdeathsig fires when the forking thread exits, so it must never exit.
var (
	spawnOnce sync.Once
	spawnReqs chan spawnReq
)

type spawnReq struct {
	cmd *exec.Cmd
	err chan error
}

func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnReqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked
			for r := range spawnReqs {
				r.err <- r.cmd.Start()
			}
		}()
	})
	errc := make(chan error, 1)
	spawnReqs <- spawnReq{cmd: cmd, err: errc}
	return <-errc
}

// redisCluster is n cluster-enabled servers holding all 16384 slots.
type redisCluster struct {
	nodes []*redisServer
}

// startCluster starts n masters, gives each an even share of the slots and
// joins them (like redis-cli --cluster create without replicas), then waits
// until every node reports cluster_state:ok and knows every other node.
func startCluster(ctx context.Context, binary string, n int) (*redisCluster, error) {
	c := &redisCluster{}
	for range n {
		s, err := startRedis(ctx, binary, true)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.nodes = append(c.nodes, s)
	}
	const slots = 16384
	for i, s := range c.nodes {
		rdb := redis.NewClient(&redis.Options{Addr: s.Addr})
		err := rdb.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err()
		if err == nil {
			err = rdb.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", i*slots/n, (i+1)*slots/n-1).Err()
		}
		rdb.Close()
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("cluster node %s: %w", s.Addr, err)
		}
	}
	first := redis.NewClient(&redis.Options{Addr: c.nodes[0].Addr})
	defer first.Close()
	for _, s := range c.nodes[1:] {
		if err := first.Do(ctx, "CLUSTER", "MEET", "127.0.0.1", s.port, s.busPort).Err(); err != nil {
			c.Close()
			return nil, fmt.Errorf("CLUSTER MEET %s: %w", s.Addr, err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		problem := c.notReady(ctx)
		if problem == "" {
			return c, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			c.Close()
			return nil, errors.New("cluster not ready: " + problem)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *redisCluster) notReady(ctx context.Context) string {
	for _, s := range c.nodes {
		rdb := redis.NewClient(&redis.Options{Addr: s.Addr})
		info, err := rdb.ClusterInfo(ctx).Result()
		rdb.Close()
		if err != nil {
			return err.Error()
		}
		f := infoFields(info)
		if f["cluster_state"] != "ok" || f["cluster_slots_ok"] != "16384" || f["cluster_known_nodes"] != strconv.Itoa(len(c.nodes)) {
			return fmt.Sprintf("node %s: state=%s slots_ok=%s known=%s", s.Addr, f["cluster_state"], f["cluster_slots_ok"], f["cluster_known_nodes"])
		}
	}
	return ""
}

// Addrs are the nodes' addresses.
func (c *redisCluster) Addrs() []string {
	var out []string
	for _, s := range c.nodes {
		out = append(out, s.Addr)
	}
	return out
}

// Close kills every node.
func (c *redisCluster) Close() {
	for _, s := range c.nodes {
		s.Close()
	}
}

// infoFields parses "key:value" lines (INFO, CLUSTER INFO).
func infoFields(info string) map[string]string {
	f := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			f[k] = v
		}
	}
	return f
}

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
		f := infoFields(info)
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
