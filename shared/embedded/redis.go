package embedded

import (
	"fmt"

	"github.com/alicebob/miniredis/v2"
)

// Redis is an in-process Redis (miniredis) on a free loopback port. It is the
// zero-install default of the local binary only: tests of fintrans's Lua
// script run against a real redis-server.
//
// Differences from a real Redis that matter to fintrans:
//   - TTLs follow the wall clock because StartRedis turns on
//     miniredis's ClockTTL (by default miniredis never expires keys unless
//     told to FastForward); expired keys are removed lazily, on the next
//     command.
//   - Lua runs on gopher-lua (Lua 5.1 like Redis) with base, table, string,
//     math and cjson; the bit, struct and cmsgpack libraries are missing.
//   - Data lives in memory only and is lost on Close.
type Redis struct {
	// URL is a go-redis URL for the server, e.g. redis://127.0.0.1:40123/0.
	URL string
	// Addr is the host:port of the server.
	Addr string

	srv *miniredis.Miniredis
}

// StartRedis starts an embedded Redis on 127.0.0.1 and a free port.
func StartRedis() (*Redis, error) {
	m := miniredis.NewMiniRedis()
	m.ClockTTL(true)
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("embedded redis: %w", err)
	}
	return &Redis{
		URL:  "redis://" + m.Addr() + "/0",
		Addr: m.Addr(),
		srv:  m,
	}, nil
}

// Close stops the server. It is safe to call more than once.
func (r *Redis) Close() {
	if r == nil || r.srv == nil {
		return
	}
	r.srv.Close()
}
