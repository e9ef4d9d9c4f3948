-- floor.lua: the least Redis work a transfer can cost in any exact,
-- idempotent detection that keeps its state in Redis, for a lower bound on
-- the window script's cost on a given machine. It speaks window.lua's
-- protocol (same KEYS and ARGV, one answer a transfer) but detects nothing:
-- per transfer, one HMGET of the pair's state and one HSET of it back. No
-- dedupe (a real script also reads and writes the transfer's id: its
-- dedupe mark, a field or a set member; kept in the same hash, the hash
-- grows with every id and both calls slow down), no window sums, no expiry,
-- no evidence, no alert: every real script does at least this much, and its
-- Redis time a transfer is at least this script's. Answers 1 (counted,
-- nothing fired) for every transfer.
--
--   cd shared/devkit && go run ./bench/scriptab -accounts 100,10000 bench/scriptab/floor.lua ../window/window.lua
--   bin/fintrans bench -stages 4 -script shared/devkit/bench/scriptab/floor.lua
--
-- The second gives the whole pipeline's ceiling on the machine with it.
local call = redis.call
local n = tonumber(ARGV[8])
local first = 11 + 2 * tonumber(ARGV[10]) -- ARGV index of the first transfer's arguments
local out = {}
for k = 1, n do
  local a = first + 4 * (k - 1)
  local h = KEYS[2 * k - 1]
  -- newest time, lowest bucket, sequence, the bucket's evidence header and
  -- list, the first transfer, five bucket totals (window.lua's in-order read)
  call('HMGET', h, 't', 'lo', 'n', 'c', 'e', 'f', 'v1', 'v2', 'v3', 'v4', 'v5')
  call('HSET', h, 'n', '1', 'v1', ARGV[a + 2], 't', ARGV[a + 1])
  out[k] = 1
end
return out
