package redistest

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestStandalonePingSetGet(t *testing.T) {
	t.Parallel()
	s := Start(t)
	if !strings.HasPrefix(s.Addr, "127.0.0.1:") {
		t.Errorf("Addr = %q, want 127.0.0.1:PORT", s.Addr)
	}
	if want := "redis://" + s.Addr + "/0"; s.URL != want {
		t.Errorf("URL = %q, want %q", s.URL, want)
	}
	if s.CAFile != "" {
		t.Errorf("CAFile = %q without TLS", s.CAFile)
	}

	rdb := s.Client(t)
	c := ctx(t)
	if got, err := rdb.Ping(c).Result(); err != nil || got != "PONG" {
		t.Fatalf("PING = %q, %v", got, err)
	}
	if err := rdb.Set(c, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := rdb.Get(c, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET k = %q, %v", got, err)
	}

	// The URL works with go-redis's own parser.
	o, err := redis.ParseURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	viaURL := redis.NewClient(o)
	defer viaURL.Close()
	if got, err := viaURL.Get(c, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET k via URL = %q, %v", got, err)
	}
}

func TestWithArgs(t *testing.T) {
	t.Parallel()
	s := Start(t, WithArgs("--maxmemory", "10mb"))
	got, err := s.Client(t).ConfigGet(ctx(t), "maxmemory").Result()
	if err != nil {
		t.Fatal(err)
	}
	if got["maxmemory"] != "10485760" {
		t.Fatalf("maxmemory = %q, want 10485760", got["maxmemory"])
	}
}

func TestPassword(t *testing.T) {
	t.Parallel()
	s := Start(t, WithPassword("s3cret/:@"))
	if want := "redis://:s3cret%2F%3A%40@" + s.Addr + "/0"; s.URL != want {
		t.Errorf("URL = %q, want %q", s.URL, want)
	}
	c := ctx(t)
	if err := s.Client(t).Set(c, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET with password: %v", err)
	}

	noPass := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer noPass.Close()
	err := noPass.Get(c, "k").Err()
	if err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("GET without password: err = %v, want NOAUTH", err)
	}

	o, err := redis.ParseURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	if o.Password != "s3cret/:@" {
		t.Fatalf("password from URL = %q", o.Password)
	}
	viaURL := redis.NewClient(o)
	defer viaURL.Close()
	if got, err := viaURL.Get(c, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET via URL = %q, %v", got, err)
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	s := Start(t, WithTLS(), WithPassword("pw"))
	if want := "rediss://:pw@" + s.Addr + "/0"; s.URL != want {
		t.Errorf("URL = %q, want %q", s.URL, want)
	}
	c := ctx(t)
	if err := s.Client(t).Set(c, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET over TLS: %v", err)
	}

	// The URL plus a pool built from CAFile (what a service would do).
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", s.CAFile)
	}
	o, err := redis.ParseURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	o.TLSConfig.RootCAs = pool
	viaURL := redis.NewClient(o)
	defer viaURL.Close()
	if got, err := viaURL.Get(c, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET via URL+CAFile = %q, %v", got, err)
	}

	// Without our CA the certificate must be rejected.
	noCA := redis.NewClient(&redis.Options{
		Addr: s.Addr, Password: "pw", MaxRetries: -1,
		TLSConfig: &tls.Config{ServerName: "127.0.0.1"},
	})
	defer noCA.Close()
	err = noCA.Ping(c).Err()
	if err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("PING without CA: err = %v, want unknown authority", err)
	}

	// Plain TCP is not served.
	plain := redis.NewClient(&redis.Options{
		Addr: s.Addr, Password: "pw", MaxRetries: -1,
		ReadTimeout: time.Second, DialTimeout: time.Second,
	})
	defer plain.Close()
	if err := plain.Ping(c).Err(); err == nil {
		t.Fatal("PING without TLS succeeded on a TLS-only server")
	}
}

