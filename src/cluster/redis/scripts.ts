/**
 * The Lua scripts that decide and count in Redis. Each runs atomically: no other client's command
 * runs between its reads and its writes, so judging every limit and then counting in all of them
 * is one step across every node, as it is in one process.
 *
 * Time is always an argument (gatehouse's injected clock, so test mode's frozen clock works), never
 * Redis TIME. Key expiry is the one thing Redis times itself: keys are given a relative lifetime
 * (PEXPIRE) that outlasts what they count by `keep` ms, so they only ever expire once nothing in
 * them matters any more.
 *
 * Sliding windows are the algorithm of policies/limits/sliding-windows.ts, with the same bucket
 * width b = ceil(W / 20) and the same conservative count (the FULL contents of every bucket that
 * overlaps (t − W, t]), so its safety and liveness proofs hold as they are. A window is a hash:
 * field k (a bucket index, floor(t / b), the same on every node) holds the units counted in bucket
 * k; `w` is the window length the buckets are cut for, `t` the units in all bucket fields, `lo` an
 * index no bucket field is below, `h` the newest bucket with units. A request reads those four and
 * only the buckets that have left the window since (deleted when it counts), so judging and counting
 * cost a few commands whatever the traffic; the whole hash is read only to tell how long a refused
 * request must wait, and rewritten only for settlements, merges and a changed window.
 */

export interface Script {
  readonly name: string;
  readonly source: string;
  /** SHA-1 of the source, for EVALSHA. */
  readonly sha: string;
}

function script(name: string, body: string): Script {
  const source = `${COMMON}\n${body}`;
  const sha = new Bun.CryptoHasher("sha1").update(source).digest("hex");
  return { name, source, sha };
}

