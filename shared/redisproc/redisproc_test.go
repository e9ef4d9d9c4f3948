package redisproc

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The redistest package covers TLS, AUTH, Restart and clusters in depth;
// these tests cover what only the error-returning API promises.

func requireRedis(t *testing.T) {
	t.Helper()
	if !Available() {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server not found on PATH")
		}
		t.Skip("redis-server not found on PATH")
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// A server in its own temporary directory answers, and Close removes both
// the process and the directory.
func TestStartCloseRemovesOwnDir(t *testing.T) {
	t.Parallel()
	requireRedis(t)
	s, err := Start(ctx(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rdb := redis.NewClient(s.ClientOptions())
	defer rdb.Close()
	if err := rdb.Ping(ctx(t)).Err(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Fatalf("dir %s still there after Close: %v", s.Dir, err)
	}
	if err := ping(s.Addr, nil, ""); err == nil {
		t.Fatal("PING succeeded after Close")
	}
}

func TestStartFailureReturnsLogTail(t *testing.T) {
	t.Parallel()
	requireRedis(t)
	dir := t.TempDir()
	_, err := Start(ctx(t), Options{Dir: dir, Args: []string{"--no-such-directive", "1"}})
	if err == nil || !strings.Contains(err.Error(), "no-such-directive") || !strings.Contains(err.Error(), "tail of") {
		t.Fatalf("err = %v", err)
	}
	if _, statErr := os.Stat(dir); statErr != nil {
		t.Fatalf("caller's Dir removed: %v", statErr)
	}
}

func TestMissingBinary(t *testing.T) {
	t.Parallel()
	_, err := Start(ctx(t), Options{Binary: "no-such-redis-server"})
	if !errors.Is(err, exec.ErrNotFound) {
		t.Fatalf("err = %v, want exec.ErrNotFound", err)
	}
}

func TestPortInUseIsDetected(t *testing.T) {
	t.Parallel()
	requireRedis(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := &Server{Dir: t.TempDir()}
	t.Cleanup(s.Kill)
	s.setPort(l.Addr().(*net.TCPAddr).Port)
	s.args = s.buildArgs(nil)
	if err := s.launch(ctx(t)); !errors.Is(err, errPortInUse) {
		t.Fatalf("launch on a busy port: err = %v, want errPortInUse", err)
	}
}

func TestCluster(t *testing.T) {
	t.Parallel()
	requireRedis(t)
	if _, err := StartCluster(ctx(t), 2, Options{}); err == nil {
		t.Fatal("StartCluster with 2 nodes succeeded")
	}
	c, err := StartCluster(ctx(t), 3, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rdb := redis.NewClusterClient(c.ClusterOptions())
	defer rdb.Close()
	for _, k := range []string{"{a}", "{b}", "{c}", "{d}"} {
		if err := rdb.Set(ctx(t), k, 1, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
	c.Close()
	if _, err := os.Stat(c.dir); !os.IsNotExist(err) {
		t.Fatalf("cluster dir %s still there after Close: %v", c.dir, err)
	}
}
