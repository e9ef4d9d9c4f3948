// Package redistest starts real redis-server processes for tests.
//
// Every server listens on a free loopback port, keeps its files in a
// t.TempDir() directory and is killed by t.Cleanup when the test ends. On
// Linux the child also gets Pdeathsig=SIGKILL, so a test binary that crashes
// or is killed does not leak servers.
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
package redistest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// binary is the server executable looked up on PATH.
	binary = "redis-server"

	// readyTimeout bounds how long we wait for a started server to answer PING.
	readyTimeout = 10 * time.Second

	// stopTimeout bounds a graceful SIGTERM shutdown before falling back to SIGKILL.
	stopTimeout = 10 * time.Second

	// startAttempts is how often Start picks new ports when the chosen port
	// was taken by someone else between probing and binding.
	startAttempts = 5

	// missingMsg explains how to get redis-server; CI installs it.
	missingMsg = "redis-server not found on PATH; .ci/run installs it with apt-get install redis-server"
)

// Available reports whether redis-server is on PATH.
func Available() bool {
	_, err := exec.LookPath(binary)
	return err == nil
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

type options struct {
	password   string
	tls        bool
	appendOnly bool
	args       []string

	cluster bool // internal: cluster-enabled node (set by StartCluster)
}

// WithPassword sets requirepass (and masterauth, for cluster nodes). The
// password is part of Server.URL / Cluster.URL and used by Client.
func WithPassword(p string) Option {
	return func(o *options) { o.password = p }
}

// WithTLS serves only TLS: a throw-away CA and an ECDSA server certificate
// (SAN 127.0.0.1, ::1 and localhost) are generated in the temp dir, the plain
// port is disabled (port 0) and clients are not asked for certificates. The
// CA is in Server.CAFile; Client and TLSConfig trust it.
func WithTLS() Option {
	return func(o *options) { o.tls = true }
}

// WithAppendOnly enables the AOF with appendfsync always, so every
// acknowledged write survives Kill and Restart.
func WithAppendOnly() Option {
	return func(o *options) { o.appendOnly = true }
}

// WithArgs appends raw redis-server command-line config, e.g.
// WithArgs("--maxmemory", "10mb"). Later settings override earlier ones.
func WithArgs(args ...string) Option {
	return func(o *options) { o.args = append(o.args, args...) }
}

func buildOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Server is one redis-server process.
type Server struct {
	Addr   string // "127.0.0.1:PORT"
	URL    string // "redis://[:password@]127.0.0.1:PORT/0", scheme rediss with TLS
	CAFile string // PEM CA file when WithTLS, else ""
	Dir    string // working directory (AOF, logs, nodes.conf)

	opts      options
	port      int
	busPort   int         // cluster bus port; 0 for standalone servers
	args      []string    // complete redis-server argv (without the binary)
	tlsConfig *tls.Config // client config trusting our CA; nil without TLS

	mu   sync.Mutex
	cmd  *exec.Cmd     // current process; nil when not running
	done chan struct{} // closed when cmd has been reaped
}

// Start starts a standalone redis-server and waits until it answers PING.
// The server is killed when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	requireRedis(t)
	o := buildOptions(opts)
	dir := t.TempDir()
	var certs *tlsFiles
	if o.tls {
		certs = mustTLSFiles(t, dir)
	}
	return startServer(t, dir, o, certs)
}

// startServer creates and launches a Server in dir. Ports are re-picked when
// the chosen port turns out to be taken.
func startServer(t testing.TB, dir string, o options, certs *tlsFiles) *Server {
	t.Helper()
	s := &Server{Dir: dir, opts: o}
	if certs != nil {
		s.CAFile = certs.caFile
		s.tlsConfig = certs.clientConfig()
	}
	// Registered before the process exists, so it also covers a failed
	// attempt half-way through startServer.
	t.Cleanup(s.Kill)

	var lastErr error
	for attempt := 0; attempt < startAttempts; attempt++ {
		// A cluster node needs a second port for its cluster bus.
		n := 1
		if o.cluster {
			n = 2
		}
		ports, err := freePorts(n)
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		s.setPort(ports[0])
		if o.cluster {
			s.busPort = ports[1]
		}
		s.args = s.buildArgs(certs)
		// User args last so they can override our defaults.
		s.args = append(s.args, o.args...)

		lastErr = s.launch()
		if lastErr == nil {
			return s
		}
		if !errors.Is(lastErr, errPortInUse) {
			break
		}
	}
	t.Fatalf("redistest: starting redis-server: %v", lastErr)
	return nil
}