const COMMON = `
local function width(w) return math.max(1, math.ceil(w / 20)) end
local function firstOf(w, now) return math.floor((now - w + 1) / width(w)) end

-- A window's buckets {index = units}, the window length they are cut for, and whether they were
-- cut for another length than Redis holds. With keepStored the stored length stays (a settlement
-- keeps the window the counter has); otherwise the buckets are recut for w: each old bucket's units
-- move to the new bucket holding that old bucket's LAST millisecond, so they are counted at least
-- as long as they really happened within the new window (sliding-windows.ts rebucket).
local function load(key, w, keepStored)
  local raw = redis.call('HGETALL', key)
  local stored = nil
  local units = {}
  for i = 1, #raw, 2 do
    local f = raw[i]
    if f == 'w' then stored = tonumber(raw[i + 1])
    elseif f ~= 't' and f ~= 'lo' and f ~= 'h' then units[tonumber(f)] = tonumber(raw[i + 1]) end
  end
  if stored == nil or stored == w then return units, w, false end
  if keepStored then return units, stored, false end
  local ob, b = width(stored), width(w)
  local moved = {}
  for k, n in pairs(units) do
    local to = math.floor(((k + 1) * ob - 1) / b)
    moved[to] = (moved[to] or 0) + n
  end
  return moved, w, true
end

-- Units counted against the window ending at now: whole buckets overlapping (now - w, now].
local function usedIn(units, w, now)
  local first, s = firstOf(w, now), 0
  for k, n in pairs(units) do if k >= first then s = s + n end end
  return s
end

-- Ms until 'need' units have left the window (oldest buckets first); -1 if they never do.
local function fitsIn(units, w, now, need)
  local first, b = firstOf(w, now), width(w)
  local ks = {}
  for k, n in pairs(units) do if k >= first and n > 0 then ks[#ks + 1] = k end end
  table.sort(ks)
  local freed = 0
  for _, k in ipairs(ks) do
    freed = freed + units[k]
    if freed >= need then return math.max(0, (k + 1) * b + w - 1 - now) end
  end
  return -1
end

-- Ms until everything counted has left the window (0 when nothing is counted).
local function emptyIn(units, w, now)
  local first, last = firstOf(w, now), nil
  for k, n in pairs(units) do
    if k >= first and n > 0 and (last == nil or k > last) then last = k end
  end
  if last == nil then return 0 end
  return math.max(0, (last + 1) * width(w) + w - 1 - now)
end

-- Writes a whole window: its buckets still in it, with 'add' more units in the bucket of now, and
-- its summary. Returns ms until it is empty.
local function save(key, units, w, now, add, keep)
  local first, b = firstOf(w, now), width(w)
  if add > 0 then
    local head = math.floor(now / b)
    units[head] = (units[head] or 0) + add
  end
  redis.call('DEL', key)
  local t, lo, h, fields = 0, nil, nil, {}
  for k, n in pairs(units) do
    if k >= first and n > 0 then
      t = t + n
      if lo == nil or k < lo then lo = k end
      if h == nil or k > h then h = k end
      fields[#fields + 1] = k
      fields[#fields + 1] = n
    end
  end
  if t == 0 then return 0 end
  redis.call('HSET', key, 'w', w, 't', t, 'lo', lo, 'h', h, unpack(fields))
  local empty = math.max(0, (h + 1) * b + w - 1 - now)
  redis.call('PEXPIRE', key, empty + keep)
  return empty
end

-- A window as a request finds it, from its summary: the units used, and the buckets that left it
-- since it was last written (to delete when counting). Nil when only the whole hash will do (it is
-- cut for another window, or was idle so long that too many buckets left it).
local function peek(key, w, now)
  local v = redis.call('HMGET', key, 'w', 't', 'lo', 'h')
  local first = firstOf(w, now)
  if not v[1] then return { used = 0, first = first, stale = {} } end
  if tonumber(v[1]) ~= w then return nil end
  local t, lo, h = tonumber(v[2]), tonumber(v[3]), tonumber(v[4])
  local p = { used = t, lo = lo, h = h, first = first, stale = {} }
  if lo >= first then return p end
  if h < first then
    p.used, p.gone = 0, true
    return p
  end
  if first - lo > 64 then return nil end
  local ks = {}
  for k = lo, first - 1 do ks[#ks + 1] = k end
  local held = redis.call('HMGET', key, unpack(ks))
  for i = 1, #ks do
    if held[i] then
      p.used = p.used - tonumber(held[i])
      p.stale[#p.stale + 1] = ks[i]
    end
  end
  return p
end

-- Ms until a peeked window is empty.
local function peekedEmptyIn(p, w, now)
  if p.used == 0 then return 0 end
  return math.max(0, (p.h + 1) * width(w) + w - 1 - now)
end

-- Counts 'add' units at now in a peeked window; returns ms until it is empty.
local function addTo(key, p, w, now, add, keep)
  local head = math.floor(now / width(w))
  local lo, h = p.lo, p.h
  if p.gone then
    redis.call('DEL', key)
    lo, h = nil, nil
  elseif #p.stale > 0 then
    redis.call('HDEL', key, unpack(p.stale))
  end
  redis.call('HINCRBY', key, head, add)
  -- No bucket field below lo: not below what left the window, nor below a clock behind ours.
  if lo == nil or lo < p.first then lo = p.first end
  if head < lo then lo = head end
  local newer = h == nil or head > h
  if newer then h = head end
  redis.call('HSET', key, 'w', w, 't', p.used + add, 'lo', lo, 'h', h)
  p.used, p.h = p.used + add, h
  local empty = peekedEmptyIn(p, w, now)
  -- The window empties when its newest bucket leaves it: the lifetime set then still holds.
  if newer then redis.call('PEXPIRE', key, empty + keep) end
  return empty
end
`;

/**
 * Judges a request against every sliding window, quota and the concurrency cap, and counts it only
 * when all of them admit it (a refusal costs nothing anywhere).
 *
 * KEYS: the windows, the quotas, then the tenant's leases when it has a cap.
 * ARGV: now, cost, dry ("1": judge only, write nothing), window count, quota count, cap (0: none),
 *   lease id, lease ms, keep ms; per window: length, limit, shadow ("1"); per quota: limit, shadow,
 *   ms until its period ends, seed (this node's last known count, written when Redis lost the key).
 * Returns: status (0 admitted, 1 refused by a window or quota, 2 by the cap), leases in flight
 *   before it; per window: used, ms until the cost fits (-1 never), used after, ms until empty after;
 *   per quota: used, used after.
 *
 * A shadow that would refuse neither refuses nor counts; the others count (each key once).
 */
