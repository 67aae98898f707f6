/**
 * The Lua scripts of the Redis store, registered once with ioredis' defineCommand (EVALSHA, with a
 * reload on NOSCRIPT after a Redis restart). Every key of one client carries the hash tag
 * `{client}`, so that one script touches one Cluster slot. Times come from Redis (TIME), never
 * from the app, so a skewed app clock neither lengthens nor shortens a ban.
 *
 * Keys of a client, under the store's prefix P:
 *   P{client}:f:<jail>   LIST   failure times (ms), oldest first; expires findTime after the last
 *   P{client}:b:<jail>   HASH   the ban: start, end (-1: permanent), count, reason, manual
 *   P{client}:h          HASH   ban history: <jail> -> bans, '*' -> bans in every jail
 *   P{client}:p:<jail>   STRING pardon; expires when the pardon ends
 */

/** Shared Lua: the time, and the ban as a table for cjson. */
const PRELUDE = `
-- Redis' own clock, in ms: the one clock every instance agrees on.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function ban_table(key, jail, client)
  local b = redis.call('HMGET', key, 'start', 'end', 'count', 'reason', 'manual')
  if not b[1] then return nil end
  return { jail = jail, client = client, startMs = tonumber(b[1]), endMs = tonumber(b[2]),
           banCount = tonumber(b[3]), reason = b[4] or '', manual = b[5] == '1' }
end

-- Writes a ban and its expiry; a permanent ban (end -1) is the one key left without a TTL.
local function write_ban(key, ban)
  redis.call('HSET', key, 'start', ban.startMs, 'end', ban.endMs, 'count', ban.banCount,
             'reason', ban.reason, 'manual', ban.manual and '1' or '0')
  if ban.endMs < 0 then redis.call('PERSIST', key) else redis.call('PEXPIREAT', key, ban.endMs) end
end

-- Slides a window: drops failure times at or before now - window, then adds now.
local function slide(key, window_ms)
  while true do
    local first = redis.call('LINDEX', key, 0)
    if not first or tonumber(first) > now - window_ms then break end
    redis.call('LPOP', key)
  end
  redis.call('RPUSH', key, now)
end

-- Counts the ban in the client's history, kept historyTime after the ban ends.
local function remember(hkey, jail, ban, history_ms)
  redis.call('HINCRBY', hkey, jail, 1)
  redis.call('HINCRBY', hkey, '*', 1)
  if ban.endMs < 0 then
    redis.call('PERSIST', hkey)
  else
    local keep = ban.endMs - now + history_ms
    local ttl = redis.call('PTTL', hkey)
    if ttl ~= -1 and keep > ttl then redis.call('PEXPIRE', hkey, keep) end
  end
end
`;

/**
 * recordFailure. KEYS: failures, ban, history, pardon, recidive failures, recidive ban.
 * ARGV: jail, client, jitterMs, and the jail's rule: its constant arguments joined by '|' once at
 * setup (fewer arguments per call is less work for the client on every counted failure). Unpacked
 * into A, the rule's fields keep their old positions: 3 findTimeMs, 4 maxRetry, 5 pardonMaxRetry
 * (or 'inf'), 6 banTimeMs (-1: permanent), 7 factor, 8 multipliers (comma list or ''), 9 maxTimeMs,
 * 10 overall (0/1), 11 jitterMs (from ARGV[3]), 12 dryRun, 13 historyTimeMs, 14 recidive (0/1),
 * 15 recidive findTimeMs, 16 recidive maxRetry, 17 recidive banTimeMs (-1: permanent), 18 recidive
 * dryRun, 19 reason, 20 channel, 21 recidive jail name, 22 kept (max times kept).
 * Returns a JSON object (see RedisStore.recordFailure).
 */
