package redistest

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// clusterSlots is the number of hash slots in Redis Cluster.
	clusterSlots = 16384

	// clusterTimeout bounds how long StartCluster waits for the nodes to agree.
	clusterTimeout = 20 * time.Second
)

// Cluster is a Redis Cluster of masters without replicas.
type Cluster struct {
	Addrs []string // node addresses, Nodes[i].Addr
	// URL lists every node: "redis://127.0.0.1:P1?addr=127.0.0.1:P2&addr=...",
	// the form redis.ParseClusterURL accepts (rediss and ":password@" as for
	// Server.URL). ParseClusterURL does not know the test CA: with WithTLS set
	// ClusterOptions.TLSConfig = Nodes[0].TLSConfig() after parsing.
	URL   string
	Nodes []*Server

	opts options
}

// StartCluster starts an n-node (n >= 3) Redis Cluster of masters. Each node
// has its own dir and nodes.conf, owns an even share of the 16384 slots
// (CLUSTER ADDSLOTSRANGE) and is joined with CLUSTER MEET. It returns once
// every node reports cluster_state:ok and all agree on the slot map (at most
// 20 s). Options apply to every node; with WithTLS all nodes share one CA and
// certificate and the cluster bus uses TLS too.
func StartCluster(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	requireRedis(t)
	if n < 3 {
		t.Fatalf("redistest: StartCluster needs at least 3 nodes, got %d", n)
	}
	o := buildOptions(opts)
	o.cluster = true

	var certs *tlsFiles
	if o.tls {
		certs = mustTLSFiles(t, t.TempDir())
	}
	c := &Cluster{opts: o}
	for i := 0; i < n; i++ {
		s := startServer(t, t.TempDir(), o, certs)
		c.Nodes = append(c.Nodes, s)
		c.Addrs = append(c.Addrs, s.Addr)
	}
	c.URL = c.buildURL()

	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	if err := c.form(ctx); err != nil {
		t.Fatalf("redistest: forming cluster: %v", err)
	}
	if err := c.waitConsistent(ctx); err != nil {
		t.Fatalf("redistest: cluster not ready: %v", err)
	}
	return c
}

func (c *Cluster) buildURL() string {
	first := c.Nodes[0]
	u := url.URL{Scheme: "redis", Host: first.Addr}
	if first.tlsConfig != nil {
		u.Scheme = "rediss"
	}
	if c.opts.password != "" {
		u.User = url.UserPassword("", c.opts.password)
	}
	// Built by hand: url.Values.Encode would escape the colons (%3A), which
	// ParseClusterURL accepts but is harder to read in test output.
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
	n := len(c.Nodes)
	for i, s := range c.Nodes {
		err := withClient(s, func(rdb *redis.Client) error {
			// Distinct config epochs up front, so the nodes need not resolve
			// epoch collisions before they agree on slot ownership.
			if err := rdb.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
				return fmt.Errorf("CLUSTER SET-CONFIG-EPOCH: %w", err)
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
		clients[i] = redis.NewClient(s.clientOptions())
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
			return fmt.Errorf("after %v: %s", clusterTimeout, problem)
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
		fields := parseInfo(info)
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

// parseInfo parses "key:value" lines of CLUSTER INFO.
func parseInfo(info string) map[string]string {
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
	rdb := redis.NewClient(s.clientOptions())
	defer rdb.Close()
	return fn(rdb)
}

// Client returns a go-redis cluster client seeded with every node (password
// and TLS set up), closed when the test ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:     append([]string(nil), c.Addrs...),
		Password:  c.opts.password,
		TLSConfig: c.Nodes[0].TLSConfig(),
	})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}
