-- fintrans window script: transfers applied one after another, each exactly
-- as if it ran alone, the whole call atomically. A call carries the transfers
-- of one batch (on a Redis Cluster, of one pair: all keys of a call share a
-- hash slot); it pays the script's fixed cost and reads its configuration
-- once for all of them.
--
-- Per pair, two keys:
-- h: hash of the pair's state
--      t      newest event time seen (ms)
--      lo     lowest bucket index still kept
--      n      transfer sequence number of the pair
--      w<i>   total (cents) of the window starting at i*g ms, g being
--             gcd(size, slide): its HINCRBY tells at once whether this
--             transfer takes the window over the threshold
--      a<i>   alert of the window starting at i*g:
--             "seq:total:count:time:idkey" of the transfer that fired it
--      e<b>   evidence of the g-wide bucket b: "count,newest|" (entries,
--             newest event time among them), then the entries
--             "seq,time,amount,len:id" one after another (len = bytes of
--             id), at most `cap`, the oldest by (event time, seq)
-- s: zset of transfers seen (member idkey, score event time): dedupe, and the
--    count of a window when it fires
--
-- KEYS: h1, s1, h2, s2, ... (one pair per transfer, in order)
-- ARGV: threshold cents, window size ms, slide ms, bucket width g ms, allowed
--       lateness ms, cap, ttl ms, n transfers, B0, nb, then nb decimal bucket
--       indices B0, B0+1, ... (the caller formats them, so that the script
--       formats almost no number: Lua's number-to-string conversion is one of
--       the costliest things it would do), then per transfer:
--       idkey, time ms, amount cents, "amount,len:id" (its evidence tail).
--
-- Returns one answer per transfer, {status, info, alert...}:
--   status 1 counted (info = sequence number), 2 duplicate, 3 late (info =
--   newest time seen); each alert is {windowStart, total, count, fireTime,
--   seq, {e<b> strings of the window's buckets}}: the caller lists the
--   entries with a sequence number up to seq, oldest first, at most cap.
local thr = tonumber(ARGV[1])
local size = tonumber(ARGV[2])
local slide = tonumber(ARGV[3])
local g = tonumber(ARGV[4])
local late = tonumber(ARGV[5])
local cap = tonumber(ARGV[6])
local ttl = ARGV[7]
local n = tonumber(ARGV[8])
local B0 = tonumber(ARGV[9])
local nb = tonumber(ARGV[10])
local first = 11 + nb -- ARGV index of the first transfer's arguments
local span = size / g -- buckets per window

local function d(x) return string.format('%d', x) end

-- The decimal form of bucket index j: from ARGV when the caller sent it.
local function js(j)
  local k = j - B0
  if k >= 0 and k < nb then return ARGV[11 + k] end
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

-- The evidence strings of the buckets of the window starting at st.
local function evidence(h, st)
  if cap == 0 then return {} end
  local b = st / g
  local fields = {}
  for j = 0, span - 1 do fields[#fields + 1] = 'e' .. js(b + j) end
  local out = {}
  for _, v in ipairs(redis.call('HMGET', h, unpack(fields))) do
    if v then out[#out + 1] = v end
  end
  return out
end

-- The entries of an evidence string from position pos: {start, stop, time,
-- seq} each.
local function entries(es, pos)
  local out = {}
  while pos <= #es do
    local a, b, seq, tm, len = string.find(es, '^(%d+),(%-?%d+),%d+,(%d+):', pos)
    if not a then break end
    local stop = b + tonumber(len)
    out[#out + 1] = {pos, stop, tonumber(tm), tonumber(seq)}
    pos = stop + 1
  end
  return out
end

-- Add the transfer's entry to the evidence of bucket bs, whose string is es
-- ("count,newest|" then the entries; nil when the bucket has none yet): at
-- most cap entries, the oldest by (time, seq). A new entry has the highest
-- seq of the pair, so it enters a full bucket only when its time is older
-- than the newest there.
local function addEvidence(set, bs, es, seq, t, tstr, ev)
  local entry = seq .. ',' .. tstr .. ',' .. ev
  if not es then
    set[#set + 1] = 'e' .. bs
    set[#set + 1] = '1,' .. tstr .. '|' .. entry
    return
  end
  local c, m, p = string.match(es, '^(%d+),(%-?%d+)|()')
  local cnt, mt = tonumber(c), tonumber(m)
  if cnt < cap then
    set[#set + 1] = 'e' .. bs
    if t > mt then m = tstr end
    set[#set + 1] = (cnt + 1) .. ',' .. m .. '|' .. string.sub(es, p) .. entry
    return
  end
  if t >= mt then return end
  -- Full: the newest entry (by time, then seq) makes room.
  local all = entries(es, p)
  local top = all[1]
  for k = 2, #all do
    local x = all[k]
    if x[3] > top[3] or (x[3] == top[3] and x[4] > top[4]) then top = x end
  end
  local newest = t
  for _, x in ipairs(all) do
    if x ~= top and x[3] > newest then newest = x[3] end
  end
  set[#set + 1] = 'e' .. bs
  set[#set + 1] = c .. ',' .. d(newest) .. '|' .. string.sub(es, p, top[1] - 1) .. string.sub(es, top[2] + 1) .. entry
end

-- The alert of the window starting at st if transfer idkey fired it.
local function refire(h, st, rec, key)
  local seq, total, count, ft, who = string.match(rec, '^(%d+):(%d+):(%d+):(%-?%d+):(.*)$')
  if who ~= key then return nil end
  return {st, tonumber(total), tonumber(count), tonumber(ft), tonumber(seq), evidence(h, st)}
end

local function apply(h, s, idkey, tstr, amtstr, ev)
  local t = tonumber(tstr)
  local amt = tonumber(amtstr)
  local b = math.floor(t / g)
  local bs = js(b)

  -- Late: older than the allowed lateness behind the newest time of the
  -- pair. Nothing changes.
  local meta = redis.call('HMGET', h, 't', 'lo', 'n', 'e' .. bs)
  local newest = tonumber(meta[1])
  if newest and t < newest - late then
    return {3, newest}
  end

  -- A delivery seen before: change nothing, but fire again the alerts that
  -- this very transfer fired, so that an alert lost between Redis and the
  -- sink is sent again by the redelivery.
  if redis.call('ZADD', s, 'NX', tstr, idkey) == 0 then
    local ws = windows(tonumber(redis.call('ZSCORE', s, idkey)))
    local fields = {}
    for i, st in ipairs(ws) do fields[i] = 'a' .. js(st / g) end
    local recs = redis.call('HMGET', h, unpack(fields))
    local out = {2, 0}
    for i, rec in ipairs(recs) do
      local a = rec and refire(h, ws[i], rec, idkey)
      if a then out[#out + 1] = a end
    end
    return out
  end

  -- Count it: the pair's sequence number, its newest time if this is it,
  -- its evidence, and what no transfer can reach any more.
  local seq = (tonumber(meta[3]) or 0) + 1
  local advanced = not newest or t > newest
  local set = {'n', seq}
  if advanced then
    set[3] = 't'
    set[4] = tstr
  end
  if cap > 0 then
    addEvidence(set, bs, meta[4], seq, t, tstr, ev)
  end
  if advanced then
    local keep = math.floor((t - late - size) / g)
    local lo = tonumber(meta[2])
    if not lo or keep > lo then
      set[#set + 1] = 'lo'
      set[#set + 1] = js(keep)
    end
    if lo and keep > lo then
      local del = {}
      if keep - lo <= 64 then
        for j = lo, keep - 1 do
          local jstr = js(j)
          del[#del + 1] = 'w' .. jstr
          del[#del + 1] = 'a' .. jstr
          del[#del + 1] = 'e' .. jstr
        end
      else
        for _, f in ipairs(redis.call('HKEYS', h)) do
          local j = tonumber(string.match(f, '^[wae](%-?%d+)$'))
          if j and j < keep then del[#del + 1] = f end
        end
      end
      if #del > 0 then redis.call('HDEL', h, unpack(del)) end
      redis.call('ZREMRANGEBYSCORE', s, '-inf', '(' .. d(keep * g))
    end
  end
  redis.call('HSET', h, unpack(set))

  -- Expiry: refreshed when the pair enters a new bucket, and every 64th
  -- transfer.
  if not newest or b > math.floor(newest / g) or seq % 64 == 1 then
    redis.call('PEXPIRE', h, ttl)
    redis.call('PEXPIRE', s, ttl)
  end

  -- Add the amount to every window holding the transfer. Totals only grow,
  -- so the one transfer that takes a window from at most the threshold to
  -- over it fires that window's alert, whatever order the transfers arrive in.
  local out = {1, seq}
  for _, st in ipairs(windows(t)) do
    local w = js(st / g)
    local total = redis.call('HINCRBY', h, 'w' .. w, amtstr)
    if total > thr and total - amt <= thr then
      local count = redis.call('ZCOUNT', s, d(st), '(' .. d(st + size))
      local rec = seq .. ':' .. d(total) .. ':' .. d(count) .. ':' .. tstr .. ':' .. idkey
      redis.call('HSET', h, 'a' .. w, rec)
      out[#out + 1] = {st, total, count, t, seq, evidence(h, st)}
    end
  end
  return out
end

local results = {}
for k = 1, n do
  local a = first + 4 * (k - 1)
  results[k] = apply(KEYS[2 * k - 1], KEYS[2 * k], ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3])
end
return results