export const RECORD_FAILURE = `${PRELUDE}
-- Unpack the rule into A, at the positions the arguments had when they were passed one by one.
local A = { ARGV[1], ARGV[2] }
for field in string.gmatch(ARGV[4] .. '|', '([^|]*)|') do A[#A + 1] = field end
A[11] = ARGV[3]
local jail, client = A[1], A[2]
local find_ms, base_max = tonumber(A[3]), tonumber(A[4])
local pardon_max = A[5] == 'inf' and math.huge or tonumber(A[5])
local ban_ms = tonumber(A[6])
local history_ms = tonumber(A[13])

-- 1. A client already banned in this jail is not counted again (its ban is returned instead).
local held = ban_table(KEYS[2], jail, client)
if held and (held.endMs < 0 or held.endMs > now) then
  return cjson.encode({ alreadyBanned = true, ban = held, count = 0, maxRetry = base_max })
end

-- 2. A pardoned client (a success on this jail's pardon rule) has the higher threshold.
local pardoned = redis.call('EXISTS', KEYS[4]) == 1
local max_retry = pardoned and pardon_max or base_max

-- 3. Slide the window: drop times at or before now - findTime, add this one.
slide(KEYS[1], find_ms)
-- Keep at most the threshold's number of times: a huge pardon threshold cannot grow memory.
local kept = math.min(max_retry, tonumber(A[22]))
redis.call('LTRIM', KEYS[1], -kept, -1)
local count = redis.call('LLEN', KEYS[1])
redis.call('PEXPIRE', KEYS[1], find_ms)
if count < max_retry then
  return cjson.encode({ count = count, maxRetry = max_retry, pardoned = pardoned })
end

-- 4. The threshold is reached: the window starts again, as fail2ban resets failures on a ban.
redis.call('DEL', KEYS[1])
local overall = A[10] == '1'
local earlier = tonumber(redis.call('HGET', KEYS[3], overall and '*' or jail) or '0')
local duration = ban_ms
if ban_ms >= 0 and A[7] ~= '' and earlier > 0 then
  -- bantime.increment: banTime x factor x (multipliers[n] or 2^n), capped at maxTime.
  local mult
  if A[8] ~= '' then
    local list = {}
    for m in string.gmatch(A[8], '[^,]+') do list[#list + 1] = tonumber(m) end
    mult = list[math.min(earlier + 1, #list)]
  else
    mult = 2 ^ math.min(earlier, 20)
  end
  duration = math.min(ban_ms * tonumber(A[7]) * mult, tonumber(A[9]))
end
local ban = { jail = jail, client = client, startMs = now,
              endMs = ban_ms < 0 and -1 or math.floor(now + duration + tonumber(A[11]) + 0.5),
              banCount = earlier + 1, reason = A[19], manual = false }

-- 5. A dry run decides and reports, and creates nothing.
if A[12] == '1' then
  return cjson.encode({ count = count, maxRetry = max_retry, pardoned = pardoned, wouldBan = ban })
end

-- 6. Create the ban, count it in the history, and tell every instance.
write_ban(KEYS[2], ban)
remember(KEYS[3], jail, ban, history_ms)
redis.call('PUBLISH', A[20], cjson.encode({ type = 'ban', ban = ban }))

-- 7. A ban is a failure of the recidive jail: its threshold bans everywhere.
local result = { count = count, maxRetry = max_retry, pardoned = pardoned, ban = ban }
if A[14] == '1' then
  local rjail = A[21]
  local rheld = ban_table(KEYS[6], rjail, client)
  if not (rheld and (rheld.endMs < 0 or rheld.endMs > now)) then
    local rfind = tonumber(A[15])
    slide(KEYS[5], rfind)
    redis.call('PEXPIRE', KEYS[5], rfind)
    local rcount = redis.call('LLEN', KEYS[5])
    if rcount >= tonumber(A[16]) then
      redis.call('DEL', KEYS[5])
      local rban_ms = tonumber(A[17])
      local rearlier = tonumber(redis.call('HGET', KEYS[3], rjail) or '0')
      local rban = { jail = rjail, client = client, startMs = now,
                     endMs = rban_ms < 0 and -1 or now + rban_ms, banCount = rearlier + 1,
                     reason = 'banned ' .. rcount .. ' times within ' .. math.floor(rfind / 1000) .. 's',
                     manual = false }
      result.recidive = rban
      result.recidiveDryRun = A[18] == '1'
      if A[18] ~= '1' then
        write_ban(KEYS[6], rban)
        remember(KEYS[3], rjail, rban, history_ms)
        redis.call('PUBLISH', A[20], cjson.encode({ type = 'ban', ban = rban }))
      end
    end
  end
end
return cjson.encode(result)
`;

/** recordPardon. KEYS: pardon. ARGV: forMs. The key's TTL is the pardon. */
export const RECORD_PARDON = `
redis.call('SET', KEYS[1], '1', 'PX', tonumber(ARGV[1]))
return 1
`;

/**
 * A manual ban. KEYS: ban, history, failures. ARGV: jail, client, durationMs (-1: permanent),
 * reason, historyTimeMs, channel. Replaces an active ban; clears the failures.
 */
export const MANUAL_BAN = `${PRELUDE}
local jail, client = ARGV[1], ARGV[2]
local duration = tonumber(ARGV[3])
local earlier = tonumber(redis.call('HGET', KEYS[2], jail) or '0')
local ban = { jail = jail, client = client, startMs = now, endMs = duration < 0 and -1 or now + duration,
              banCount = earlier + 1, reason = ARGV[4], manual = true }
redis.call('DEL', KEYS[1], KEYS[3])
write_ban(KEYS[1], ban)
remember(KEYS[2], jail, ban, tonumber(ARGV[5]))
redis.call('PUBLISH', ARGV[6], cjson.encode({ type = 'ban', ban = ban }))
return cjson.encode(ban)
`;

/**
 * Unban one client in the given jails. KEYS: ban and failures key pairs, in order. ARGV: client,
 * channel, then the jail of each pair. Returns the active bans lifted.
 */
export const UNBAN = `${PRELUDE}
local client, channel = ARGV[1], ARGV[2]
local lifted = {}
for i = 1, #KEYS, 2 do
  local jail = ARGV[2 + (i + 1) / 2]
  local ban = ban_table(KEYS[i], jail, client)
  redis.call('DEL', KEYS[i], KEYS[i + 1])
  if ban and (ban.endMs < 0 or ban.endMs > now) then
    lifted[#lifted + 1] = ban
    redis.call('PUBLISH', channel, cjson.encode({ type = 'unban', ban = ban }))
  end
end
if #lifted == 0 then return '[]' end
return cjson.encode(lifted)
`;

/** Reads the bans at the given keys. KEYS: ban keys. ARGV: jail and client of each key. */
export const READ_BANS = `${PRELUDE}
local out = {}
for i = 1, #KEYS do
  local ban = ban_table(KEYS[i], ARGV[2 * i - 1], ARGV[2 * i])
  if ban and (ban.endMs < 0 or ban.endMs > now) then out[#out + 1] = ban end
end
if #out == 0 then return '[]' end
return cjson.encode(out)
`;
