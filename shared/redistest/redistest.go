// Package redistest starts real redis-server processes for tests.
//
// It is a thin testing.TB layer over package redisproc: every server listens
// on a free loopback port, keeps its files in a t.TempDir() directory and is
// killed by t.Cleanup when the test ends. On Linux the child also gets
// Pdeathsig=SIGKILL, so a test binary that crashes or is killed does not leak
// servers.
//
// Typical use:
//
//	srv := redistest.Start(t, redistest.WithPassword("secret"))
//	rdb := srv.Client(t)
//
//	cl := redistest.StartCluster(t, 3)
//	crdb := cl.Client(t)
//
// When redis-server is not on PATH the helpers skip the test, or fail it when
// the CI environment variable is set (CI must never silently skip).
//
// Test tooling, not product: no function image and no serving path of the
// binary (serve, consume) links it (go list -deps proves it; see README).
package redistest

import (
	"context"
	"crypto/tls"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/redisproc"
)

// missingMsg explains how to get redis-server; CI installs it.
const missingMsg = "redis-server not found on PATH; .ci/run installs it with apt-get install redis-server"

// Available reports whether redis-server is on PATH.
func Available() bool {
	return redisproc.Available()
}

// requireRedis skips the test (or fails it on CI) when redis-server is missing.
func requireRedis(t testing.TB) {
	t.Helper()
	if Available() {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s", missingMsg)
	}
	t.Skipf("%s (CI fails instead of skipping)", missingMsg)
}

// Option configures Start and StartCluster.
type Option func(*options)

// options are the redisproc options the Option funcs fill in.
type options struct {
	redisproc.Options
}

// WithPassword sets requirepass (and masterauth, for cluster nodes). The
// password is part of Server.URL / Cluster.URL and used by Client.
func WithPassword(p string) Option {
	return func(o *options) { o.Password = p }
}

// WithTLS serves only TLS: a throw-away CA and an ECDSA server certificate
// (SAN 127.0.0.1, ::1 and localhost) are generated in the temp dir, the plain
// port is disabled (port 0) and clients are not asked for certificates. The
// CA is in Server.CAFile; Client and TLSConfig trust it.
func WithTLS() Option {
	return func(o *options) { o.TLS = true }
}

// WithAppendOnly enables the AOF with appendfsync always, so every
// acknowledged write survives Kill and Restart.
func WithAppendOnly() Option {
	return func(o *options) { o.AppendOnly = true }
}

// WithArgs appends raw redis-server command-line config, e.g.
// WithArgs("--maxmemory", "10mb"). Later settings override earlier ones.
func WithArgs(args ...string) Option {
	return func(o *options) { o.Args = append(o.Args, args...) }
}

// buildOptions applies opts and puts the server files in a fresh t.TempDir().
func buildOptions(t testing.TB, opts []Option) redisproc.Options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	o.Dir = t.TempDir()
	return o.Options
}

// Server is one redis-server process.
type Server struct {
	Addr   string // "127.0.0.1:PORT"
	URL    string // "redis://[:password@]127.0.0.1:PORT/0", scheme rediss with TLS
	CAFile string // PEM CA file when WithTLS, else ""
	Dir    string // working directory (AOF, logs, nodes.conf)

	proc *redisproc.Server
}

// newServer wraps p and kills it when the test ends.
func newServer(t testing.TB, p *redisproc.Server) *Server {
	t.Cleanup(p.Kill)
	return &Server{Addr: p.Addr, URL: p.URL, CAFile: p.CAFile, Dir: p.Dir, proc: p}
}

// Start starts a standalone redis-server and waits until it answers PING.
// The server is killed when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	requireRedis(t)
	p, err := redisproc.Start(context.Background(), buildOptions(t, opts))
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return newServer(t, p)
}

// Stop shuts the server down gracefully (SIGTERM, which flushes the AOF) and
// waits for it to exit, falling back to SIGKILL after 10 s. It is a no-op
// when the server is not running.
func (s *Server) Stop() { s.proc.Stop() }

// Kill kills the server with SIGKILL (no shutdown save) and waits for it to
// exit. It is a no-op when the server is not running. Kill also runs at test
// cleanup.
func (s *Server) Kill() { s.proc.Kill() }

// Restart starts the server again on the same port with the same directory
// and configuration, so AOF data (WithAppendOnly) and cluster nodes.conf
// survive. A still running server is stopped gracefully first. It waits until
// the server answers PING.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.proc.Restart(context.Background()); err != nil {
		t.Fatalf("redistest: %v", err)
	}
}

// TLSConfig returns a client TLS config that trusts the server's CA, or nil
// without WithTLS. Each call returns a fresh copy.
func (s *Server) TLSConfig() *tls.Config { return s.proc.TLSConfig() }

// Client returns a go-redis client for the server (password and TLS set up),
// closed when the test ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(s.proc.ClientOptions())
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Cluster is a Redis Cluster of masters without replicas.
type Cluster struct {
	Addrs []string // node addresses, Nodes[i].Addr
	// URL lists every node: "redis://127.0.0.1:P1?addr=127.0.0.1:P2&addr=...",
	// the form redis.ParseClusterURL accepts (rediss and ":password@" as for
	// Server.URL). ParseClusterURL does not know the test CA: with WithTLS set
	// ClusterOptions.TLSConfig = Nodes[0].TLSConfig() after parsing.
	URL   string
	Nodes []*Server // the primaries first, then their replicas
	// Primaries is how many of Nodes started as primaries.
	Primaries int

	proc *redisproc.Cluster
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
	p, err := redisproc.StartCluster(context.Background(), n, buildOptions(t, opts))
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return wrapCluster(t, p)
}

func wrapCluster(t testing.TB, p *redisproc.Cluster) *Cluster {
	c := &Cluster{Addrs: p.Addrs, URL: p.URL, Primaries: p.Primaries, proc: p}
	for _, node := range p.Nodes {
		c.Nodes = append(c.Nodes, newServer(t, node))
	}
	return c
}

// StartClusterWithReplicas starts a Redis Cluster of primaries (>= 3)
// primaries with replicas replicas each (redisproc.StartClusterWithReplicas):
// it returns once every replica's link is up and every node lists them.
// Nodes holds the primaries, then the replicas; ReplicasOf names them.
func StartClusterWithReplicas(t testing.TB, primaries, replicas int, opts ...Option) *Cluster {
	t.Helper()
	requireRedis(t)
	p, err := redisproc.StartClusterWithReplicas(context.Background(), primaries, replicas, buildOptions(t, opts))
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return wrapCluster(t, p)
}

// ReplicasOf returns the replicas primary i (an index in Nodes below
// Primaries) started with.
func (c *Cluster) ReplicasOf(i int) []*Server {
	var out []*Server
	for _, r := range c.proc.ReplicasOf(i) {
		for _, s := range c.Nodes {
			if s.proc == r {
				out = append(out, s)
			}
		}
	}
	return out
}

// Client returns a go-redis cluster client seeded with every node (password
// and TLS set up), closed when the test ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	rdb := redis.NewClusterClient(c.proc.ClusterOptions())
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}
