package embedded

import (
	"fmt"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// Redis is an in-process Redis (miniredis) on a free loopback port. It is the
// zero-install default of the local binary (`fintrans run`, `fintrans
// replay`) when REDIS_URL is unset. The window script's tests run on it as
// well as on real redis-server processes, with the same results.
//
// Differences from a real Redis that matter to fintrans:
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

	srv  *miniredis.Miniredis
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// minExpiryInterval is the shortest time between two expiry passes.
const minExpiryInterval = 10 * time.Millisecond

// StartRedis starts an embedded Redis on 127.0.0.1 and a free port.
func StartRedis() (*Redis, error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("embedded redis: %w", err)
	}
	r := &Redis{
		URL:  "redis://" + m.Addr() + "/0",
		Addr: m.Addr(),
		srv:  m,
		stop: make(chan struct{}),
		done: make(chan struct{}),
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
	if r == nil || r.srv == nil {
		return
	}
	r.once.Do(func() {
		close(r.stop)
		<-r.done
		r.srv.Close()
	})
}
