import { PRELUDE } from './prelude.js';

/** recordPardon. KEYS: pardon. ARGV: forMs. The key's TTL is the pardon. */
export const RECORD_PARDON = `
redis.call('SET', KEYS[1], '1', 'PX', tonumber(ARGV[1]))
return 1
`;

/**
 * A manual ban. KEYS: bans, version, history, failures. ARGV: jail, client, durationMs (-1:
 * permanent), reason, historyTimeMs, channel, origin. Replaces an active ban; clears the failures.
 */
export const MANUAL_BAN = `${PRELUDE}
local jail, client = ARGV[1], ARGV[2]
local duration = tonumber(ARGV[3])
local earlier = tonumber(redis.call('HGET', KEYS[3], jail) or '0')
local ban = { jail = jail, client = client, startMs = now, endMs = duration < 0 and -1 or now + duration,
              banCount = earlier + 1, reason = ARGV[4], manual = true }
redis.call('DEL', KEYS[4])
local epoch, seq = put_ban(KEYS[1], KEYS[2], ban, ARGV[6], ARGV[7])
remember(KEYS[3], jail, ban, tonumber(ARGV[5]))
return cjson.encode({ ban = ban, epoch = epoch, seqs = { seq } })
`;

/**
 * The history keeps at least a written ban's count: the next ban escalates as it would have.
 * count: an integer as text.
 */
const KEEP_COUNT = `
local function keep_count(hkey, jail, count, end_ms, history_ms)
  local was = redis.call('PTTL', hkey)
  if was == -2 then
    -- No history (lost with the shard): nothing to compare with.
    redis.call('HSET', hkey, jail, count, '*', count)
  else
    local h = redis.call('HMGET', hkey, jail, '*')
    local c = tonumber(count)
    local in_jail, in_all = tonumber(h[1] or '0') < c, tonumber(h[2] or '0') < c
    if in_jail and in_all then redis.call('HSET', hkey, jail, count, '*', count)
    elseif in_jail then redis.call('HSET', hkey, jail, count)
    elseif in_all then redis.call('HSET', hkey, '*', count) end
  end
  keep_history(hkey, { endMs = end_ms }, history_ms, was)
end
`;

/**
 * The histories of bans written back by RESTORE without them (a lost shard's bans first, their
 * histories right after: the bans are what the requests wait for). KEYS: history keys (one
 * shard's clients). ARGV: historyTimeMs, then per key: jail, endMs (-1: permanent), banCount.
 * Idempotent (a count is raised, never lowered); a ban ended meanwhile is skipped.
 */
export const RESTORE_HISTORY = `${PRELUDE}${KEEP_COUNT}
local history_ms = tonumber(ARGV[1])
for i = 1, #KEYS do
  local a = 1 + (i - 1) * 3
  local end_ms = tonumber(ARGV[a + 2])
  if end_ms < 0 or end_ms > now then keep_count(KEYS[i], ARGV[a + 1], ARGV[a + 3], end_ms, history_ms) end
end
return #KEYS
`;

/**
 * Writes bans back, as they were (after Redis lost them, or made while it was away), in one call
 * per shard. KEYS: bans, version, digest, then (history 1 only) the history key of each ban's
 * client. ARGV:
 * channel, origin, historyTimeMs, digest ('' for none), history (1: write each ban's history
 * too; 0: left to RESTORE_HISTORY), then per ban: client, the ban as stored
 * ('jail|start|end|count|manual|reason', integers; end -1: permanent), endMs. Idempotent: a ban Redis
 * already holds (any active ban of that client in that jail) is never rewritten, so several
 * instances writing back the same bans change nothing; a written ban keeps its start, count,
 * reason and manual flag. One announcement per call, not per ban (a restore of 100,000 bans is not
 * 100,000 messages to every instance): it names the shard's new version, and the other instances
 * read the shard when they find it changed (or skip the read when the digest key shows that it
 * holds exactly their own bans).
 *
 * A shard that is absent (lost whole: FLUSHALL, a restart empty, eviction) has nothing to compare
 * with: its entries are built from the arguments and written in one HSET, and a history key that
 * is absent too gets its counts in one HSET, without the per-ban HGET/decode/encode/HMGET (100,000
 * bans: about 1.4 s of Redis instead of 2, measured interleaved on the loaded 2-core machine; the
 * history keys, one new key per ban, are about 0.5 s of it). Bans ended meanwhile are still left
 * out, and every key written gets its expiry as in the other path.
 */
