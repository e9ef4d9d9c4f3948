// Package redisproc runs redis-server processes on loopback.
//
// Every server listens on a free 127.0.0.1 port, keeps its files in its own
// directory and is stopped by Stop, Kill or Close. On Linux the child also
// gets Pdeathsig=SIGKILL, so a program that crashes or is killed does not
// leak servers.
//
// Functions return errors; package redistest wraps them for tests
// (testing.TB, t.TempDir, t.Cleanup) and the benchmark uses them directly.
//
// Test tooling, not product: no function image and no serving path of the
// binary (serve, consume) links it (go list -deps proves it; see README).
package redisproc

import (
	"bufio"
	"bytes"
	"context"
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
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// DefaultBinary is the server executable looked up on PATH when
	// Options.Binary is empty.
	DefaultBinary = "redis-server"

	// readyTimeout bounds how long we wait for a started server to answer PING.
	readyTimeout = 10 * time.Second

	// stopTimeout bounds a graceful SIGTERM shutdown before falling back to SIGKILL.
	stopTimeout = 10 * time.Second

	// startAttempts is how often Start picks new ports when the chosen port
	// was taken by someone else between probing and binding.
	startAttempts = 5
)

// Available reports whether redis-server (DefaultBinary) is on PATH.
func Available() bool {
	_, err := exec.LookPath(DefaultBinary)
	return err == nil
}

// Options configures Start and StartCluster. The zero value is a plain,
// non-persistent server in a fresh temporary directory.
type Options struct {
	// Binary is the redis-server executable; "" means DefaultBinary.
	Binary string

	// Dir is the working directory (logs, AOF, nodes.conf; the TLS files
	// too). It must exist and is left in place. "" makes a temporary
	// directory that Close removes. For StartCluster, Dir is the parent of
	// one node-N subdirectory per node.
	Dir string

	// Password sets requirepass (and masterauth, for cluster nodes). It is
	// part of Server.URL and of ClientOptions.
	Password string

	// TLS serves only TLS: a throw-away CA and an ECDSA server certificate
	// (SAN 127.0.0.1, ::1 and localhost) are generated in Dir, the plain
	// port is disabled (port 0) and clients are not asked for certificates.
	// The CA is in Server.CAFile; ClientOptions and TLSConfig trust it.
	TLS bool

	// AppendOnly enables the AOF with appendfsync always, so every
	// acknowledged write survives Kill and Restart.
	AppendOnly bool

	// Args is appended as raw redis-server command-line config, e.g.
	// {"--maxmemory", "10mb"}; it overrides the defaults.
	Args []string

	cluster bool // cluster-enabled node (set by StartCluster)
}

func (o Options) binary() string {
	if o.Binary == "" {
		return DefaultBinary
	}
	return o.Binary
}

// Server is one redis-server process.
type Server struct {
	Addr   string // "127.0.0.1:PORT"
	URL    string // "redis://[:password@]127.0.0.1:PORT/0", scheme rediss with TLS
	CAFile string // PEM CA file when Options.TLS, else ""
	Dir    string // working directory (AOF, logs, nodes.conf)

	opts      Options
	ownDir    bool // Dir was created by Start; Close removes it
	port      int
	busPort   int         // cluster bus port; 0 for standalone servers
	args      []string    // complete redis-server argv (without the binary)
	tlsConfig *tls.Config // client config trusting our CA; nil without TLS

	mu   sync.Mutex
	cmd  *exec.Cmd     // current process; nil when not running
	done chan struct{} // closed when cmd has been reaped
}

// Start starts a standalone redis-server and waits until it answers PING
// (at most 10 s, or until ctx ends). On error no process is left running.
func Start(ctx context.Context, o Options) (*Server, error) {
	o.cluster = false
	dir, ownDir, err := prepareDir(o.Dir)
	if err != nil {
		return nil, err
	}
	var certs *tlsFiles
	if o.TLS {
		if certs, err = writeTLSFiles(dir); err != nil {
			removeIf(ownDir, dir)
			return nil, fmt.Errorf("generating TLS certificates: %w", err)
		}
	}
	s, err := startServer(ctx, dir, o, certs)
	if err != nil {
		removeIf(ownDir, dir)
		return nil, err
	}
	s.ownDir = ownDir
	return s, nil
}

// prepareDir returns dir, or a new temporary directory (own = true) when
// dir is "".
func prepareDir(dir string) (string, bool, error) {
	if dir != "" {
		return dir, false, nil
	}
	dir, err := os.MkdirTemp("", "redisproc-")
	if err != nil {
		return "", false, err
	}
	return dir, true, nil
}

func removeIf(own bool, dir string) {
	if own {
		_ = os.RemoveAll(dir)
	}
}

