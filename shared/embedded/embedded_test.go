package embedded_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/embedded"
)

// fraudScript exercises the commands fintrans's detection script relies on.
const fraudScript = `
local total = redis.call('HINCRBY', KEYS[1], 'total', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'count', 1)
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
local inWindow = redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[4], '+inf')
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local hm = redis.call('HMGET', KEYS[1], 'total', 'count', 'missing')
local decoded = cjson.decode('{"ok":true}')
return {total, #inWindow, hm[1], hm[2], hm[3] == false and 'nil' or 'set', tostring(decoded.ok)}
`

func TestRedisEvalSha(t *testing.T) {
	r, err := embedded.StartRedis()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !strings.HasPrefix(r.URL, "redis://127.0.0.1:") {
		t.Fatalf("URL = %q", r.URL)
	}
	opts, err := redis.ParseURL(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	sha, err := rdb.ScriptLoad(ctx, fraudScript).Result()
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"pair:a:b", "win:a:b"}
	run := func(amount, score int, member string) []any {
		t.Helper()
		res, err := rdb.EvalSha(ctx, sha, keys, amount, score, member, 1000, 60000).Result()
		if err != nil {
			t.Fatal(err)
		}
		return res.([]any)
	}
	run(700, 1000, "tx1")
	run(300, 500, "tx0") // out of the window (score < 1000)
	got := run(250, 2000, "tx2")
	want := []any{int64(1250), int64(2), "1250", "3", "nil", "true"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("EVALSHA = %#v, want %#v", got, want)
	}
	if ttl := rdb.PTTL(ctx, keys[0]).Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("PTTL = %v, want (0, 1m]", ttl)
	}

	// Unknown script: NOSCRIPT, as with a real server (go-redis's Script
	// helper relies on it to fall back to EVAL).
	if err := rdb.EvalSha(ctx, strings.Repeat("0", 40), keys).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOSCRIPT") {
		t.Errorf("EVALSHA of unknown sha: %v", err)
	}

	// TTLs follow the wall clock.
	if err := rdb.Set(ctx, "short", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	rdb.PExpire(ctx, "short", 50*time.Millisecond)
	time.Sleep(120 * time.Millisecond)
	if n := rdb.Exists(ctx, "short").Val(); n != 0 {
		t.Error("key with a 50ms TTL still exists after 120ms")
	}

	r.Close()
	r.Close() // idempotent
	if c, err := net.DialTimeout("tcp", r.Addr, time.Second); err == nil {
		c.Close()
		t.Error("redis still listening after Close")
	}
}