func (s *Server) setPort(port int) {
	s.port = port
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	u := url.URL{Scheme: "redis", Host: s.Addr, Path: "/0"}
	if s.tlsConfig != nil {
		u.Scheme = "rediss"
	}
	if s.opts.password != "" {
		u.User = url.UserPassword("", s.opts.password)
	}
	s.URL = u.String()
}

// buildArgs returns the redis-server command line for the current port.
func (s *Server) buildArgs(certs *tlsFiles) []string {
	o := s.opts
	args := []string{
		"--bind", "127.0.0.1",
		"--dir", s.Dir,
		"--save", "",
		"--daemonize", "no",
		"--protected-mode", "no",
		"--logfile", filepath.Join(s.Dir, "redis.log"),
	}
	if certs != nil {
		args = append(args,
			"--port", "0",
			"--tls-port", strconv.Itoa(s.port),
			"--tls-cert-file", certs.certFile,
			"--tls-key-file", certs.keyFile,
			"--tls-ca-cert-file", certs.caFile,
			"--tls-auth-clients", "no",
		)
	} else {
		args = append(args, "--port", strconv.Itoa(s.port))
	}
	if o.appendOnly {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	if o.password != "" {
		args = append(args, "--requirepass", o.password, "--masterauth", o.password)
	}
	if o.cluster {
		// An explicit cluster-port (Redis 7.0+) instead of the default
		// port+10000, which may be taken or beyond 65535.
		args = append(args,
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(s.Dir, "nodes.conf"),
			"--cluster-port", strconv.Itoa(s.busPort),
			"--cluster-node-timeout", "2000",
		)
		if certs != nil {
			args = append(args, "--tls-cluster", "yes", "--tls-replication", "yes")
		}
	}
	return args
}

// errPortInUse marks a start failure caused by a port collision; Start
// retries those with new ports.
var errPortInUse = errors.New("port already in use")

// launch starts the process with s.args and waits until it answers PING.
// On failure the process is killed and the error carries the log tail.
func (s *Server) launch() error {
	out, err := os.OpenFile(filepath.Join(s.Dir, "redis.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close() // the child keeps its own descriptor

	cmd := exec.Command(binary, s.args...)
	cmd.Dir = s.Dir
	// Early errors (bad config) go to stdout/stderr before the logfile is open.
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	if err := spawn(cmd); err != nil {
		return fmt.Errorf("exec %s: %w", binary, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	if err := s.waitReady(done); err != nil {
		s.Kill()
		logs := s.logTail()
		if strings.Contains(logs, "Address already in use") {
			err = fmt.Errorf("%w: %v", errPortInUse, err)
		}
		return fmt.Errorf("%w\nargs: %q\n%s", err, s.args, logs)
	}
	return nil
}

// waitReady polls PING until the server answers or it exits or times out.
func (s *Server) waitReady(done <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("redis-server on %s exited during startup", s.Addr)
		default:
		}
		if lastErr = ping(s.Addr, s.tlsConfig, s.opts.password); lastErr == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on %s not ready after %v: %v", s.Addr, readyTimeout, lastErr)
}

// ping sends (AUTH and) PING over a raw RESP connection. A raw connection
// keeps readiness polling free of go-redis retries and log noise.
func ping(addr string, tlsConfig *tls.Config, password string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if tlsConfig != nil {
		conn = tls.Client(conn, tlsConfig)
	}
	if err := conn.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	var req bytes.Buffer
	writeCmd := func(args ...string) {
		fmt.Fprintf(&req, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	if password != "" {
		writeCmd("AUTH", password)
	}
	writeCmd("PING")
	if _, err := conn.Write(req.Bytes()); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	readLine := func() (string, error) {
		line, err := r.ReadString('\n')
		return strings.TrimRight(line, "\r\n"), err
	}
	if password != "" {
		if line, err := readLine(); err != nil {
			return err
		} else if line != "+OK" {
			return fmt.Errorf("AUTH: %s", line)
		}
	}
	line, err := readLine()
	if err != nil {
		return err
	}
	if line != "+PONG" {
		return fmt.Errorf("PING: %s", line) // e.g. -LOADING while the AOF is replayed
	}
	return nil
}

// logTail returns the last lines of redis.out and redis.log for error messages.
func (s *Server) logTail() string {
	const maxLines = 30
	var b strings.Builder
	for _, name := range []string{"redis.out", "redis.log"} {
		data, err := os.ReadFile(filepath.Join(s.Dir, name))
		if err != nil || len(bytes.TrimSpace(data)) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > maxLines {
			lines = lines[len(lines)-maxLines:]
		}
		fmt.Fprintf(&b, "--- tail of %s ---\n%s\n", filepath.Join(s.Dir, name), strings.Join(lines, "\n"))
	}
	return b.String()
}

// running returns the current process and its done channel, or nil.
func (s *Server) running() (*exec.Cmd, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd, s.done
}

// Stop shuts the server down gracefully (SIGTERM, which flushes the AOF) and
// waits for it to exit, falling back to SIGKILL after 10 s. It is a no-op
// when the server is not running.
func (s *Server) Stop() {
	s.signalAndWait(syscall.SIGTERM, stopTimeout)
}

// Kill kills the server with SIGKILL (no shutdown save) and waits for it to
// exit. It is a no-op when the server is not running. Kill also runs at test
// cleanup.
func (s *Server) Kill() {
	s.signalAndWait(os.Kill, 0)
}

// signalAndWait sends sig and waits up to timeout for the process to exit;
// then (or immediately for timeout 0) it sends SIGKILL and waits.
func (s *Server) signalAndWait(sig os.Signal, timeout time.Duration) {
	cmd, done := s.running()
	if cmd == nil {
		return
	}
	if sig != os.Kill {
		_ = cmd.Process.Signal(sig)
		select {
		case <-done:
		case <-time.After(timeout):
		}
	}
	_ = cmd.Process.Kill() // harmless if already exited
	<-done
	s.mu.Lock()
	if s.cmd == cmd {
		s.cmd, s.done = nil, nil
	}
	s.mu.Unlock()
}

// Restart starts the server again on the same port with the same directory
// and configuration, so AOF data (WithAppendOnly) and cluster nodes.conf
// survive. A still running server is stopped gracefully first. It waits until
// the server answers PING.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	// The port was ours a moment ago; redis binds with SO_REUSEADDR, so a
	// collision here is rare, but give a just-exited socket a few chances.
	var err error
	for attempt := 0; attempt < startAttempts; attempt++ {
		if err = s.launch(); err == nil || !errors.Is(err, errPortInUse) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("redistest: restarting redis-server: %v", err)
	}
}

// TLSConfig returns a client TLS config that trusts the server's CA, or nil
// without WithTLS. Each call returns a fresh copy.
func (s *Server) TLSConfig() *tls.Config {
	if s.tlsConfig == nil {
		return nil
	}
	return s.tlsConfig.Clone()
}

// Client returns a go-redis client for the server (password and TLS set up),
// closed when the test ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(s.clientOptions())
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (s *Server) clientOptions() *redis.Options {
	return &redis.Options{
		Addr:      s.Addr,
		Password:  s.opts.password,
		TLSConfig: s.TLSConfig(),
	}
}

// freePorts returns n distinct loopback ports that were free a moment ago.
// All listeners are held until every port is picked so they differ.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// spawnReqs feeds the spawner goroutine, see spawn.
var (
	spawnOnce sync.Once
	spawnReqs chan spawnReq
)

type spawnReq struct {
	cmd *exec.Cmd
	err chan error
}

// spawn starts cmd from a goroutine locked to one OS thread for the life of
// the test binary. Pdeathsig fires when the thread that forked the child
// exits, not the process; Go may end a thread while the program keeps running
// (a goroutine exiting with LockOSThread held), which would kill the server
// mid-test. A thread that never exits makes Pdeathsig mean "process died".
func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnReqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread lives until exit
			for r := range spawnReqs {
				r.err <- r.cmd.Start()
			}
		}()
	})
	errc := make(chan error, 1)
	spawnReqs <- spawnReq{cmd: cmd, err: errc}
	return <-errc
}
