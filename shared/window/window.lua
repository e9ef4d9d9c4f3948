-- fintrans window script: transfers applied one after another, each exactly
-- as if it ran alone, the whole call atomically. A call carries the transfers
-- of one batch (on a Redis Cluster, of one pair: all keys of a call share a
-- hash slot); it pays the script's fixed cost and reads its configuration
-- once for all of them.
--
-- The caller sends a pair's transfers of a call one after another; the
-- script keeps the pair's hash in a Lua table while it applies them (one
-- HMGET of every field they need, one HSET and one HDEL of what changed,
-- written before the next pair's), so a pair's many transfers in a batch
-- cost one read and one write of its state.
--
-- Per group (a pair, or for rules grouping by sender or receiver, one
-- account: the caller names the keys, and "pair" below means the group),
-- two keys, and one more for each bucket with a long evidence list:
-- h: hash of the pair's state
--      t      newest event time seen (ms)
--      lo     lowest bucket index still kept
--      n      transfer sequence number of the pair
--      v<b>   total of the g-wide bucket b (times b*g to b*g+g), g being
--             gcd(size, slide): the sum of its amounts (cents), or with
--             aggregate count its number of transfers; a window's total is
--             the sum of its size/g buckets, read with the pair's state in
--             one HMGET
--      m<b>   with aggregate count only: the sum of bucket b's amounts
--             (cents), read when a window fires
--      a<i>   alert of the window starting at i*g:
--             "seq:total:count:time:idkey" of the transfer that fired it
--      f      "idkey:time:tail" of the pair's first transfer, until the
--             second one creates s and moves it there: tail is its evidence
--             tail ("amount,len:id"), kept here and not yet in its bucket's
--             e<b> (written with the second transfer), so that a pair seen
--             once costs one field less; "idkey:time" when its evidence is
--             already listed (a first transfer that crossed the threshold
--             alone, or cap 0)
--      e<b>   evidence of the g-wide bucket b while it is short (up to
--             INLINE entries): "count,bound|" (entries, an event time no
--             entry is newer than), then the entries
--             "seq,time,amount,len:id" one after another (len = bytes of
--             id): the `cap` oldest by (event time, seq), and fewer than
--             `cap` others (see addInline)
--      c<b>   once the list is longer, its "count,bound", the entries being
--             in the bucket's evidence key (a bucket has e<b> or c<b>)
--      k      the buckets that have an evidence key: "b,b,..."
--      x      Redis time (ms) when every evidence key of the pair was last
--             given 2*ttl to live (see refreshKeys)
-- s: zset of transfers seen (member idkey, score event time): dedupe, and the
--    count of a window when it fires; it exists from the pair's second
--    transfer on (most pairs are seen once: they cost one key)
-- e<b> (the keys' common part, h's name less its last letter, then "e<b>"):
--    a string, the entries of bucket b's evidence when they are more than
--    INLINE (see addEvidence). A transfer adds its entry with APPEND: the
--    script never reads the list but to cut it back (once in `cap`
--    additions or so) or to answer an alert (a Lua string costs a hash of
--    every byte on this Redis: reading, cutting and rewriting a list of 50
--    entries in the hash for each transfer was the costliest thing the
--    script did). Declared in no KEYS (their bucket is known only inside):
--    same hash slot as h and s.
--
-- KEYS: h1, s1, h2, s2, ... (one pair per transfer, in order)
-- ARGV: threshold cents, window size ms, slide ms, bucket width g ms, allowed
--       lateness ms, cap, ttl ms, n transfers, B0, nb, then nb decimal bucket
--       indices B0, B0+1, ... and their nb field names "v<B0>", ... (the
--       caller formats them, so that the script formats almost no number or
--       field name: Lua's number-to-string conversion and string building
--       are among the costliest things it would do; a call of one transfer
--       sends none, nb = 0: then the script formats its few), then per
--       transfer: idkey, time ms, amount cents, "amount,len:id" (its
--       evidence tail), and last the aggregate: "sum" (a transfer adds its
--       amount to the totals) or "count" (it adds 1, and its amount to
--       m<b>).
--
-- Returns one answer per transfer: 1 when counted and nothing fired, else
--   {status, info[, evidence, alert...]}: status 1 counted (info = sequence
--   number), 2 duplicate, 3 late (info = newest time seen); with alerts,
--   evidence is {b, "count,bound|entries", ...}: the evidence of each bucket
--   b of the alerts' windows (once, however many windows hold it), and each alert is
--   {windowStart, total, count, fireTime, seq}, total being the window's
--   sum of amounts and count its number of transfers whatever the
--   aggregate: the caller lists the entries of the window's buckets with a
--   sequence number up to seq, oldest first, at most cap.
-- (protocol.go is the Go side of these arguments and answers;
-- protocol_test.go pins both.)

