package embedded_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/embedded"
	"github.com/fintrans/fintrans/shared/redistest"
)

// engineOf checks that r answers and tells which engine answered: a real
// redis-server answers INFO server with its run_id; miniredis refuses the
// section.
func engineOf(t *testing.T, r *embedded.Redis) string {
	t.Helper()
	opts, err := redis.ParseURL(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if info, err := rdb.Info(ctx, "server").Result(); err == nil && strings.Contains(info, "run_id:") {
		return embedded.RedisServer
	}
	return embedded.Miniredis
}

func closed(t *testing.T, r *embedded.Redis) {
	t.Helper()
	r.Close()
	r.Close() // idempotent
	if c, err := net.DialTimeout("tcp", r.Addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still listening after Close", r.Engine)
	}
}

func TestStartEngines(t *testing.T) {
	ctx := context.Background()
	hasServer := redistest.Available()
	for _, tc := range []struct {
		engine string
		path   bool // redis-server on PATH
		want   string
	}{
		{embedded.Miniredis, true, embedded.Miniredis},
		{embedded.Auto, false, embedded.Miniredis},
		{"", false, embedded.Miniredis},
		{embedded.Auto, true, embedded.RedisServer},
		{"", true, embedded.RedisServer},
		{embedded.RedisServer, true, embedded.RedisServer},
	} {
		t.Run(tc.engine+map[bool]string{true: " with redis-server", false: " without redis-server"}[tc.path], func(t *testing.T) {
			if tc.path && !hasServer {
				redistest.Start(t) // skips, or fails on CI
			}
			if !tc.path {
				t.Setenv("PATH", t.TempDir())
			}
			r, err := embedded.Start(ctx, tc.engine)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.Engine != tc.want || engineOf(t, r) != tc.want {
				t.Errorf("engine %q (answers as %s), want %s", r.Engine, engineOf(t, r), tc.want)
			}
			if (r.Binary != "") != (tc.want == embedded.RedisServer) {
				t.Errorf("binary %q for %s", r.Binary, r.Engine)
			}
			closed(t, r)
		})
	}

	t.Run("redis-server without redis-server", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		if r, err := embedded.Start(ctx, embedded.RedisServer); err == nil || !strings.Contains(err.Error(), "EMBEDDED_REDIS=redis-server") {
			r.Close()
			t.Fatalf("want an error naming EMBEDDED_REDIS, got %v", err)
		}
	})
	t.Run("unknown engine", func(t *testing.T) {
		if r, err := embedded.Start(ctx, "keydb"); err == nil {
			r.Close()
			t.Fatal("unknown engine started")
		}
	})
}

func TestForConfigLogsTheEngine(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	t.Setenv("PATH", t.TempDir()) // no redis-server: auto falls back to miniredis
	cfg := config.Default()
	stop, err := embedded.ForConfig(context.Background(), &cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if !strings.HasPrefix(cfg.RedisURL, "redis://127.0.0.1:") {
		t.Errorf("REDIS_URL not pointed at the embedded Redis: %q", cfg.RedisURL)
	}
	for _, want := range []string{"EMBEDDED_REDIS=auto", "engine=miniredis", `why="no redis-server on PATH"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log %q lacks %s", logs.String(), want)
		}
	}

	// With REDIS_URL set, nothing starts.
	logs.Reset()
	cfg.RedisURL = "redis://elsewhere:6379/0"
	stop2, err := embedded.ForConfig(context.Background(), &cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	stop2()
	if cfg.RedisURL != "redis://elsewhere:6379/0" || logs.Len() != 0 {
		t.Errorf("REDIS_URL set: url %q, log %q", cfg.RedisURL, logs.String())
	}
}
