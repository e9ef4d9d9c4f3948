package window_test

import (
	"context"
	"fmt"
	"testing"
)

// The Lua the window script relies on gives the same answers on a real
// redis-server and on the embedded Redis (gopher-lua): the constructs of
// window.lua, and the safe forms it uses where the engines differ (see the
// script's header). A miniredis upgrade that changes one of them fails
// here, by name, before the reference suite fails somewhere inside the
// script.
func TestEnginesAgreeOnTheLuaOfTheScript(t *testing.T) {
	probes := []struct{ name, lua string }{
		{"match into a local, no match", `local j = string.match('t', '^[vae](%-?%d+)$') return tostring(j)`},
		{"match, position capture", `local c, m, p = string.match('3,1500771600123|rest', '^(%d+),(%-?%d+)|()') return {c, m, p}`},
		{"find anchored at init", `local a, b, s = string.find('xx12,-5,7,2:ab', '^(%d+),(%-?%d+),%d+,(%d+):', 3) return {a, b, s}`},
		{"find anchored at init, no match", `return tostring(string.find('xx12,', '^(%d+),', 2))`},
		{"tonumber of plain digits", `return {tonumber('1500771600123') - 1500771600000, tonumber('-120000') + 1, tostring(tonumber(false))}`},
		{"score of a round time", `redis.call('ZADD', KEYS[1], '2000000000000', 'm') local s = redis.call('ZSCORE', KEYS[1], 'm')
			return string.format('%d', tonumber(s) or tonumber((string.gsub(s, 'e', '.0e', 1))))`},
		{"score of an ordinary time", `redis.call('ZADD', KEYS[1], '1500771600123', 'n') local s = redis.call('ZSCORE', KEYS[1], 'n')
			return string.format('%d', tonumber(s) or tonumber((string.gsub(s, 'e', '.0e', 1))))`},
		{"decimal strings in arithmetic", `local t, m = '1500771600123', '-120000'
			return {string.format('%d', t + 0), m + 0, ('7' + 0) + 1, math.floor(('1500771600123' + 0) / 120000)}`},
		{"format %d of large integers", `return string.format('%d|%d|%d', 2^53, -1500771600123, 12500641)`},
		{"small counts joined", `return (4 + 1) .. ',' .. 7`},
		{"floor, division, modulo", `return {math.floor(-1 / 120000), math.floor(1500771600123 / 120000), 65 % 64, 1500771600000 / 120000}`},
		{"unpack with bounds", `return {unpack({'a', 'b', 'c', 'd'}, 2, 3)}`},
		{"integer total to HSET", `redis.call('HSET', KEYS[2], 'v', 123456789012345 + 1) return redis.call('HGET', KEYS[2], 'v')`},
		{"HMGET of missing fields", `local r = redis.call('HMGET', KEYS[2], 'v', 'nope') return {r[1], type(r[2])}`},
		{"ZADD NX, ZCOUNT", `return {redis.call('ZADD', KEYS[1], 'NX', '5', 'm'), redis.call('ZADD', KEYS[1], 'NX', '5', 'x'),
			redis.call('ZCOUNT', KEYS[1], '0', '(2000000000000')}`},
		{"EXISTS, PEXPIRE", `return {redis.call('EXISTS', 'none'), redis.call('PEXPIRE', KEYS[2], '86400000')}`},
		{"numbers returned", `return {1500771600000, 12.9, -12.9, {1, {'a', false}}}`},
		{"KEYS and ARGV", `return type(KEYS[1]) .. type(ARGV[1]) .. ARGV[1]`},
		{"a global is refused", `return tostring(pcall(function() undefined_global = 1 end))`},
	}
	ctx := context.Background()
	answers := map[string][]string{}
	for _, e := range engines {
		rdb := e.start(t)
		for _, p := range probes {
			v, err := rdb.Eval(ctx, p.lua, []string{"z", "h"}, "42").Result()
			if err != nil {
				t.Errorf("%s on %s: %v", p.name, e.name, err)
			}
			answers[p.name] = append(answers[p.name], fmt.Sprintf("%#v", v))
		}
	}
	for _, p := range probes {
		a := answers[p.name]
		if len(a) != len(engines) {
			continue
		}
		for i := 1; i < len(a); i++ {
			if a[i] != a[0] {
				t.Errorf("%s: %s answers %s, %s answers %s", p.name, engines[0].name, a[0], engines[i].name, a[i])
			}
		}
	}
}