-- One script for Redis (Lua 5.1) and for the embedded Redis of `fintrans
-- run` and `fintrans replay` (miniredis, whose Lua is gopher-lua); the tests
-- run it on both. Where the two differ, and how the script keeps clear:
--   * string.match and string.find return no value at all when nothing
--     matches in gopher-lua (one nil in Lua), so tonumber(match(...)) fails
--     with "bad argument #1 to tonumber (value expected)": a match goes to a
--     local first.
--   * tonumber in gopher-lua reads decimal integers, and exponents only
--     after a '.' ("1e3", "2e+12" and integers past int64 give nil): the
--     script reads only numbers written in plain digits (by its caller or
--     by itself), and ZSCORE's answer, which miniredis prints with an
--     exponent from a million on, through score().
--   * tostring and '..' of a number: Lua prints "%.14g" (10^15 as "1e+15"),
--     gopher-lua every digit of an integer: a number that may reach 15
--     digits (times, totals, bucket indices) is formatted by d(),
--     string.format('%d'), alike on both; only counts up to cap are joined
--     with '..' as they are.
--   * a number passed to redis.call is printed alike only for integers
--     below 2^53 (floats, -0 and larger ones differ): the script passes
--     strings, and a bucket total (money.Max keeps totals far below 2^53).
--   * table.unpack is on neither (Lua 5.1): unpack. cjson is on both;
--     cmsgpack, bit and struct on Redis only: none is used.
--   * HKEYS and HGETALL list fields in another order: nothing depends on it.
--   * Alike on both, and relied on: a string of decimal digits in
--     arithmetic (s + 0) is that number, a missing HMGET field is false, an
--     integer reply a number, ZADD NX answers the count added, KEYS and ARGV
--     hold strings, a number returned becomes an integer (truncated), a
--     returned array stops at its first nil; redis.status_reply and
--     error_reply are unused. miniredis reports any runtime error of a
--     script as "ERR Error compiling script".

