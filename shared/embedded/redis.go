package embedded

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/redisproc"
)

// Engines of the embedded Redis: the values of EMBEDDED_REDIS.
const (
	// Auto starts a redis-server process when one is on PATH, and
	// miniredis otherwise.
	Auto = "auto"
	// RedisServer starts a redis-server process from PATH (an error when
	// there is none): on loopback, in a temporary directory, without
	// persistence, stopped on Close (and killed with this process on
	// Linux).
	RedisServer = "redis-server"
	// Miniredis runs miniredis in this process: nothing to install.
	Miniredis = "miniredis"
)

// Engines lists the engines, Auto first.
var Engines = []string{Auto, RedisServer, Miniredis}

// Redis is the embedded Redis of the local binary (`fintrans run`, `fintrans
// replay`) when REDIS_URL is unset, on a free loopback port: a redis-server
// process when one is on PATH (EMBEDDED_REDIS=auto, the default, or
// redis-server), else miniredis in this process, the zero-install fallback
// (or with EMBEDDED_REDIS=miniredis). The window script's tests run on
// miniredis as well as on real redis-server processes, with the same
// results.
//
// Differences of miniredis from a real Redis that matter to fintrans:
//   - TTLs follow the wall clock, advanced by a background pass (by default
//     miniredis never expires keys unless told to FastForward). Not
//     miniredis's ClockTTL: it walks and sorts every key on every database
//     access, so a replay slowed down as its state grew (a few hundred
//     transfers/s after 20,000 lines). The pass runs every 10 ms or, on a
//     large database, every 100 times its own duration (at most 1% of a
//     core); a key expires at most that late.
//   - Lua runs on gopher-lua (Lua 5.1 like Redis) with base, table, string,
//     math and cjson; the bit, struct and cmsgpack libraries are missing,
//     and a few functions differ (string.match without a match, tonumber,
//     numbers printed as strings, ZSCORE's format): the header of
//     shared/window/window.lua lists them and how the script avoids them.
//   - Every script call starts a fresh Lua state (the compiled script is
//     cached) and every redis.call goes through RESP encoding and parsing:
//     the window script costs several times what it costs in Redis (the
//     README's Performance section has the figures).
//   - Data lives in memory only and is lost on Close.
type Redis struct {
	// URL is a go-redis URL for the server, e.g. redis://127.0.0.1:40123/0.
	URL string
	// Addr is the host:port of the server.
	Addr string
	// Engine is what runs: RedisServer or Miniredis.
	Engine string
	// Binary is the redis-server executable (RedisServer only).
	Binary string

	proc *redisproc.Server

	srv  *miniredis.Miniredis
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// minExpiryInterval is the shortest time between two expiry passes.
const minExpiryInterval = 10 * time.Millisecond

// Resolve tells which engine Start(engine) runs (RedisServer or Miniredis)
// and, for RedisServer, the redis-server executable from PATH.
func Resolve(engine string) (string, string, error) {
	bin, lookErr := exec.LookPath(redisproc.DefaultBinary)
	switch engine {
	case Miniredis:
		return Miniredis, "", nil
	case "", Auto:
		if lookErr != nil {
			return Miniredis, "", nil
		}
	case RedisServer:
		if lookErr != nil {
			return "", "", fmt.Errorf("embedded redis: EMBEDDED_REDIS=%s but %w (install redis-server, or use %s)", RedisServer, lookErr, Miniredis)
		}
	default:
		return "", "", fmt.Errorf("embedded redis: unknown engine %q (want one of %v)", engine, Engines)
	}
	return RedisServer, bin, nil
}

// Start starts the embedded Redis of engine (Auto, RedisServer or
// Miniredis; "" means Auto) on 127.0.0.1 and a free port.
func Start(ctx context.Context, engine string) (*Redis, error) {
	engine, bin, err := Resolve(engine)
	if err != nil {
		return nil, err
	}
	if engine == Miniredis {
		return StartRedis()
	}
	p, err := redisproc.Start(ctx, redisproc.Options{Binary: bin})
	if err != nil {
		return nil, fmt.Errorf("embedded redis: %w", err)
	}
	return &Redis{URL: p.URL, Addr: p.Addr, Engine: RedisServer, Binary: bin, proc: p}, nil
}

// StartRedis starts miniredis on 127.0.0.1 and a free port.
func StartRedis() (*Redis, error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("embedded redis: %w", err)
	}
	r := &Redis{
		URL:    "redis://" + m.Addr() + "/0",
		Addr:   m.Addr(),
		Engine: Miniredis,
		srv:    m,
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go r.expire()
	return r, nil
}

// expire advances every TTL by the wall-clock time elapsed since the last
// pass (FastForward expires the keys whose TTL reaches zero), until Close.
func (r *Redis) expire() {
	defer close(r.done)
	last := time.Now()
	wait := minExpiryInterval
	for {
		select {
		case <-r.stop:
			return
		case <-time.After(wait):
		}
		now := time.Now()
		r.srv.FastForward(now.Sub(last))
		last = now
		wait = max(minExpiryInterval, 100*time.Since(now))
	}
}

// Close stops the server. It is safe to call more than once.
func (r *Redis) Close() {
	if r == nil {
		return
	}
	if r.proc != nil {
		r.proc.Close()
		return
	}
	if r.srv == nil {
		return
	}
	r.once.Do(func() {
		close(r.stop)
		<-r.done
		r.srv.Close()
	})
}

// ForConfig starts the embedded Redis of cfg.EmbeddedRedis when
// cfg.RedisURL is unset, points cfg.RedisURL at it and logs which engine
// runs (and, for auto, why); stop stops it. With REDIS_URL set it does
// nothing and stop is a no-op.
func ForConfig(ctx context.Context, cfg *config.Config, log *slog.Logger) (stop func(), err error) {
	if cfg.RedisURL != "" {
		return func() {}, nil
	}
	r, err := Start(ctx, cfg.EmbeddedRedis)
	if err != nil {
		return nil, err
	}
	cfg.RedisURL = r.URL
	attrs := []any{"EMBEDDED_REDIS", cfg.EmbeddedRedis, "engine", r.Engine, "url", r.URL}
	switch {
	case r.Engine == RedisServer:
		attrs = append(attrs, "binary", r.Binary)
	case cfg.EmbeddedRedis != Miniredis:
		attrs = append(attrs, "why", "no redis-server on PATH")
	}
	log.Info("REDIS_URL not set: started an embedded Redis", attrs...)
	return r.Close, nil
}
