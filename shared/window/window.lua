-- fintrans window script: one transfer, applied atomically.
--
-- KEYS[1] h: hash of the pair's state
--              t      newest event time seen (ms)
--              lo     lowest bucket index still kept
--              n      transfer sequence number of the pair
--              w<i>   total (cents) of the window starting at i*g ms, g being
--                     gcd(size, slide): its HINCRBY tells at once whether
--                     this transfer takes the window over the threshold
--              a<i>   alert of the window starting at i*g:
--                     "seq:total:count:time:idkey" of the transfer that fired it
-- KEYS[2] s: zset of transfers seen (member idkey, score event time): dedupe,
--            and the count of a window when it fires
-- KEYS[3] e: zset of evidence (member "seq:amount:id", score event time),
--            at most `cap` per bucket, the oldest by event time
--
-- ARGV: idkey, time ms, amount cents, threshold cents, window size ms,
--       slide ms, bucket width g ms, allowed lateness ms, cap, ttl ms, id,
--       then b0, b0, b0+1, ..., b1: decimal indices i (time i*g) from the
--       oldest window start holding the transfer on (the caller formats them,
--       so that the script formats almost no number: Lua's number-to-string
--       conversion is one of the costliest things it would do).
--
-- Returns {status, info, alert...}:
--   status 1 counted (info = sequence number), 2 duplicate, 3 late (info =
--   newest time seen); each alert is {windowStart, total, count, fireTime,
--   {evidence member, score, ...}}.
local h, s, e = KEYS[1], KEYS[2], KEYS[3]
local idkey = ARGV[1]
local tstr = ARGV[2]
local t = tonumber(tstr)
local amtstr = ARGV[3]
local amt = tonumber(amtstr)
local thr = tonumber(ARGV[4])
local size = tonumber(ARGV[5])
local slide = tonumber(ARGV[6])
local g = tonumber(ARGV[7])
local late = tonumber(ARGV[8])
local cap = tonumber(ARGV[9])
local ttl = ARGV[10]
local txid = ARGV[11]
local b0 = tonumber(ARGV[12])

local function d(x) return string.format('%d', x) end

-- The decimal form of bucket index j: from ARGV when the caller sent it.
local function js(j)
  if j >= b0 then
    local v = ARGV[13 + j - b0]
    if v then return v end
  end
  return d(j)
end

