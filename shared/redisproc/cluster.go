package redisproc

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// clusterSlots is the number of hash slots in Redis Cluster.
	clusterSlots = 16384

	// clusterTimeout bounds how long StartCluster waits for the nodes to agree.
	clusterTimeout = 20 * time.Second
)

// Cluster is a Redis Cluster of masters, with replicas when started by
// StartClusterWithReplicas.
type Cluster struct {
	Addrs []string // node addresses, Nodes[i].Addr
	// URL lists every node: "redis://127.0.0.1:P1?addr=127.0.0.1:P2&addr=...",
	// the form redis.ParseClusterURL accepts (rediss and ":password@" as for
	// Server.URL). ParseClusterURL does not know our CA: with Options.TLS set
	// ClusterOptions.TLSConfig = Nodes[0].TLSConfig() after parsing.
	URL   string
	Nodes []*Server // the primaries first, then their replicas
	// Primaries is how many of Nodes started as primaries (and own slots).
	Primaries int

	replicas [][]int // replicas[i]: indices in Nodes of primary i's replicas
	opts     Options
	dir      string // parent of the node directories
	ownDir   bool   // dir was created by StartCluster; Close removes it
}

// StartCluster starts an n-node (n >= 3) Redis Cluster of masters. Each node
// has its own directory (Options.Dir/node-N) and nodes.conf, owns an even
// share of the 16384 slots (CLUSTER ADDSLOTSRANGE) and is joined with
// CLUSTER MEET. It returns once every node reports cluster_state:ok and all
// agree on the slot map (at most 20 s, or until ctx ends). Options apply to
// every node; with Options.TLS all nodes share one CA and certificate and
// the cluster bus uses TLS too. On error no process is left running.
func StartCluster(ctx context.Context, n int, o Options) (*Cluster, error) {
	if n < 3 {
		return nil, fmt.Errorf("a cluster needs at least 3 nodes, got %d", n)
	}
	o.cluster = true
	dir, ownDir, err := prepareDir(o.Dir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: o, dir: dir, ownDir: ownDir, Primaries: n}
	if err := c.start(ctx, n); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// StartClusterWithReplicas starts a Redis Cluster of primaries (>= 3)
// primaries with replicas replicas each, as StartCluster does, then makes
// each replica node CLUSTER REPLICATE its primary. It returns once every
// replica's link is up and every node lists every replica in CLUSTER SLOTS
// (at most 20 s more). Nodes holds the primaries, then the replicas;
// ReplicasOf names them.
func StartClusterWithReplicas(ctx context.Context, primaries, replicas int, o Options) (*Cluster, error) {
	if primaries < 3 || replicas < 0 {
		return nil, fmt.Errorf("a cluster needs at least 3 primaries, got %d (and %d replicas each)", primaries, replicas)
	}
	o.cluster = true
	dir, ownDir, err := prepareDir(o.Dir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: o, dir: dir, ownDir: ownDir, Primaries: primaries}
	if err := c.start(ctx, primaries*(1+replicas)); err != nil {
		c.Close()
		return nil, err
	}
	for i := 0; i < primaries; i++ {
		c.replicas = append(c.replicas, nil)
		for k := 0; k < replicas; k++ {
			c.replicas[i] = append(c.replicas[i], primaries+i*replicas+k)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	if err := c.replicate(rctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("attaching replicas: %w", err)
	}
	return c, nil
}

// ReplicasOf returns the replicas primary i (an index in Nodes below
// Primaries) started with.
func (c *Cluster) ReplicasOf(i int) []*Server {
	var out []*Server
	if i < len(c.replicas) {
		for _, k := range c.replicas[i] {
			out = append(out, c.Nodes[k])
		}
	}
	return out
}

// replicate attaches the replica nodes and waits for their links.
func (c *Cluster) replicate(ctx context.Context) error {
	for i, rs := range c.replicas {
		var id string
		err := withClient(c.Nodes[i], func(rdb *redis.Client) error {
			var err error
			id, err = rdb.Do(ctx, "CLUSTER", "MYID").Text()
			return err
		})
		if err != nil {
			return fmt.Errorf("CLUSTER MYID on %s: %w", c.Nodes[i].Addr, err)
		}
		for _, k := range rs {
			err := withClient(c.Nodes[k], func(rdb *redis.Client) error {
				return rdb.Do(ctx, "CLUSTER", "REPLICATE", id).Err()
			})
			if err != nil {
				return fmt.Errorf("CLUSTER REPLICATE on %s: %w", c.Nodes[k].Addr, err)
			}
		}
	}
	want := 0
	if len(c.replicas) > 0 {
		want = len(c.replicas[0])
	}
	for {
		problem := ""
		for k := c.Primaries; k < len(c.Nodes) && problem == ""; k++ {
			_ = withClient(c.Nodes[k], func(rdb *redis.Client) error {
				info, err := rdb.Info(ctx, "replication").Result()
				if err != nil || ParseInfo(info)["master_link_status"] != "up" {
					problem = fmt.Sprintf("replica %s: link not up (%v)", c.Nodes[k].Addr, err)
				}
				return nil
			})
		}
		for _, s := range c.Nodes {
			if problem != "" {
				break
			}
			_ = withClient(s, func(rdb *redis.Client) error {
				slots, err := rdb.ClusterSlots(ctx).Result()
				if err != nil {
					problem = fmt.Sprintf("CLUSTER SLOTS on %s: %v", s.Addr, err)
					return nil
				}
				for _, r := range slots {
					if len(r.Nodes) != 1+want {
						problem = fmt.Sprintf("%s lists %d nodes for slots %d-%d", s.Addr, len(r.Nodes), r.Start, r.End)
					}
				}
				return nil
			})
		}
		if problem == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s", ctx.Err(), problem)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) start(ctx context.Context, n int) error {
	var certs *tlsFiles
	if c.opts.TLS {
		var err error
		if certs, err = writeTLSFiles(c.dir); err != nil {
			return fmt.Errorf("generating TLS certificates: %w", err)
		}
	}
	for i := 0; i < n; i++ {
		nodeDir := filepath.Join(c.dir, fmt.Sprintf("node-%d", i))
		if err := os.MkdirAll(nodeDir, 0o755); err != nil {
			return err
		}
		s, err := startServer(ctx, nodeDir, c.opts, certs)
		if err != nil {
			return err
		}
		c.Nodes = append(c.Nodes, s)
		c.Addrs = append(c.Addrs, s.Addr)
	}
	c.URL = c.buildURL()

	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	if err := c.form(ctx); err != nil {
		return fmt.Errorf("forming cluster: %w", err)
	}
	if err := c.waitConsistent(ctx); err != nil {
		return fmt.Errorf("cluster not ready: %w", err)
	}
	return nil
}

// Close kills every node and removes the directories if StartCluster
// created them. It is safe on a nil Cluster.
func (c *Cluster) Close() {
	if c == nil {
		return
	}
	for _, s := range c.Nodes {
		s.Kill()
	}
	removeIf(c.ownDir, c.dir)
}

func (c *Cluster) buildURL() string {
	first := c.Nodes[0]
	u := url.URL{Scheme: "redis", Host: first.Addr}
	if first.tlsConfig != nil {
		u.Scheme = "rediss"
	}
	if c.opts.Password != "" {
		u.User = url.UserPassword("", c.opts.Password)
	}
	// Built by hand: url.Values.Encode would escape the colons (%3A), which
	// ParseClusterURL accepts but is harder to read in logs.
	q := make([]string, 0, len(c.Addrs)-1)
	for _, addr := range c.Addrs[1:] {
		q = append(q, "addr="+addr)
	}
	u.RawQuery = strings.Join(q, "&")
	return u.String()
}

// form assigns slots and joins the nodes, like redis-cli --cluster create
// without replicas.
func (c *Cluster) form(ctx context.Context) error {
	n := c.Primaries
	for i, s := range c.Nodes {
		err := withClient(s, func(rdb *redis.Client) error {
			// Distinct config epochs up front, so the nodes need not resolve
			// epoch collisions before they agree on slot ownership.
			if err := rdb.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
				return fmt.Errorf("CLUSTER SET-CONFIG-EPOCH: %w", err)
			}
			if i >= n {
				return nil // a replica to be: no slots
			}
			first, last := i*clusterSlots/n, (i+1)*clusterSlots/n-1
			if err := rdb.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", first, last).Err(); err != nil {
				return fmt.Errorf("CLUSTER ADDSLOTSRANGE %d %d: %w", first, last, err)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("node %s: %w", s.Addr, err)
		}
	}
	// Introducing every node to the first one is enough; gossip does the rest.
	return withClient(c.Nodes[0], func(rdb *redis.Client) error {
		for _, s := range c.Nodes[1:] {
			// The bus port must be given since it is not the default port+10000.
			if err := rdb.Do(ctx, "CLUSTER", "MEET", "127.0.0.1", s.port, s.busPort).Err(); err != nil {
				return fmt.Errorf("CLUSTER MEET %s: %w", s.Addr, err)
			}
		}
		return nil
	})
}

// waitConsistent polls until every node reports cluster_state:ok, knows all
// nodes and returns the same CLUSTER SLOTS map, or ctx ends.
func (c *Cluster) waitConsistent(ctx context.Context) error {
	clients := make([]*redis.Client, len(c.Nodes))
	for i, s := range c.Nodes {
		clients[i] = redis.NewClient(s.ClientOptions())
		defer clients[i].Close()
	}
	var problem string
	for {
		problem = c.checkConsistent(ctx, clients)
		if problem == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (limit %v): %s", ctx.Err(), clusterTimeout, problem)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checkConsistent returns "" when the cluster is ready, else what is not.
func (c *Cluster) checkConsistent(ctx context.Context, clients []*redis.Client) string {
	var want string
	for i, rdb := range clients {
		addr := c.Nodes[i].Addr
		info, err := rdb.ClusterInfo(ctx).Result()
		if err != nil {
			return fmt.Sprintf("CLUSTER INFO on %s: %v", addr, err)
		}
		fields := ParseInfo(info)
		if fields["cluster_state"] != "ok" ||
			fields["cluster_slots_ok"] != strconv.Itoa(clusterSlots) ||
			fields["cluster_known_nodes"] != strconv.Itoa(len(c.Nodes)) {
			return fmt.Sprintf("node %s: cluster_state=%s slots_ok=%s known_nodes=%s",
				addr, fields["cluster_state"], fields["cluster_slots_ok"], fields["cluster_known_nodes"])
		}
		slots, err := rdb.ClusterSlots(ctx).Result()
		if err != nil {
			return fmt.Sprintf("CLUSTER SLOTS on %s: %v", addr, err)
		}
		got := slotMap(slots)
		if i == 0 {
			want = got
		} else if got != want {
			return fmt.Sprintf("slot maps differ: %s has %s, %s has %s", c.Nodes[0].Addr, want, addr, got)
		}
	}
	return ""
}

// ParseInfo parses the "key:value" lines of INFO or CLUSTER INFO; section
// headers ("# Memory") and blank lines are skipped.
func ParseInfo(info string) map[string]string {
	fields := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			fields[k] = v
		}
	}
	return fields
}

// slotMap renders CLUSTER SLOTS as a canonical "start-end@master" list.
func slotMap(slots []redis.ClusterSlot) string {
	parts := make([]string, 0, len(slots))
	for _, s := range slots {
		master := ""
		if len(s.Nodes) > 0 {
			master = s.Nodes[0].Addr
		}
		parts = append(parts, fmt.Sprintf("%d-%d@%s", s.Start, s.End, master))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// withClient runs fn with a short-lived client for s.
func withClient(s *Server, fn func(*redis.Client) error) error {
	rdb := redis.NewClient(s.ClientOptions())
	defer rdb.Close()
	return fn(rdb)
}

// ClusterOptions returns go-redis cluster options seeded with every node
// (password and TLS set up).
func (c *Cluster) ClusterOptions() *redis.ClusterOptions {
	return &redis.ClusterOptions{
		Addrs:     append([]string(nil), c.Addrs...),
		Password:  c.opts.Password,
		TLSConfig: c.Nodes[0].TLSConfig(),
	}
}
