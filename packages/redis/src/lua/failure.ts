import { PRELUDE } from './prelude.js';

/**
 * Counting a failure, shared by recordFailure and settle. K: failures, bans, version, history,
 * pardon, recidive failures (all of one client, one shard). A: the jail's rule, unpacked from the
 * string packRule() joined once at setup (codec.ts): 1 jail, 2 client, 3 findTimeMs, 4 maxRetry,
 * 5 pardonMaxRetry (or 'inf'), 6 banTimeMs (-1: permanent), 7 factor, 8 multipliers (comma list or
 * ''), 9 maxTimeMs, 10 overall (0/1), 11 jitterMs, 12 dryRun, 13 historyTimeMs, 14 recidive (0/1),
 * 15 recidive findTimeMs, 16 recidive maxRetry, 17 recidive banTimeMs (-1: permanent), 18 recidive
 * dryRun, 19 reason, 20 channel, 21 recidive jail name, 22 kept (max times kept).
 */
const RECORD = `${PRELUDE}
local function unpack_rule(jail, client, jitter, packed)
  local A = { jail, client }
  for field in string.gmatch(packed .. '|', '([^|]*)|') do A[#A + 1] = field end
  A[11] = jitter
  return A
end

local function record(K, A, origin)
  local jail, client = A[1], A[2]
  local find_ms, base_max = tonumber(A[3]), tonumber(A[4])
  local pardon_max = A[5] == 'inf' and math.huge or tonumber(A[5])
  local ban_ms = tonumber(A[6])
  local history_ms = tonumber(A[13])

  -- 1. A client already banned in this jail is not counted again (its ban is returned instead).
  local list = read(K[2], client)
  local held = find(list, jail)
  if held and active(held) then
    return { alreadyBanned = true, ban = held, count = 0, maxRetry = base_max }
  end

  -- 2. A pardoned client (a success on this jail's pardon rule) has the higher threshold.
  local pardoned = redis.call('EXISTS', K[5]) == 1
  local max_retry = pardoned and pardon_max or base_max

  -- 3. Slide the window: drop times at or before now - findTime, add this one, keep at most the
  -- threshold's number of times (a huge pardon threshold cannot grow memory).
  trim(K[1], find_ms)
  redis.call('RPUSH', K[1], now)
  redis.call('LTRIM', K[1], -math.min(max_retry, tonumber(A[22])), -1)
  local count = redis.call('LLEN', K[1])
  redis.call('PEXPIRE', K[1], find_ms)
  if count < max_retry then
    return { count = count, maxRetry = fin(max_retry), pardoned = pardoned }
  end

  -- 4. The threshold is reached: the window starts again, as fail2ban resets failures on a ban.
  redis.call('DEL', K[1])
  local overall = A[10] == '1'
  local earlier = tonumber(redis.call('HGET', K[4], overall and '*' or jail) or '0')
  local duration = ban_ms
  if ban_ms >= 0 and A[7] ~= '' and earlier > 0 then
    -- bantime.increment: banTime x factor x (multipliers[n] or 2^n), capped at maxTime.
    local mult
    if A[8] ~= '' then
      local m = {}
      for x in string.gmatch(A[8], '[^,]+') do m[#m + 1] = tonumber(x) end
      mult = m[math.min(earlier + 1, #m)]
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
    return { count = count, maxRetry = fin(max_retry), pardoned = pardoned, wouldBan = ban }
  end

  -- 6. Create the ban in the shard, count it in the history, and tell every instance.
  local epoch, seq = put_ban(K[2], K[3], ban, A[20], origin)
  local seqs = { seq }
  remember(K[4], jail, ban, history_ms)

  -- 7. A ban is a failure of the recidive jail: its threshold bans everywhere.
  local result = { count = count, maxRetry = fin(max_retry), pardoned = pardoned, ban = ban }
  if A[14] == '1' then
    local rjail = A[21]
    local rheld = find(read(K[2], client), rjail)
    if not (rheld and active(rheld)) then
      local rfind = tonumber(A[15])
      trim(K[6], rfind)
      redis.call('RPUSH', K[6], now)
      redis.call('PEXPIRE', K[6], rfind)
      local rcount = redis.call('LLEN', K[6])
      if rcount >= tonumber(A[16]) then
        redis.call('DEL', K[6])
        local rban_ms = tonumber(A[17])
        local rban = { jail = rjail, client = client, startMs = now,
                       endMs = rban_ms < 0 and -1 or now + rban_ms,
                       banCount = tonumber(redis.call('HGET', K[4], rjail) or '0') + 1,
                       reason = 'banned ' .. rcount .. ' times within ' .. math.floor(rfind / 1000) .. 's',
                       manual = false }
        result.recidive = rban
        result.recidiveDryRun = A[18] == '1'
        if A[18] ~= '1' then
          local _, rseq = put_ban(K[2], K[3], rban, A[20], origin)
          seqs[#seqs + 1] = rseq
          remember(K[4], rjail, rban, history_ms)
        end
      end
    end
  end
  result.epoch = epoch
  result.seqs = seqs
  return result
end
`;