func TestRestartKeepsAppendOnlyData(t *testing.T) {
	t.Parallel()
	s := Start(t, WithAppendOnly())
	addr := s.Addr
	rdb := s.Client(t)
	c := ctx(t)
	if err := rdb.Set(c, "durable", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}

	// SIGKILL: only appendfsync always makes the write survive.
	s.Kill()
	if err := rdb.Ping(c).Err(); err == nil {
		t.Fatal("PING succeeded after Kill")
	}
	s.Restart(t)
	if s.Addr != addr {
		t.Fatalf("Addr changed on Restart: %s -> %s", addr, s.Addr)
	}
	if got, err := rdb.Get(c, "durable").Result(); err != nil || got != "1" {
		t.Fatalf("GET after Kill+Restart = %q, %v", got, err)
	}

	// Graceful Stop, and Restart of a running server, keep data too.
	if err := rdb.Set(c, "second", "2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s.Restart(t)
	s.Restart(t)
	if got, err := rdb.MGet(c, "durable", "second").Result(); err != nil || fmt.Sprint(got) != "[1 2]" {
		t.Fatalf("MGET after Stop+Restart = %v, %v", got, err)
	}
}

func TestCluster(t *testing.T) {
	t.Parallel()
	cl := StartCluster(t, 3)
	testCluster(t, cl)
}

func TestClusterTLSPassword(t *testing.T) {
	t.Parallel()
	cl := StartCluster(t, 3, WithTLS(), WithPassword("pw"))
	if !strings.HasPrefix(cl.URL, "rediss://:pw@") {
		t.Errorf("URL = %q, want rediss://:pw@...", cl.URL)
	}
	testCluster(t, cl)
}

// testCluster checks that keys spread over all masters and that URL parses.
func testCluster(t *testing.T, cl *Cluster) {
	t.Helper()
	if len(cl.Addrs) != 3 || len(cl.Nodes) != 3 {
		t.Fatalf("got %d addrs, %d nodes, want 3", len(cl.Addrs), len(cl.Nodes))
	}
	rdb := cl.Client(t)
	c := ctx(t)

	var mu sync.Mutex
	var masters []string
	err := rdb.ForEachMaster(c, func(ctx context.Context, m *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		masters = append(masters, m.Options().Addr)
		return m.FlushDB(ctx).Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(masters)
	if want := slices.Sorted(slices.Values(cl.Addrs)); !slices.Equal(masters, want) {
		t.Fatalf("ForEachMaster saw %v, want %v", masters, want)
	}

	// Keys with different hash tags hash to different slots, and so to
	// different nodes; the cluster client must route each correctly.
	slots := map[int64]bool{}
	for i := 0; i < 30; i++ {
		key := fmt.Sprintf("{tag%d}:k", i)
		if err := rdb.Set(c, key, i, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
		slot, err := rdb.ClusterKeySlot(c, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		slots[slot] = true
		if got, err := rdb.Get(c, key).Int(); err != nil || got != i {
			t.Fatalf("GET %s = %d, %v", key, got, err)
		}
	}
	if len(slots) < 2 {
		t.Fatalf("30 hash tags mapped to %d slot(s)", len(slots))
	}
	perNode := map[string]int64{}
	for _, n := range cl.Nodes {
		size, err := n.Client(t).DBSize(c).Result()
		if err != nil {
			t.Fatal(err)
		}
		perNode[n.Addr] = size
		if size == 0 {
			t.Errorf("node %s holds no keys", n.Addr)
		}
	}
	t.Logf("keys per node: %v", perNode)

	// URL is what ParseClusterURL understands.
	o, err := redis.ParseClusterURL(cl.URL)
	if err != nil {
		t.Fatalf("ParseClusterURL(%q): %v", cl.URL, err)
	}
	if !slices.Equal(o.Addrs, cl.Addrs) {
		t.Fatalf("ParseClusterURL addrs = %v, want %v", o.Addrs, cl.Addrs)
	}
	if o.TLSConfig != nil {
		o.TLSConfig = cl.Nodes[0].TLSConfig() // the parsed config lacks our CA
	}
	viaURL := redis.NewClusterClient(o)
	defer viaURL.Close()
	if got, err := viaURL.Get(c, "{tag7}:k").Int(); err != nil || got != 7 {
		t.Fatalf("GET via cluster URL = %d, %v", got, err)
	}
}

// fakeTB records Skipf/Fatalf instead of acting on a real test.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped, f.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// runFake runs fn with a fakeTB on its own goroutine (Skipf/Fatalf Goexit).
func runFake(t *testing.T, fn func(testing.TB)) *fakeTB {
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f
}

func TestMissingRedisSkipsOrFailsOnCI(t *testing.T) {
	// Not parallel: it changes PATH and CI for the whole process.
	t.Setenv("PATH", t.TempDir())
	if Available() {
		t.Fatal("Available() with an empty PATH")
	}

	t.Setenv("CI", "")
	f := runFake(t, func(tb testing.TB) { Start(tb) })
	if !f.skipped || !strings.Contains(f.msg, "apt-get install redis-server") ||
		!strings.Contains(f.msg, "(CI fails instead of skipping)") {
		t.Errorf("without CI: skipped=%v msg=%q", f.skipped, f.msg)
	}

	t.Setenv("CI", "true")
	f = runFake(t, func(tb testing.TB) { StartCluster(tb, 3) })
	if !f.failed || !strings.Contains(f.msg, "redis-server not found on PATH") {
		t.Errorf("with CI: failed=%v msg=%q", f.failed, f.msg)
	}
}

// crashChildEnv makes TestCrashChild start a server and hang, so that
// TestCrashedTestDoesNotLeakServer can SIGKILL it.
const crashChildEnv = "REDISTEST_CRASH_CHILD"

func TestCrashChild(t *testing.T) {
	if os.Getenv(crashChildEnv) == "" {
		t.Skip("helper process for TestCrashedTestDoesNotLeakServer")
	}
	s := Start(t)
	fmt.Printf("ADDR=%s\n", s.Addr)
	time.Sleep(time.Minute) // the parent kills us long before
}

// A test binary killed without running its cleanups must not leave
// redis-server behind (Pdeathsig).
func TestCrashedTestDoesNotLeakServer(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("Pdeathsig is Linux-only")
	}
	requireRedis(t)
	child := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	child.Env = append(os.Environ(), crashChildEnv+"=1")
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()

	var addr string
	for sc := bufio.NewScanner(out); sc.Scan(); {
		if a, ok := strings.CutPrefix(sc.Text(), "ADDR="); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		t.Fatal("child did not report a server address")
	}
	probe := redis.NewClient(&redis.Options{Addr: addr})
	defer probe.Close()
	if err := probe.Ping(ctx(t)).Err(); err != nil {
		t.Fatalf("child's server not answering: %v", err)
	}

	_ = child.Process.Kill()
	_ = child.Wait()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return // server gone
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s still running after its test binary was killed", addr)
		}
	}
}

func TestStartFailureReportsLog(t *testing.T) {
	t.Parallel()
	f := runFake(t, func(tb testing.TB) { Start(tb, WithArgs("--no-such-directive", "1")) })
	if !f.failed || !strings.Contains(f.msg, "no-such-directive") || !strings.Contains(f.msg, "tail of") {
		t.Fatalf("failed=%v msg=%q", f.failed, f.msg)
	}
}