// startServer creates and launches a Server in dir. Ports are re-picked when
// the chosen port turns out to be taken.
func startServer(ctx context.Context, dir string, o Options, certs *tlsFiles) (*Server, error) {
	s := &Server{Dir: dir, opts: o}
	if certs != nil {
		s.CAFile = certs.caFile
		s.tlsConfig = certs.clientConfig()
	}
	var lastErr error
	for attempt := 0; attempt < startAttempts; attempt++ {
		// A cluster node needs a second port for its cluster bus.
		n := 1
		if o.cluster {
			n = 2
		}
		ports, err := FreePorts(n)
		if err != nil {
			return nil, err
		}
		s.setPort(ports[0])
		if o.cluster {
			s.busPort = ports[1]
		}
		s.args = s.buildArgs(certs)
		// User args last so they can override our defaults.
		s.args = append(s.args, o.Args...)

		lastErr = s.launch(ctx)
		if lastErr == nil {
			return s, nil
		}
		if !errors.Is(lastErr, errPortInUse) {
			break
		}
	}
	return nil, fmt.Errorf("starting redis-server: %w", lastErr)
}

func (s *Server) setPort(port int) {
	s.port = port
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	u := url.URL{Scheme: "redis", Host: s.Addr, Path: "/0"}
	if s.tlsConfig != nil {
		u.Scheme = "rediss"
	}
	if s.opts.Password != "" {
		u.User = url.UserPassword("", s.opts.Password)
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
	if o.AppendOnly {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	if o.Password != "" {
		args = append(args, "--requirepass", o.Password, "--masterauth", o.Password)
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
func (s *Server) launch(ctx context.Context) error {
	out, err := os.OpenFile(filepath.Join(s.Dir, "redis.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close() // the child keeps its own descriptor

	bin := s.opts.binary()
	cmd := exec.Command(bin, s.args...)
	cmd.Dir = s.Dir
	// Early errors (bad config) go to stdout/stderr before the logfile is open.
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	if err := spawn(cmd); err != nil {
		return fmt.Errorf("exec %s: %w", bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	if err := s.waitReady(ctx, done); err != nil {
		s.Kill()
		logs := s.logTail()
		if strings.Contains(logs, "Address already in use") {
			err = fmt.Errorf("%w: %v", errPortInUse, err)
		}
		return fmt.Errorf("%w\nargs: %q\n%s", err, s.args, logs)
	}
	return nil
}

// waitReady polls PING until the server answers, exits, times out or ctx
// ends.
func (s *Server) waitReady(ctx context.Context, done <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("redis-server on %s exited during startup", s.Addr)
		case <-ctx.Done():
			return fmt.Errorf("redis-server on %s: %w", s.Addr, ctx.Err())
		default:
		}
		if lastErr = ping(s.Addr, s.tlsConfig, s.opts.Password); lastErr == nil {
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
// exit. It is a no-op when the server is not running. Dir is kept, so the
// server can be restarted.
func (s *Server) Kill() {
	s.signalAndWait(os.Kill, 0)
}

// Close kills the server and removes Dir if Start created it. It is safe on
// a nil Server.
func (s *Server) Close() {
	if s == nil {
		return
	}
	s.Kill()
	removeIf(s.ownDir, s.Dir)
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
// and configuration, so AOF data (Options.AppendOnly) and cluster nodes.conf
// survive. A still running server is stopped gracefully first. It waits until
// the server answers PING.
func (s *Server) Restart(ctx context.Context) error {
	s.Stop()
	// The port was ours a moment ago; redis binds with SO_REUSEADDR, so a
	// collision here is rare, but give a just-exited socket a few chances.
	var err error
	for attempt := 0; attempt < startAttempts; attempt++ {
		if err = s.launch(ctx); err == nil || !errors.Is(err, errPortInUse) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("restarting redis-server: %w", err)
	}
	return nil
}

// TLSConfig returns a client TLS config that trusts the server's CA, or nil
// without Options.TLS. Each call returns a fresh copy.
func (s *Server) TLSConfig() *tls.Config {
	if s.tlsConfig == nil {
		return nil
	}
	return s.tlsConfig.Clone()
}

// ClientOptions returns go-redis options for the server (password and TLS
// set up).
func (s *Server) ClientOptions() *redis.Options {
	return &redis.Options{
		Addr:      s.Addr,
		Password:  s.opts.Password,
		TLSConfig: s.TLSConfig(),
	}
}

// FreePorts returns n distinct loopback ports that were free a moment ago.
// All listeners are held until every port is picked so they differ.
func FreePorts(n int) ([]int, error) {
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
// the process. Pdeathsig fires when the thread that forked the child exits,
// not the process; Go may end a thread while the program keeps running (a
// goroutine exiting with LockOSThread held), which would kill the server
// early. A thread that never exits makes Pdeathsig mean "process died".
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