export const RESTORE = `${PRELUDE}${KEEP_COUNT}
local channel, origin, history_ms, digest = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local with_history = ARGV[5] == '1'
local seqs = {}
-- The version is read once and written once: a batch of bans is a run of seqs.
local epoch, seq = read_version(KEYS[2])
local latest = 0
local n = (#ARGV - 5) / 3

-- A ban written: the next seq, the shard's expiry, and (unless left to RESTORE_HISTORY) its
-- client's history. line: the ban as stored, 'jail|start|end|count|manual|reason'. hkey: nil
-- when the call leaves the histories to RESTORE_HISTORY (it then sends no history keys).
local function wrote(hkey, line, end_ms)
  seq = seq + 1
  seqs[#seqs + 1] = seq
  if latest >= 0 and (end_ms < 0 or end_ms > latest) then latest = end_ms end
  if with_history then
    local jail, count = string.match(line, '^([^|]*)|[^|]*|[^|]*|([^|]*)|')
    keep_count(hkey, jail, count, end_ms, history_ms)
  end
end

if redis.call('EXISTS', KEYS[1]) == 0 then
  -- Lost whole: nothing held to keep. Each client's value is its lines as sent, then one HSET.
  local fields, at = {}, {}
  for i = 1, n do
    local a = 5 + (i - 1) * 3
    local client, line, end_ms = ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
    if end_ms < 0 or end_ms > now then -- a ban ended meanwhile is never written back
      local k = at[client]
      if k == nil then
        fields[#fields + 1] = client
        fields[#fields + 1] = line
        at[client] = #fields
        wrote(KEYS[3 + i], line, end_ms)
      elseif not find(decode(fields[k], client), string.match(line, '^[^|]*')) then
        -- another jail of the same client (a repeat of one keeps the first)
        fields[k] = fields[k] .. '\\n' .. line
        wrote(KEYS[3 + i], line, end_ms)
      end
    end
  end
  if #fields > 0 then redis.call('HSET', KEYS[1], unpack(fields)) end
  -- Every ban of the call written: the shard holds exactly them, at the version this call ends
  -- at. The digest of them (the caller's) lets an instance holding the same bans skip reading it.
  if digest ~= '' and #seqs == n and n > 0 then
    redis.call('SET', KEYS[3], epoch .. ':' .. string.format('%d', seq) .. ':' .. digest, 'PX', 60000)
  end
else
  for i = 1, n do
    local a = 5 + (i - 1) * 3
    local client, line = ARGV[a + 1], ARGV[a + 2]
    local ban = decode(line, client)[1]
    local list = read(KEYS[1], client)
    local held, at = find(list, ban.jail)
    -- Any active ban held is kept as it is; a ban ended meanwhile is never written back.
    if not (held and active(held)) and active(ban) then
      if at then list[at] = ban else list[#list + 1] = ban end
      store(KEYS[1], client, list)
      wrote(KEYS[3 + i], line, ban.endMs)
    end
  end
end
if #seqs > 0 then
  redis.call('SET', KEYS[2], epoch .. ':' .. string.format('%d', seq), 'KEEPTTL')
  extend(KEYS[1], KEYS[2], latest)
  tidy(KEYS[1])
  redis.call('PUBLISH', channel, cjson.encode({ type = 'restored', key = KEYS[2], epoch = epoch,
                                                seq = seq, origin = origin }))
end
return cjson.encode({ epoch = #seqs > 0 and epoch or false, seqs = seqs })
`;