-- Locals for the globals used per transfer (a global costs a table lookup).
-- A number the script knows is a decimal string (its own fields, the
-- caller's arguments) is read with `s + 0`: one conversion, where
-- tonumber(s) makes two (it checks, then converts; each a strtod): the
-- costliest thing a warm transfer did after the Redis calls.
local call, floor, tonumber, unpack = redis.call, math.floor, tonumber, unpack
local match, sub, format, gsub = string.match, string.sub, string.format, string.gsub

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
local V = 11 + nb - B0 -- ARGV[V + j] is "v<j>" for B0 <= j < B0 + nb
local first = 11 + 2 * nb -- ARGV index of the first transfer's arguments
local span = size / g -- buckets per window
local count = ARGV[#ARGV] == 'count' -- the aggregate: transfers counted, not summed

local function d(x) return format('%d', x) end

-- The decimal form of bucket index j: from ARGV when the caller sent it.
local function js(j)
  local k = j - B0
  if k >= 0 and k < nb then return ARGV[11 + k] end
  return d(j)
end

-- The state hash of the current pair. When the call holds several
-- transfers of the pair in a row, it is cached: C[field] is its value (a
-- string or, for a bucket total, a number; false: known to be absent), nil
-- when not read yet (every field is known when whole is set), and dirty
-- lists the fields changed since; flush() writes them back. A pair's lone
-- transfer, or a short run (direct), reads and writes Redis at once.
-- PE[bs] (bs the bucket index in decimal: a table indexed by large numbers
-- grows an array that long in the embedded Redis's Lua) is what the pair's
-- evidence key of that bucket is to get,
-- written by flush too, in either case: {added = {entries}, body = the
-- whole list before them when rewritten, new = the key is created}.
local H, C, dirty, whole, expireH, direct, PE
local OP, offPath -- the functions off the common path (see offPath)

local function flush()
  if not H then return end
  if PE then
    local K = OP
    for b, p in pairs(PE) do
      local add = table.concat(p.added)
      if p.new then
        call('SET', K.ekey(b), (p.body or '') .. add, 'PX', K.ettl)
      elseif p.body then
        call('SET', K.ekey(b), p.body .. add, 'KEEPTTL')
      elseif add ~= '' then
        call('APPEND', K.ekey(b), add)
      end
    end
  end
  if not direct then
    local set, del = {}, {}
    for f in pairs(dirty) do
      local v = C[f]
      if type(v) == 'table' then v = v[1] .. ',' .. v[2] end -- an evidence header
      if v then
        set[#set + 1] = f
        set[#set + 1] = v
      else
        del[#del + 1] = f
      end
    end
    if #del > 0 then call('HDEL', H, unpack(del)) end
    if #set > 0 then call('HSET', H, unpack(set)) end
  end
  if expireH then call('PEXPIRE', H, ttl) end
end

-- Make h the current pair (writing back the previous one); alone: the
-- pair's run of transfers in the call is short (see the main loop).
local function use(h, alone)
  if h == H then return end
  flush()
  H, whole, expireH, direct, PE = h, false, false, alone, nil
  if not alone then C, dirty = {}, {} end
end

-- The values of the given fields (false when absent), read from Redis only
-- for the fields not known yet (a cached evidence header may be a table: see
-- addEvidence).
local function hmget(fields)
  if direct then return call('HMGET', H, unpack(fields)) end
  local out, miss, at = {}, nil, nil
  for i, f in ipairs(fields) do
    local v = C[f]
    if v == nil and not whole then
      if not miss then miss, at = {}, {} end
      miss[#miss + 1], at[#at + 1] = f, i
    end
    out[i] = v or false
  end
  if miss then
    local got = call('HMGET', H, unpack(miss))
    for k, f in ipairs(miss) do
      C[f], out[at[k]] = got[k], got[k]
    end
  end
  return out
end

-- HSET of field-value pairs.
local function hset(set)
  if direct then
    call('HSET', H, unpack(set))
    return
  end
  for i = 1, #set, 2 do
    C[set[i]] = set[i + 1]
    dirty[set[i]] = true
  end
end

local function hdel(fields)
  if direct then
    call('HDEL', H, unpack(fields))
    return
  end
  for _, f in ipairs(fields) do
    C[f] = false
    dirty[f] = true
  end
end

-- A bucket's evidence: "count,bound" (entries listed, an event time no
-- entry is newer than) and the entries. They always include the cap
-- oldest of the bucket by (time, seq), and maybe a few more (the caller
-- keeps the cap oldest of a window): every entry listed is at most bound,
-- and once count reaches cap, at least cap entries are. A new entry has
-- the highest seq of the pair, so with cap entries listed it is among the
-- oldest cap only when its time is below bound: then it is appended, and
-- at 2*cap entries the list is cut back to the cap oldest (reading and
-- parsing the list once every cap or so transfers, not for each).
--
-- A short list (up to INLINE entries) is the hash's field e<b>, header and
-- entries in one string ("count,bound|entries"; es, false when the bucket
-- has none yet): addInline adds to it (the caller moves a list that would
-- grow past INLINE or reach 2*cap to a key first: moveEvidence). Reading
-- and rewriting a few entries costs less than a key of their own.
local function addInline(set, eb, es, seqs, t, tstr, ev)
  local entry = seqs .. ',' .. tstr .. ',' .. ev
  if not es then
    set[#set + 1] = eb
    set[#set + 1] = '1,' .. tstr .. '|' .. entry
    return
  end
  local c, m, p = match(es, '^(%d+),(%-?%d+)|()')
  local cnt, mt = c + 0, m + 0
  if cnt < cap then
    if t > mt then m = tstr end
  elseif t >= mt then
    return
  end
  set[#set + 1] = eb
  set[#set + 1] = (cnt + 1) .. ',' .. m .. '|' .. sub(es, p) .. entry
end

-- The pair's list of buckets with an evidence key (field k) as this
-- transfer leaves it: read when first needed (KL; klChanged when changed).
local KL, klRead, klChanged

local function keyList()
  if not klRead then
    KL, klRead = hmget({'k'})[1] or nil, true
  end
  return KL
end

-- The helpers off the common path (alerts, duplicates, lists in keys, far
-- pruning), made when a call first needs one (OP): a script's functions are
-- closures made again at every call (some 0.1 µs each, 1 µs for one that
-- reads 40 locals of the script), and most calls (a pair's first transfer,
-- a warm one that fires nothing) need none of them.
function offPath()
  if OP then return OP end
  -- (declared first: they call one another in any order)
  local ekey, body, appendKey, setHeader, addEvidence, moveEvidence, mergeStub, addKey, refreshKeys
  local score, windows, evidence, amounts, answer, listedCount, entries, refire, hkeys
  local concat, gmatch = table.concat, string.gmatch

  -- A sorted-set score (ZSCORE) as a number. Redis prints an integer score in
  -- plain digits; the embedded Redis prints a score of a million or more with
  -- an exponent ("1.5007716e+12", "2e+12"), and its tonumber reads an exponent
  -- only after a '.' (see the header).
  function score(s)
    return tonumber(s) or tonumber((gsub(s, 'e', '.0e', 1)))
  end

  -- The windows [st, st+size) holding time x, newest start first: st is a
  -- multiple of slide with x - size < st <= x.
  function windows(x)
    local ws = {}
    local st = floor(x / slide) * slide
    while st > x - size do
      ws[#ws + 1] = st
      st = st - slide
    end
    return ws
  end

  -- The evidence of the buckets of the windows starting at sts (newest
  -- first): {b, "count,bound|entries", ...} for every bucket b of those
  -- windows that has any, each listed once however many of the windows hold
  -- it (from its e<b>, or its c<b> and evidence key).
  -- used(j), when given, says whether bucket j may have any (a total).
  function evidence(sts, used)
    local ev = {}
    if cap == 0 then return ev end
    local lo, hi = sts[#sts] / g, sts[1] / g + span - 1
    local fields, bs = {}, {}
    for j = lo, hi do
      if not used or used(j) then
        local jstr = js(j)
        bs[#bs + 1] = j
        fields[#fields + 1] = 'c' .. jstr
        fields[#fields + 1] = 'e' .. jstr
      end
    end
    local got = hmget(fields)
    for i, j in ipairs(bs) do
      local k = 2 * i - 1
      local hd, es = got[k], got[k + 1]
      if type(hd) == 'table' then hd = hd[1] .. ',' .. hd[2] end
      local v = es
      if hd then
        v = hd .. '|' .. body(js(j))
        local p = es and match(es, '|()')
        if p and p <= #es then
          -- Entries an earlier script appended under STUB (see mergeStub):
          -- listed too, and the count said to be cap, so that the window is
          -- counted from the dedupe set.
          v = cap .. ',' .. match(hd, ',(.*)$') .. '|' .. body(js(j)) .. sub(es, p)
        end
      end
      if v then
        ev[#ev + 1] = j
        ev[#ev + 1] = v
      end
    end
    return ev
  end

  -- With aggregate count, the sum of the amounts of the window starting at st.
  function amounts(st)
    local b = st / g
    local fields = {}
    for j = 0, span - 1 do fields[#fields + 1] = 'm' .. js(b + j) end
    local sum = 0
    for _, v in ipairs(hmget(fields)) do
      if v then sum = sum + tonumber(v) end
    end
    return sum
  end

  -- The answer of a transfer that fired (or fires again) alerts:
  -- {status, info, evidence, alert...}.
  function answer(status, info, ev, alerts)
    local out = {status, info, ev}
    for _, a in ipairs(alerts) do out[#out + 1] = a end
    return out
  end

  -- The count of transfers of the window starting at st from the evidence of
  -- its buckets, when each lists all of its bucket's (fewer than cap): else
  -- nil (always with cap 0: no bucket lists any, and a bucket absent from ev
  -- is not known to be empty).
  function listedCount(ev, st)
    if cap == 0 then return nil end
    local b0 = st / g
    local n = 0
    for k = 1, #ev, 2 do
      local b = ev[k]
      if b >= b0 and b < b0 + span then
        local c = match(ev[k + 1], '^(%d+),') -- never tonumber(match(...)): see the header
        c = c and tonumber(c)
        if not c or c >= cap then return nil end
        n = n + c
      end
    end
    return n
  end

  -- The entries of an evidence string from position pos: {start, stop, time,
  -- seq} each.
  function entries(es, pos)
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

  -- The alert of the window starting at st if transfer idkey fired it.
  function refire(st, rec, key)
    local seq, total, cnt, ft, who = match(rec, '^(%d+):(%d+):(%d+):(%-?%d+):(.*)$')
    if who ~= key then return nil end
    return {st, tonumber(total), tonumber(cnt), tonumber(ft), tonumber(seq)}
  end

  -- Every field of the hash.
  function hkeys()
    if direct then return call('HKEYS', H) end
    local out = {}
    if not whole then
      for _, f in ipairs(call('HKEYS', H)) do
        if C[f] == nil then out[#out + 1] = f end
      end
    end
    for f, v in pairs(C) do
      if v then out[#out + 1] = f end
    end
    return out
  end
  local ettl = format('%d', 2 * tonumber(ttl)) -- an evidence key's time to live
  -- What e<b> holds while the bucket's list is in a key: a header that an
  -- earlier version of this script, reading it during a rolling upgrade,
  -- takes for a full list (it counts the window's transfers from the dedupe
  -- set, not from this list) under which it appends each entry it makes (see
  -- mergeStub).
  local STUB = format('%d', cap) .. ',99999999999999|'

  -- The evidence key of the current pair's bucket bs (in decimal).
  function ekey(bs)
    return sub(H, 1, -2) .. 'e' .. bs
  end

  -- The entries of bucket bs's evidence key, with those added in this call.
  function body(bs)
    local p = PE and PE[bs]
    if p and (p.new or p.body) then return (p.body or '') .. concat(p.added) end
    local es = call('GET', ekey(bs)) or ''
    if p then es = es .. concat(p.added) end
    return es
  end

  -- Append to bucket bs's evidence key: at once for a lone transfer (no
  -- write is pending for the key: one would be, had the list moved to the
  -- key in this transfer), else in PE. Returns PE[bs] (nil when appended at
  -- once).
  function appendKey(bs, add)
    PE = PE or {}
    local p = PE[bs]
    if direct and not p then
      call('APPEND', ekey(bs), add)
      return nil
    end
    if not p then
      p = {added = {}}
      PE[bs] = p
    end
    p.added[#p.added + 1] = add
    return p
  end

  -- A key's list header hd ({count, bound, bound as a number}) to the hash's
  -- field cb: to set, or to the cache.
  function setHeader(set, cb, hd)
    if direct then
      set[#set + 1] = cb
      set[#set + 1] = hd[1] .. ',' .. hd[2]
    else
      C[cb], dirty[cb] = hd, true
    end
  end

  -- A longer list is in the bucket's evidence key, its header the hash's
  -- field c<b> (cb, value hd): addEvidence adds to it, appending the entry to
  -- the key (PE) and the header change to set (or the cache).
  function addEvidence(set, bs, cb, hd, seqs, t, tstr, ev)
    local entry = seqs .. ',' .. tstr .. ',' .. ev
    -- In the cache a header is kept as {count, bound, bound as a number}
    -- (written back as a string by flush): parsed once a call, not at each
    -- transfer.
    if type(hd) == 'string' then
      local c, m = match(hd, '^(%d+),(%-?%d+)$')
      hd = {c + 0, m, m + 0}
    end
    local cnt, m, mt = hd[1], hd[2], hd[3]
    if cnt < cap then
      if t > mt then m, mt = tstr, t end
    elseif t >= mt then
      if not direct then C[cb] = hd end
      return
    end
    local p = appendKey(bs, entry)
    cnt = cnt + 1
    if cnt >= 2 * cap and cnt > cap then
      -- 2*cap entries: keep the cap oldest.
      local all = body(bs)
      local list = entries(all, 1)
      table.sort(list, function(x, y) return x[3] < y[3] or (x[3] == y[3] and x[4] < y[4]) end)
      local parts = {}
      for k = 1, cap do parts[k] = sub(all, list[k][1], list[k][2]) end
      if p then
        p.body, p.added = concat(parts), {}
      else
        call('SET', ekey(bs), concat(parts), 'KEEPTTL')
      end
      cnt, mt = cap, list[cap][3]
      m = d(mt)
    end
    setHeader(set, cb, {cnt, m, mt})
  end

  -- A bucket's evidence in the hash (es, its e<b>: "count,bound|entries")
  -- moved to an evidence key: the header to set (or the cache), the entries
  -- to PE, e<b> to STUB. Returns the header.
  function moveEvidence(set, bs, cb, eb, es)
    local hd, p = match(es, '^(%d+,%-?%d+)|()')
    PE = PE or {}
    PE[bs] = {added = {}, body = sub(es, p), new = true}
    if direct then
      set[#set + 1] = cb
      set[#set + 1] = hd
      set[#set + 1] = eb
      set[#set + 1] = STUB
    else
      C[cb], dirty[cb] = hd, true
      C[eb], dirty[eb] = STUB, true
    end
    return hd
  end

  -- A bucket with its list in a key, whose e<b> (es) holds entries beyond
  -- STUB's header (an earlier script appended them during a rolling
  -- upgrade): they join the key's list (count and bound with them: the
  -- union still holds the bucket's cap oldest), e<b> goes back to STUB.
  -- Returns the header ({count, bound, bound as a number}).
  function mergeStub(set, bs, cb, eb, hd, es)
    local p = match(es, '|()')
    local list = entries(es, p)
    if type(hd) == 'string' then
      local c, m = match(hd, '^(%d+),(%-?%d+)$')
      hd = {c + 0, m, m + 0}
    end
    local cnt, m, mt = hd[1] + #list, hd[2], hd[3]
    for _, e in ipairs(list) do
      if e[3] > mt then mt = e[3] end
    end
    if mt ~= hd[3] then m = d(mt) end
    appendKey(bs, sub(es, p))
    hd = {cnt, m, mt}
    setHeader(set, cb, hd)
    if direct then
      set[#set + 1] = eb
      set[#set + 1] = STUB
    else
      C[eb], dirty[eb] = STUB, true
    end
    return hd
  end

  function addKey(j)
    local kl = keyList()
    KL, klChanged = kl and kl .. ',' .. js(j) or js(j), true
  end

  -- Push out the expiry of the pair's evidence keys (the buckets listed in
  -- kl) to 2*ttl from now when their last push was more than ttl/2 ago (x,
  -- Redis time in ms), so that each outlives the pair's hash, whose expiry
  -- is ttl from its last refresh: a key's expiry is at least x + 2*ttl (a key
  -- made since, later still), over now + 1.5*ttl while x is recent. Called
  -- where the hash's expiry is refreshed; a pair's keys cost one PEXPIRE each
  -- in ttl/2, not one a transfer.
  function refreshKeys(set)
    local kl = keyList()
    if not kl then return end
    -- Keys all made in this call (the pair's first) have their full time.
    local fresh = true
    for j in gmatch(kl, '[^,]+') do
      local p = PE and PE[j]
      if not (p and p.new) then
        fresh = false
        break
      end
    end
    if fresh then return end
    local x = hmget({'x'})[1]
    local tm = call('TIME')
    local now = tonumber(tm[1]) * 1000 + floor(tonumber(tm[2]) / 1000)
    local half = tonumber(ttl) / 2
    x = x and tonumber(x)
    if x and now - x <= half and x - now <= half then return end
    for j in gmatch(kl, '[^,]+') do
      call('PEXPIRE', ekey(j), ettl)
    end
    set[#set + 1] = 'x'
    set[#set + 1] = d(now)
  end

  OP = {ekey = ekey, body = body, addEvidence = addEvidence, moveEvidence = moveEvidence,
    mergeStub = mergeStub, addKey = addKey, refreshKeys = refreshKeys, STUB = STUB, ettl = ettl,
    score = score, windows = windows, evidence = evidence, amounts = amounts, answer = answer,
    listedCount = listedCount, refire = refire, hkeys = hkeys}
  return OP
end

local function apply(h, s, idkey, tstr, amtstr, ev, alone)
  use(h, alone)
  local t = tstr + 0
  -- What the transfer adds to its bucket's total: its amount, or 1.
  local amt, wstr = amtstr + 0, amtstr
  if count then amt, wstr = 1, '1' end
  local b = floor(t / g)
  -- The windows holding t start at top, top - slide, ..., low; they cover
  -- buckets lowB to highB, whose totals are read with the pair's state
  -- (field names from ARGV when the caller sent them).
  local top = floor(t / slide) * slide
  local low = (floor((t - size) / slide) + 1) * slide -- the first start past t - size
  local lowB, highB = low / g, top / g + span - 1
  local inRange = lowB >= B0 and highB < B0 + nb
  local vb = inRange and ARGV[V + b] or 'v' .. d(b)

  -- A pair's first transfer (no state: nothing to read, and it cannot be late
  -- or a duplicate) that does not cross the threshold alone: its state is
  -- written at once, exactly as the general path below would write it.
  if amt <= thr and not whole and (direct or C.t == nil) and call('EXISTS', h) == 0 then
    whole, expireH = true, true
    local set = {'n', '1', vb, wstr, 't', tstr, 'lo', js(floor((t - late - size) / g)), 'f', idkey .. ':' .. tstr}
    if cap > 0 then set[10] = set[10] .. ':' .. ev end
    if count then
      set[#set + 1] = 'm' .. js(b)
      set[#set + 1] = amtstr
    end
    hset(set)
    return 1
  end

  local bstr = js(b)
  local cb, eb = 'c' .. bstr, 'e' .. bstr

  -- meta[1] to meta[6]: t, lo, n, the bucket's evidence header (when in a
  -- key), f, its evidence (when in the hash); then from meta[T] the totals
  -- of buckets lowB to b. The buckets after b are empty unless the pair has
  -- seen a later time (no transfer counted is newer than t): read after t,
  -- only then (a transfer in order, the common case, reads span - 1 fields
  -- fewer).
  local T = 7
  local fields
  if inRange then
    fields = {'t', 'lo', 'n', cb, 'f', eb, unpack(ARGV, V + lowB, V + b)}
  else
    fields = {'t', 'lo', 'n', cb, 'f', eb}
    for j = lowB, b do fields[#fields + 1] = 'v' .. d(j) end
  end
  local meta = hmget(fields)
  KL, klRead, klChanged = nil, false, false
  local fset -- the first transfer's evidence, moved from f to its bucket

  -- Late: older than the allowed lateness behind the newest time of the
  -- pair. Nothing changes.
  local newest = meta[1] and meta[1] + 0
  if newest and t < newest - late then
    return {3, newest}
  end

  -- A delivery seen before: change nothing, but fire again the alerts that
  -- this very transfer fired, so that an alert lost between Redis and the
  -- sink is sent again by the redelivery. A pair's first transfer is
  -- remembered in h itself (f = "idkey:time"): the dedupe set s comes with
  -- its second, so that a pair seen once (most of them) costs one key.
  local f = meta[5]
  local seen -- time of the earlier delivery, if this is a duplicate
  local single, created = not newest, false
  if single then
    -- nothing to look up (and no evidence key yet)
    KL, klRead = nil, true
  elseif f then
    -- (an idkey is base64url: no ':')
    local fid, ftime, ftail = match(f, '^([^:]*):(%-?%d+):?(.*)$')
    if fid == idkey then
      seen = ftime
    else
      call('ZADD', s, ftime, fid, tstr, idkey)
      hdel({'f'})
      created = true
      KL, klRead = nil, true -- a pair seen once has no evidence key
      local fb = floor((ftime + 0) / g)
      if ftail ~= '' and fb >= floor((t - late - size) / g) then
        -- The first transfer's evidence, the only one of its bucket (the
        -- pair counted only it), unless this transfer leaves that bucket
        -- behind: written to its bucket's e<b>, or in this transfer's meta
        -- when it is the same bucket.
        local es = '1,' .. ftime .. '|1,' .. ftime .. ',' .. ftail
        if fb == b then
          meta[6] = es
        else
          fset = {'e' .. js(fb), es}
        end
      end
    end
  elseif call('ZADD', s, 'NX', tstr, idkey) == 0 then
    seen = call('ZSCORE', s, idkey)
  end
  if seen then
    local R = offPath()
    local ws = R.windows(R.score(seen))
    local fields = {}
    for i, st in ipairs(ws) do fields[i] = 'a' .. js(st / g) end
    local recs = hmget(fields)
    local sts, alerts = {}, {}
    for i, rec in ipairs(recs) do
      local a = rec and R.refire(ws[i], rec, idkey)
      if a then
        sts[#sts + 1] = ws[i]
        alerts[#alerts + 1] = a
      end
    end
    if #alerts == 0 then return {2, 0} end
    return R.answer(2, 0, R.evidence(sts), alerts)
  end

  -- Count it: the pair's sequence number, its newest time if this is it,
  -- its bucket's total and evidence, and what no transfer can reach any more.
  local seq, seqs = 1, '1'
  if meta[3] then
    seq = meta[3] + 1
    seqs = d(seq)
  end
  local advanced = not newest or t > newest
  -- The bucket totals before this transfer, in place: meta[T + j - lowB]
  -- is bucket j's, up to the last one read (those after b are read now,
  -- when the pair has a later time; the rest are empty, made 0 where the
  -- windows are summed).
  local tb = newest and floor(newest / g)
  if tb and tb > highB then tb = highB end
  local last = b -- the last bucket read (those after it are empty)
  if tb and tb > b then
    local more = {}
    for j = b + 1, tb do more[#more + 1] = inRange and ARGV[V + j] or 'v' .. d(j) end
    for i, v in ipairs(hmget(more)) do meta[T + b - lowB + i] = v end
    last = tb
  end
  local union = 0 -- the total of buckets lowB to highB: every window's at most
  for k = T, T + last - lowB do
    local v = meta[k]
    if v then
      v = v + 0
      meta[k], union = v, union + v
    else
      meta[k] = 0
    end
  end
  local cur = meta[T + b - lowB]
  -- What the hash is to get (written at once, or in the cache: hset).
  local set = {'n', seqs, vb, cur == 0 and wstr or cur + amt}
  if fset then
    set[5], set[6] = fset[1], fset[2]
  end
  if single then
    set[#set + 1] = 'f'
    set[#set + 1] = idkey .. ':' .. tstr
  end
  if advanced then
    set[#set + 1] = 't'
    set[#set + 1] = tstr
  end
  if cap > 0 then
    local hd, es = meta[4], meta[6]
    if not hd and es then
      local c = match(es, '^(%d+),') -- never tonumber(match(...)): see the header
      c = c + 0
      -- A bucket's evidence stays in the hash (e<b>) up to 8 entries (INLINE
      -- in the comments; a literal: each upvalue costs every call), and
      -- moves to its own key with the next.
      if c >= 8 or c + 1 >= 2 * cap then
        -- Its next entry would make the list too long for the hash.
        local K = offPath()
        hd = K.moveEvidence(set, bstr, cb, eb, es)
        K.addKey(b)
      end
    elseif hd and es and es ~= offPath().STUB then -- (interned strings: one comparison)
      hd = OP.mergeStub(set, bstr, cb, eb, hd, es)
    end
    if hd then
      offPath().addEvidence(set, bstr, cb, hd, seqs, t, tstr, ev)
    else
      addInline(set, eb, es, seqs, t, tstr, ev)
    end
  end
  if advanced then
    local keep = floor((t - late - size) / g)
    local lo = meta[2] and meta[2] + 0
    if not lo or keep > lo then
      set[#set + 1] = 'lo'
      set[#set + 1] = js(keep)
    end
    if lo and keep > lo then
      local del = {}
      if keep - lo <= 64 then
        for j = lo, keep - 1 do
          local jstr = js(j)
          del[#del + 1] = 'v' .. jstr
          del[#del + 1] = 'a' .. jstr
          del[#del + 1] = 'e' .. jstr
          del[#del + 1] = 'c' .. jstr
          if count then del[#del + 1] = 'm' .. jstr end
        end
      else
        for _, f in ipairs(offPath().hkeys()) do
          local j = match(f, '^[vaemc](%-?%d+)$') -- never tonumber(match(...)): see the header
          if j and tonumber(j) < keep then del[#del + 1] = f end
        end
      end
      local kl = keyList()
      if kl then
        local left
        for j in string.gmatch(kl, '[^,]+') do
          local jn = tonumber(j)
          if jn < keep then
            call('DEL', offPath().ekey(j))
            if PE then PE[j] = nil end
            -- (its fields too: an earlier script may have pruned the
            -- bucket's others and moved lo past it)
            del[#del + 1] = 'c' .. j
            del[#del + 1] = 'e' .. j
          else
            left = left and left .. ',' .. j or j
          end
        end
        if left ~= kl then
          KL, klChanged = left, true
        end
      end
      if #del > 0 then hdel(del) end
      call('ZREMRANGEBYSCORE', s, '-inf', '(' .. d(keep * g))
    end
  end
  if count then
    -- The bucket's sum of amounts: HINCRBY, or in the cache, added there.
    local mb = 'm' .. js(b)
    if direct then
      call('HINCRBY', H, mb, amtstr)
    else
      local m = hmget({mb})[1]
      set[#set + 1] = mb
      set[#set + 1] = m and d(tonumber(m) + tonumber(amtstr)) or amtstr
    end
  end
  -- Expiry: set on each new key, refreshed when the pair enters a new bucket
  -- and every 64th transfer (the hash's when it is written back; the
  -- evidence keys' at most once in ttl/2: refreshKeys).
  if single then
    expireH = true
  elseif created or b > floor(newest / g) or seq % 64 == 1 then
    expireH = true
    call('PEXPIRE', s, ttl)
    if keyList() then offPath().refreshKeys(set) end
  end
  if klChanged then
    if KL then
      set[#set + 1] = 'k'
      set[#set + 1] = KL
    else
      hdel({'k', 'x'})
    end
  end
  hset(set)

  -- The total of every window holding the transfer, before and after it.
  -- Totals only grow, so the one transfer that takes a window from at most
  -- the threshold to over it fires that window's alert, whatever order the
  -- transfers arrive in. Every such window holds bucket b and lies within
  -- buckets lowB to highB: none can cross when b's total is over the
  -- threshold already, or when all of those buckets with this transfer stay
  -- at most it (most transfers: the windows are summed only when one may
  -- cross).
  if cur > thr or union + amt <= thr then return 1 end
  for k = T + last - lowB + 1, T + highB - lowB do meta[k] = 0 end
  local sts, totals
  for st = top, low, -slide do
    local from = T + st / g - lowB
    local before = 0
    for k = from, from + span - 1 do before = before + meta[k] end
    local total = before + amt
    if total > thr and before <= thr then
      if not sts then sts, totals = {}, {} end
      sts[#sts + 1] = st
      totals[#totals + 1] = total
    end
  end
  if not sts then return 1 end
  -- The window's count of transfers: from its buckets' evidence when they
  -- list every transfer, else from the dedupe set.
  local R = offPath()
  local ev = R.evidence(sts, function(j) return j == b or meta[T + j - lowB] > 0 end)
  local alerts, aset = {}, {}
  for i, st in ipairs(sts) do
    local sum, cnt = totals[i], 1
    if count then
      sum, cnt = R.amounts(st), totals[i]
    elseif not single then
      cnt = R.listedCount(ev, st) or call('ZCOUNT', s, d(st), '(' .. d(st + size))
    end
    aset[#aset + 1] = 'a' .. js(st / g)
    aset[#aset + 1] = seqs .. ':' .. d(sum) .. ':' .. d(cnt) .. ':' .. tstr .. ':' .. idkey
    alerts[i] = {st, sum, cnt, t, seq}
  end
  hset(aset)
  return R.answer(1, seq, ev, alerts)
end

local results = {}
for k = 1, n do
  local a = first + 4 * (k - 1)
  local h = KEYS[2 * k - 1]
  -- A run of fewer than 4 transfers of a pair goes to Redis directly: a
  -- cache costs more than it saves on 2 or 3 (measured).
  local alone = h ~= H and (h ~= KEYS[2 * k + 1] or h ~= KEYS[2 * k + 3] or h ~= KEYS[2 * k + 5])
  results[k] = apply(h, KEYS[2 * k], ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], alone)
end
flush()
return results