export const decideScript = script(
  "decide",
  `
local now, cost, dry = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3] == '1'
local nw, nq, cap = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local lease, leaseMs, keep = ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9])
local a = 9
local refused = false
local wins, quotas = {}, {}
for i = 1, nw do
  local w, limit, shadow = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), ARGV[a + 3] == '1'
  a = a + 3
  local x = { w = w, peeked = peek(KEYS[i], w, now) }
  if x.peeked then x.used = x.peeked.used
  else
    x.units, x.w = load(KEYS[i], w, false)
    x.used = usedIn(x.units, x.w, now)
  end
  local refuses = cost > 0 and (cost > limit or x.used + cost > limit)
  x.fits = 0
  if cost > 0 and cost > limit then x.fits = -1
  elseif refuses then
    -- Rare: a refusal's wait needs every bucket.
    if not x.units then x.units = load(KEYS[i], w, true) end
    x.fits = fitsIn(x.units, x.w, now, x.used + cost - limit)
  end
  if refuses and not shadow then refused = true end
  x.counts = not (refuses and shadow)
  wins[i] = x
end
for j = 1, nq do
  local limit, shadow, ttl, seed = tonumber(ARGV[a + 1]), ARGV[a + 2] == '1', tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  a = a + 4
  local key = KEYS[nw + j]
  local held = redis.call('GET', key)
  local used = seed
  if held then used = tonumber(held)
  elseif seed > 0 and not dry then redis.call('SET', key, seed, 'PX', ttl + keep) end
  local refuses = cost > 0 and (cost > limit or used + cost > limit)
  if refuses and not shadow then refused = true end
  quotas[j] = { used = used, ttl = ttl, counts = not (refuses and shadow) }
end
local status, inflight = 0, 0
if refused then status = 1 end
local leases = KEYS[nw + nq + 1]
if cap > 0 then
  if dry then inflight = redis.call('ZCOUNT', leases, '(' .. now, '+inf')
  else
    redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
    inflight = redis.call('ZCARD', leases)
  end
  if status == 0 and inflight >= cap then status = 2 end
end
local seen = {}
local out = { status, inflight }
for i = 1, nw do
  local x = wins[i]
  local after, empty = x.used, nil
  if status == 0 and not dry and cost > 0 and x.counts and not seen[KEYS[i]] then
    seen[KEYS[i]] = true
    if x.peeked then empty = addTo(KEYS[i], x.peeked, x.w, now, cost, keep)
    else empty = save(KEYS[i], x.units, x.w, now, cost, keep) end
    after = x.used + cost
  elseif x.peeked then empty = peekedEmptyIn(x.peeked, x.w, now)
  else empty = emptyIn(x.units, x.w, now) end
  out[#out + 1] = x.used
  out[#out + 1] = x.fits
  out[#out + 1] = after
  out[#out + 1] = empty
end
for j = 1, nq do
  local x, key = quotas[j], KEYS[nw + j]
  local after = x.used
  if status == 0 and not dry and cost > 0 and x.counts and not seen[key] then
    seen[key] = true
    after = redis.call('INCRBY', key, cost)
    -- Created just now: it lives until its period has ended.
    if after == cost then redis.call('PEXPIRE', key, x.ttl + keep) end
  end
  out[#out + 1] = x.used
  out[#out + 1] = after
end
if status == 0 and not dry and cap > 0 then
  redis.call('ZADD', leases, now + leaseMs, lease)
  redis.call('PEXPIRE', leases, leaseMs + keep)
end
return out
`,
);

/**
 * What a request settles when its response ends: a measured surplus counted in windows (over the
 * limit if need be, in the window the counter has), and quota units added or given back.
 *
 * KEYS: the windows, then the quotas. ARGV: now, keep ms, window count, quota count, surplus; per
 *   window: its length (used when Redis holds none); per quota: units (+ add, − give back, never
 *   below 0 and only if the key is still there), ms until its period ends.
 * Returns per quota: its count after (-1 when there was nothing to give back from).
 */
