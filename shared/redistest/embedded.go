package redistest

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/embedded"
)

// StartEmbedded starts miniredis (whose Lua is gopher-lua) exactly as
// `fintrans run` and `fintrans replay` start it without REDIS_URL when no
// redis-server is on PATH or EMBEDDED_REDIS=miniredis (embedded.StartRedis),
// and returns a client for it. Both are closed when
// the test ends. It needs no redis-server: tests of the window script run on
// it beside a real redis-server, and must get the same results.
func StartEmbedded(t testing.TB) *redis.Client {
	t.Helper()
	r, err := embedded.StartRedis()
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(r.Close)
	opts, err := redis.ParseURL(r.URL)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}
