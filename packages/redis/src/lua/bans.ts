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
 * Writes bans back, as they were (after Redis lost them, or made while it was away), in one call
 * per shard. KEYS: bans, version, then the history key of each ban's client. ARGV: channel,
 * origin, historyTimeMs, then per ban: jail, client, startMs, endMs (-1: permanent), banCount,
 * manual (1/0), reason. Idempotent: a ban Redis already holds (any active ban of that client in
 * that jail) is never rewritten, so several instances writing back the same bans change nothing;
 * a written ban keeps its start, count, reason and manual flag. One announcement per call, not per
 * ban (a restore of 100,000 bans is not 100,000 messages to every instance): it names the shard's
 * new version, and the other instances read the shard when they find it changed.
 */
export const RESTORE = `${PRELUDE}
local channel, origin, history_ms = ARGV[1], ARGV[2], tonumber(ARGV[3])
local results, seqs = {}, {}
-- The version is read once and written once: a batch of bans is a run of seqs.
local epoch, seq = read_version(KEYS[2])
local latest = 0
local n = (#ARGV - 3) / 7
for i = 1, n do
  local a = 3 + (i - 1) * 7
  local ban = { jail = ARGV[a + 1], client = ARGV[a + 2], startMs = tonumber(ARGV[a + 3]),
                endMs = tonumber(ARGV[a + 4]), banCount = tonumber(ARGV[a + 5]),
                manual = ARGV[a + 6] == '1', reason = ARGV[a + 7] }
  local value = redis.call('HGET', KEYS[1], ban.client)
  local list = decode(value, ban.client)
  local held, at = find(list, ban.jail)
  if held and active(held) then
    results[i] = 'k'
  elseif not active(ban) then
    results[i] = 'e'
  else
    if at then list[at] = ban else list[#list + 1] = ban end
    store(KEYS[1], ban.client, list)
    seq = seq + 1
    seqs[#seqs + 1] = seq
    if latest >= 0 and (ban.endMs < 0 or ban.endMs > latest) then latest = ban.endMs end
    -- The history keeps at least this ban's count: the next ban escalates as it would have.
    local hkey = KEYS[2 + i]
    local was = redis.call('PTTL', hkey)
    local h = redis.call('HMGET', hkey, ban.jail, '*')
    local c = string.format('%d', ban.banCount)
    local in_jail, in_all = tonumber(h[1] or '0') < ban.banCount, tonumber(h[2] or '0') < ban.banCount
    if in_jail and in_all then redis.call('HSET', hkey, ban.jail, c, '*', c)
    elseif in_jail then redis.call('HSET', hkey, ban.jail, c)
    elseif in_all then redis.call('HSET', hkey, '*', c) end
    keep_history(hkey, ban, history_ms, was)
    results[i] = 'w'
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

/** Reads a shard at one version: KEYS: bans, version. Returns [version or nil, HGETALL]. */
export const READ_SHARD = `
return { redis.call('GET', KEYS[2]), redis.call('HGETALL', KEYS[1]) }
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