export const settleScript = script(
  "settle",
  `
local now, keep = tonumber(ARGV[1]), tonumber(ARGV[2])
local nw, nq, surplus = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local a = 5
for i = 1, nw do
  local units, w = load(KEYS[i], tonumber(ARGV[a + 1]), true)
  a = a + 1
  save(KEYS[i], units, w, now, surplus, keep)
end
local out = {}
for j = 1, nq do
  local units, ttl = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  a = a + 2
  local key = KEYS[nw + j]
  local after = -1
  if units > 0 then
    after = redis.call('INCRBY', key, units)
    redis.call('PEXPIRE', key, ttl + keep)
  elseif units < 0 then
    local held = redis.call('GET', key)
    if held then
      after = math.max(0, tonumber(held) + units)
      redis.call('SET', key, after, 'KEEPTTL')
    end
  end
  out[j] = after
end
return out
`,
);

/**
 * Adds what nodes counted on their own while Redis was unreachable.
 *
 * KEYS: windows, then quotas. ARGV: now, keep ms, window count, quota count; per window: the length
 *   its buckets are cut for, the bucket count n, then n pairs (bucket index, units); per quota: units
 *   counted locally (may be negative: refunds), the node's whole count (written when Redis lost the
 *   key, since it includes those units), ms until its period ends.
 * Returns per quota: its count after.
 */
export const mergeScript = script(
  "merge",
  `
local now, keep = tonumber(ARGV[1]), tonumber(ARGV[2])
local nw, nq = tonumber(ARGV[3]), tonumber(ARGV[4])
local a = 4
for i = 1, nw do
  local lw, n = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  a = a + 2
  local units, w = load(KEYS[i], lw, true)
  local lb, b = width(lw), width(w)
  for _ = 1, n do
    local k, u = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    a = a + 2
    -- Recut to the width Redis holds, to the bucket holding the local bucket's last millisecond.
    local to = math.floor(((k + 1) * lb - 1) / b)
    units[to] = (units[to] or 0) + u
  end
  save(KEYS[i], units, w, now, 0, keep)
end
local out = {}
for j = 1, nq do
  local units, whole, ttl = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  a = a + 3
  local key = KEYS[nw + j]
  local after
  if redis.call('EXISTS', key) == 1 then
    after = math.max(0, redis.call('INCRBY', key, units))
    if after == 0 then redis.call('SET', key, 0, 'KEEPTTL') end
  else
    after = whole
    redis.call('SET', key, whole, 'PX', ttl + keep)
  end
  out[j] = after
end
return out
`,
);

/**
 * Extends leases still held. KEYS: one lease set per lease. ARGV: now, lease ms, keep ms, then the
 * lease ids in KEYS' order. A lease that expired is not brought back: its slot may be another's now.
 */
export const renewScript = script(
  "renew",
  `
local now, leaseMs, keep = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local renewed = 0
for i = 1, #KEYS do
  local until_ = redis.call('ZSCORE', KEYS[i], ARGV[3 + i])
  if until_ and tonumber(until_) > now then
    redis.call('ZADD', KEYS[i], now + leaseMs, ARGV[3 + i])
    redis.call('PEXPIRE', KEYS[i], leaseMs + keep)
    renewed = renewed + 1
  end
end
return renewed
`,
);

/**
 * This node's heartbeat: KEYS[1] the node set; ARGV: now, node id, ms it counts as alive, keep ms.
 * Returns the number of live nodes, this one included.
 */
export const heartbeatScript = script(
  "heartbeat",
  `
local now, node, alive, keep = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + alive, node)
redis.call('PEXPIRE', KEYS[1], alive + keep)
return redis.call('ZCARD', KEYS[1])
`,
);

/**
 * An operator's change to a quota's current count. KEYS[1] the quota; ARGV: "set" or "credit",
 * units, ms until its period ends, keep ms, seed (this node's count, used when Redis holds none).
 * Returns the count before and after.
 */
export const quotaChangeScript = script(
  "quota-change",
  `
local how, units, ttl, keep, seed = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local held = redis.call('GET', KEYS[1])
local before = seed
if held then before = tonumber(held) end
local after = units
if how == 'credit' then after = math.max(0, before - units) end
redis.call('SET', KEYS[1], after, 'PX', ttl + keep)
return { before, after }
`,
);