-- The windows [st, st+size) holding time x, newest start first: st is a
-- multiple of slide with x - size < st <= x.
local function windows(x)
  local ws = {}
  local st = math.floor(x / slide) * slide
  while st > x - size do
    ws[#ws + 1] = st
    st = st - slide
  end
  return ws
end

-- The evidence of the window starting at st, as known when transfer number
-- maxseq fired it: oldest first, at most cap.
local function evidence(st, maxseq)
  local out = {}
  if cap == 0 then return out end
  local r = redis.call('ZRANGEBYSCORE', e, d(st), '(' .. d(st + size), 'WITHSCORES')
  for k = 1, #r, 2 do
    local sq = tonumber(string.match(r[k], '^(%d+):'))
    if sq <= maxseq then
      out[#out + 1] = r[k]
      out[#out + 1] = r[k + 1]
      if #out >= 2 * cap then break end
    end
  end
  return out
end

-- The alert of the window starting at st if transfer idkey fired it.
local function refire(st, rec, key)
  local seq, total, count, ft, who = string.match(rec, '^(%d+):(%d+):(%d+):(%-?%d+):(.*)$')
  if who ~= key then return nil end
  return {st, tonumber(total), tonumber(count), tonumber(ft), evidence(st, tonumber(seq))}
end

-- Late: older than the allowed lateness behind the newest time of the pair.
-- Nothing changes.
local meta = redis.call('HMGET', h, 't', 'lo', 'n')
local newest = tonumber(meta[1])
if newest and t < newest - late then
  return {3, newest}
end

-- A delivery seen before: change nothing, but fire again the alerts that this
-- very transfer fired, so that an alert lost between Redis and the sink is
-- sent again by the redelivery.
if redis.call('ZADD', s, 'NX', tstr, idkey) == 0 then
  local ws = windows(tonumber(redis.call('ZSCORE', s, idkey)))
  local fields = {}
  for i, st in ipairs(ws) do fields[i] = 'a' .. js(st / g) end
  local recs = redis.call('HMGET', h, unpack(fields))
  local out = {2, 0}
  for i, rec in ipairs(recs) do
    local a = rec and refire(ws[i], rec, idkey)
    if a then out[#out + 1] = a end
  end
  return out
end

-- Count it: the pair's sequence number, and its newest time if this is it.
local seq = (tonumber(meta[3]) or 0) + 1
local advanced = not newest or t > newest
if advanced then
  redis.call('HSET', h, 'n', seq, 't', tstr)
else
  redis.call('HSET', h, 'n', seq)
end
local b = math.floor(t / g)
if cap > 0 then
  -- Evidence: at most cap transfers per g-wide bucket, the oldest.
  local lo_t, hi_t = d(b * g), '(' .. d(b * g + g)
  local member = seq .. ':' .. amtstr .. ':' .. txid
  if seq <= cap or redis.call('ZCOUNT', e, lo_t, hi_t) < cap then
    redis.call('ZADD', e, tstr, member)
  else
    local last = redis.call('ZREVRANGEBYSCORE', e, hi_t, lo_t, 'WITHSCORES', 'LIMIT', 0, 1)
    if last[2] and t < tonumber(last[2]) then
      redis.call('ZREM', e, last[1])
      redis.call('ZADD', e, tstr, member)
    end
  end
end

-- Drop what no transfer can reach any more.
if advanced then
  local keep = math.floor((t - late - size) / g)
  local lo = tonumber(meta[2])
  if not lo then
    redis.call('HSET', h, 'lo', d(keep))
  elseif keep > lo then
    local del = {}
    if keep - lo <= 64 then
      for j = lo, keep - 1 do
        local jstr = d(j)
        del[#del + 1] = 'w' .. jstr
        del[#del + 1] = 'a' .. jstr
      end
    else
      for _, f in ipairs(redis.call('HKEYS', h)) do
        local j = tonumber(string.match(f, '^[wa](%-?%d+)$'))
        if j and j < keep then del[#del + 1] = f end
      end
    end
    if #del > 0 then redis.call('HDEL', h, unpack(del)) end
    redis.call('HSET', h, 'lo', d(keep))
    redis.call('ZREMRANGEBYSCORE', s, '-inf', '(' .. d(keep * g))
    if cap > 0 then redis.call('ZREMRANGEBYSCORE', e, '-inf', '(' .. d(keep * g)) end
  end
end
-- Expiry: refreshed when the pair enters a new bucket, and every 64th transfer.
if not newest or b > math.floor(newest / g) or seq % 64 == 1 then
  redis.call('PEXPIRE', h, ttl)
  redis.call('PEXPIRE', s, ttl)
  if cap > 0 then redis.call('PEXPIRE', e, ttl) end
end

-- Add the amount to every window holding the transfer. Totals only grow, so
-- the one transfer that takes a window from at most the threshold to over it
-- fires that window's alert, whatever order the transfers arrive in.
local out = {1, seq}
for _, st in ipairs(windows(t)) do
  local w = js(st / g)
  local total = redis.call('HINCRBY', h, 'w' .. w, amtstr)
  if total > thr and total - amt <= thr then
    local count = redis.call('ZCOUNT', s, d(st), '(' .. d(st + size))
    local rec = seq .. ':' .. d(total) .. ':' .. d(count) .. ':' .. tstr .. ':' .. idkey
    redis.call('HSET', h, 'a' .. w, rec)
    out[#out + 1] = {st, total, count, t, evidence(st, seq)}
  end
end
return out