/** Shared by the unbans: lifts the bans of `list` in `jail` ('' for every jail). */
const LIFT = `${PRELUDE}
-- Splits a client's bans into those kept and the active ones lifted; clears the lifted jails'
-- counters and open reservations (keys of this client, in this shard: same Cluster slot).
local function lift(bkey, base, client, list, jail, lifted)
  local keep, changed, permanent = {}, false, false
  for _, b in ipairs(list) do
    if jail == '' or b.jail == jail then
      changed = true
      if active(b) then
        lifted[#lifted + 1] = b
        if b.endMs < 0 then permanent = true end
      end
      redis.call('DEL', base .. 'f:' .. b.jail .. ':' .. client, base .. 'r:' .. b.jail .. ':' .. client)
    else
      keep[#keep + 1] = b
    end
  end
  if changed then store(bkey, client, keep) end
  return permanent
end

-- Counts and announces each lifted ban.
local function announce_lifted(vkey, lifted, channel, origin)
  local seqs, epoch = {}, false
  for _, b in ipairs(lifted) do
    local seq
    epoch, seq = bump(vkey)
    seqs[#seqs + 1] = seq
    announce(channel, 'unban', b, epoch, seq, origin)
  end
  return epoch, seqs
end
`;

/**
 * Unbans one client. KEYS: bans, version. ARGV: client, jail ('' for every jail), channel,
 * origin, the shard's key base (P{s<n>}:), then (for every jail) the jail names whose counters
 * to clear as well.
 * Returns the active bans lifted.
 */
export const UNBAN = `${LIFT}
local client, jail, channel, origin, base = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
-- The client's counters there are cleared, banned or not (its bans' jails are cleared by lift).
local clear = jail ~= '' and { jail } or { unpack(ARGV, 6) }
for _, j in ipairs(clear) do
  redis.call('DEL', base .. 'f:' .. j .. ':' .. client, base .. 'r:' .. j .. ':' .. client)
end
local lifted = {}
local permanent = lift(KEYS[1], base, client, read(KEYS[1], client), jail, lifted)
local epoch, seqs = announce_lifted(KEYS[2], lifted, channel, origin)
if permanent then recompute(KEYS[1], KEYS[2]) end
return cjson.encode({ lifted = lifted, epoch = epoch, seqs = seqs })
`;

/**
 * Unbans every client of one shard (unbanAll, a shard per call). KEYS: bans, version. ARGV: jail
 * ('' for every jail), channel, origin, the shard's key base.
 */
export const UNBAN_SHARD = `${LIFT}
local jail, channel, origin, base = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local all = redis.call('HGETALL', KEYS[1])
local lifted, permanent = {}, false
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 1) ~= '#' then
    if lift(KEYS[1], base, all[i], decode(all[i + 1], all[i]), jail, lifted) then permanent = true end
  end
end
local epoch, seqs = announce_lifted(KEYS[2], lifted, channel, origin)
if permanent then recompute(KEYS[1], KEYS[2]) end
return cjson.encode({ lifted = lifted, epoch = epoch, seqs = seqs })
`;

/**
 * Reads a shard at one version: KEYS: bans, version. Returns [version or nil, the number of the
 * hash's fields and values, the fields and values joined by NUL] (see decodeShard in codec.ts): one
 * string, not two per client (the reader made two objects of each, four million at a million
 * bans, and most of its garbage). A NUL inside a field or value shows in the count: the reader
 * then reads that shard field by field.
 */
export const READ_SHARD = `
local all = redis.call('HGETALL', KEYS[1])
return { redis.call('GET', KEYS[2]), #all, table.concat(all, '\\0') }
`;

/**
 * The restore lease: one instance at a time writes back what Redis lost. KEYS: the lease. ARGV:
 * the instance's origin, ms (0: release). Takes the lease when free, renews it when held by the
 * same instance; returns 1 when the caller holds it, else 0. The key always expires (PX): an
 * instance that dies mid-restore holds it at most ms.
 */
export const LEASE = `
local ms = tonumber(ARGV[2])
if ms == 0 then
  if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
  return 0
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ms) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ms)
  return 1
end
return 0
`;