/**
 * The conversations of this instance's (jail, client) pairs, batched: each group is the steps that
 * arrived for one pair while its previous call was out, in their order (counting.ts); the groups
 * waiting when the instance's previous call returned go in one call (on a Cluster, the groups of
 * one shard: one slot). KEYS: on a Cluster, seven per group, in the group's order: failures, bans,
 * version, history, pardon, recidive failures, reservations (all of one client, one shard); on a
 * single Redis none, the script building the same names from the prefix (batch.ts's Call). ARGV:
 * 1 origin (the instance's id, carried by announcements), 2 the key prefix ('' when KEYS are
 * given), 3 the number of rules, then per rule its jail and the rule packed (each rule the call's
 * groups use, once), then the plan, then per group its client. The plan has a line per group:
 * "<rule's index, from 1> <shard>", then per step a token, its kind, its number and its slot id
 * (planId() in counting.ts: no spaces) run together:
 *   r<holdMs>=<id>    reserve: admitted while failures in the window plus open reservations stay
 *                     below the threshold in force; the slot expires after holdMs
 *   s0=<id>           settle as a success: the slot is freed
 *   S<jitterMs>=<id>  settle as a failure: the slot is freed and the failure counted (as 'f')
 *   f<jitterMs>=      recordFailure (no id): counted, banning at the threshold
 * Returns a JSON array, one array per group, one answer per step: a reservation, false (a success
 * settled), or a failure's result (with the shard's epoch and the seqs it took when it banned).
 * The usual answers are arrays of numbers (codec.ts reads them; a JSON object costs Node a map, its
 * keys and a lookup per field, several times what the numbers do): a reservation without a ban
 * [admitted 1/0, count, inFlight, maxRetry], a failure that banned no one [count, maxRetry,
 * pardoned 1/0]. Answers that carry a ban stay objects.
 */
export const CONVERSE = `${RECORD}
local origin = ARGV[1]
local prefix = ARGV[2]
local rules = tonumber(ARGV[3])

-- Each rule's fields, unpacked once per call (by its first group) and shared by its groups: the
-- client (A[2]) and the jitter (A[11]) are set per group and step. Unpacked per group it was the
-- largest part of a settle's cost in the script (about 5 of 15 us).
local unpacked = {}

-- One group (the g-th, from 0): the steps of one (jail, client), its line of the plan.
local function converse(g, line, client)
  local head = {}
  for token in string.gmatch(line, '%S+') do head[#head + 1] = token end
  local rule = 2 + 2 * tonumber(head[1])
  local jail = ARGV[rule]
  local A = unpacked[rule]
  if A == nil then
    A = unpack_rule(jail, client, '0', ARGV[rule + 1])
    unpacked[rule] = A
  end
  A[2] = client
  A[11] = '0'
  local steps = #head - 2
  local K
  if prefix == '' then
    K = { KEYS[7 * g + 1], KEYS[7 * g + 2], KEYS[7 * g + 3], KEYS[7 * g + 4], KEYS[7 * g + 5],
          KEYS[7 * g + 6], KEYS[7 * g + 7] }
  else
    local base = prefix .. '{s' .. head[2] .. '}:'
    K = { base .. 'f:' .. jail .. ':' .. client, base .. 'b', base .. 'v', base .. 'h:' .. client,
          base .. 'p:' .. jail .. ':' .. client, base .. 'f:' .. A[21] .. ':' .. client,
          base .. 'r:' .. jail .. ':' .. client }
  end
  local find_ms, base_max = tonumber(A[3]), tonumber(A[4])
  local pardon_max = A[5] == 'inf' and math.huge or tonumber(A[5])
  local out = {}
  -- A refusal holds for the following reservations of this group until a settle or a failure
  -- changes the counts: a burst of 200 is one refusal computed, not 200.
  local refusal = nil

  -- After a failure this group counted below the threshold (no ban held, none made): what a
  -- reservation reads again is known, in this same run: the threshold in force (pardoned or not),
  -- the failures in the window, and that the client is not banned in this jail.
  local known = nil

  local function reserve(id, hold)
    local max_retry, count
    if known then
      max_retry, count = known.pardoned and pardon_max or base_max, known.count
    else
      -- 1. The threshold in force: the pardoned one while pardoned.
      max_retry = redis.call('EXISTS', K[5]) == 1 and pardon_max or base_max
      -- 2. Failures in the window (ended ones dropped).
      trim(K[1], find_ms)
      count = redis.call('LLEN', K[1])
    end
    -- Reservations still open (expired ones dropped).
    redis.call('ZREMRANGEBYSCORE', K[7], '-inf', now)
    local open = redis.call('ZCARD', K[7])
    -- 3. A banned client is refused with its ban.
    if not known then
      local held = find(read(K[2], client), jail)
      if held and active(held) then
        refusal = { admitted = false, ban = held, count = count, inFlight = open, maxRetry = fin(max_retry) }
        return refusal
      end
    end
    -- 4. The budget is taken by failures and attempts in flight: refused (the caller may wait).
    if count + open >= max_retry then
      refusal = { 0, count, open, fin(max_retry) }
      return refusal
    end
    -- 5. Admitted: the slot is held until settled, or until it expires (a crashed instance's attempt).
    redis.call('ZADD', K[7], now + hold, id)
    if redis.call('PTTL', K[7]) < hold then redis.call('PEXPIRE', K[7], hold) end
    return { 1, count, open + 1, fin(max_retry) }
  end

  for i = 1, steps do
    local step = head[2 + i]
    local eq = string.find(step, '=', 3, true)
    local kind, id, x = string.sub(step, 1, 1), string.sub(step, eq + 1), tonumber(string.sub(step, 2, eq - 1))
    if kind == 'r' then
      out[#out + 1] = refusal or reserve(id, x)
    else
      refusal = nil
      known = nil
      if kind ~= 'f' then redis.call('ZREM', K[7], id) end
      if kind == 's' then
        out[#out + 1] = false
      else
        A[11] = x
        local result = record(K, A, origin)
        if result.ban == nil and result.alreadyBanned == nil and result.wouldBan == nil then
          known = result
          out[#out + 1] = { result.count, result.maxRetry, result.pardoned and 1 or 0 }
        else
          out[#out + 1] = result
        end
      end
    end
  end
  return out
end

local all = {}
local clients = 5 + 2 * rules
local g = 0
for line in string.gmatch(ARGV[4 + 2 * rules], '[^\\n]+') do
  all[g + 1] = converse(g, line, ARGV[clients + g])
  g = g + 1
end
return cjson.encode(all)
`;
