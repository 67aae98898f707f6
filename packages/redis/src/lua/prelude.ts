/**
 * Lua shared by every script of the Redis store: Redis' clock, a client's bans as stored in its
 * shard's hash, the shard's version, expiry of the shard's keys, and the ban history. The key
 * layout is described in keys.ts. Times come from Redis (TIME), never from the app.
 */
export const PRELUDE = `
-- Redis' own clock, in ms: the one clock every instance agrees on.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- A shard's keys live this long after its last ban ends: a shard missing while an instance still
-- enforces one of its bans was lost (restart, FLUSHALL, eviction), not emptied.
local RETAIN = 604800000

-- A client's bans: one line per jail, 'jail|start|end|count|manual|reason' (end -1: permanent).
local function decode(value, client)
  local list = {}
  if not value then return list end
  for line in string.gmatch(value, '[^\\n]+') do
    local jail, s, e, c, m, reason = string.match(line, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
    if jail then
      list[#list + 1] = { jail = jail, client = client, startMs = tonumber(s), endMs = tonumber(e),
                          banCount = tonumber(c), manual = m == '1', reason = reason }
    end
  end
  return list
end

local function encode(list)
  local lines = {}
  for i, b in ipairs(list) do
    -- %d: Lua's default number format would write 1.7e+12
    lines[i] = b.jail .. '|' .. string.format('%d|%d|%d|', b.startMs, b.endMs, b.banCount) ..
               (b.manual and '1' or '0') .. '|' .. b.reason
  end
  return table.concat(lines, '\\n')
end

local function active(b) return b.endMs < 0 or b.endMs > now end

local function find(list, jail)
  for i, b in ipairs(list) do if b.jail == jail then return b, i end end
  return nil, nil
end

local function read(bkey, client) return decode(redis.call('HGET', bkey, client), client) end

local function store(bkey, client, list)
  if #list == 0 then redis.call('HDEL', bkey, client) else redis.call('HSET', bkey, client, encode(list)) end
end

-- A shard's version: its epoch and seq; a shard without one (new, or lost) starts a new epoch
-- (Redis' time in microseconds) at seq 0.
local function read_version(vkey)
  local v = redis.call('GET', vkey)
  local epoch, seq = nil, 0
  if v then
    local e, s = string.match(v, '^([^:]+):(%d+)$')
    epoch, seq = e, tonumber(s) or 0
  end
  if not epoch then epoch = t[1] .. string.format('%06d', tonumber(t[2])) end
  return epoch, seq
end

-- Counts one change of the shard: seq + 1 in its version.
local function bump(vkey)
  local epoch, seq = read_version(vkey)
  seq = seq + 1
  redis.call('SET', vkey, epoch .. ':' .. string.format('%d', seq), 'KEEPTTL')
  return epoch, seq
end

-- The shard's keys live as long as its longest ban, plus RETAIN; for ever while one is permanent.
local function extend(bkey, vkey, end_ms)
  local x = tonumber(redis.call('HGET', bkey, '#x') or '0')
  if x < 0 or end_ms < 0 then
    if x >= 0 then redis.call('HSET', bkey, '#x', -1) end
    redis.call('PERSIST', bkey)
    redis.call('PERSIST', vkey)
    return
  end
  if end_ms > x then
    redis.call('HSET', bkey, '#x', string.format('%d', end_ms))
    x = end_ms
  end
  local at = math.max(x, now) + RETAIN
  redis.call('PEXPIREAT', bkey, string.format('%d', at))
  redis.call('PEXPIREAT', vkey, string.format('%d', at))
end

-- After a permanent ban is lifted: the longest ban left sets the expiry again.
local function recompute(bkey, vkey)
  local all = redis.call('HGETALL', bkey)
  local x = 0
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 1) ~= '#' then
      for _, b in ipairs(decode(all[i + 1], all[i])) do
        if b.endMs < 0 then return end
        if b.endMs > x then x = b.endMs end
      end
    end
  end
  redis.call('HSET', bkey, '#x', string.format('%d', x))
  local at = math.max(x, now) + RETAIN
  redis.call('PEXPIREAT', bkey, string.format('%d', at))
  redis.call('PEXPIREAT', vkey, string.format('%d', at))
end

-- Drops ended bans from a few clients of the shard, from where the last tidy stopped: readers
-- skip ended bans anyway; this keeps them from piling up in a busy shard. Not a change: no seq.
local function tidy(bkey)
  local r = redis.call('HSCAN', bkey, redis.call('HGET', bkey, '#c') or '0', 'COUNT', 16)
  local fields = r[2]
  for i = 1, #fields, 2 do
    local client = fields[i]
    if string.sub(client, 1, 1) ~= '#' then
      local list = decode(fields[i + 1], client)
      local keep = {}
      for _, b in ipairs(list) do if active(b) then keep[#keep + 1] = b end end
      if #keep < #list then store(bkey, client, keep) end
    end
  end
  if redis.call('EXISTS', bkey) == 1 then redis.call('HSET', bkey, '#c', r[1]) end
end

-- Tells every instance: the change, with the shard's version after it and who made it.
local function announce(channel, kind, ban, epoch, seq, origin)
  redis.call('PUBLISH', channel, cjson.encode({ type = kind, ban = ban, epoch = epoch, seq = seq,
                                                origin = origin }))
end

-- Writes a ban into the shard (replacing the client's ban in that jail), counts and announces it.
local function put_ban(bkey, vkey, ban, channel, origin)
  local list = read(bkey, ban.client)
  local _, at = find(list, ban.jail)
  if at then list[at] = ban else list[#list + 1] = ban end
  store(bkey, ban.client, list)
  local epoch, seq = bump(vkey)
  extend(bkey, vkey, ban.endMs)
  announce(channel, 'ban', ban, epoch, seq, origin)
  tidy(bkey)
  return epoch, seq
end

-- Keeps the client's history historyTime after the ban ends (for ever after a permanent ban).
-- was: the key's PTTL before this write: -2 absent (a new history: it gets its expiry now, or it
-- would never expire), -1 kept for ever (an earlier permanent ban), else its time left.
local function keep_history(hkey, ban, history_ms, was)
  if ban.endMs < 0 then
    redis.call('PERSIST', hkey)
  else
    local keep = ban.endMs - now + history_ms
    if was == -2 or (was ~= -1 and keep > was) then redis.call('PEXPIRE', hkey, string.format('%d', keep)) end
  end
end

-- Counts the ban in the client's history, kept historyTime after the ban ends.
local function remember(hkey, jail, ban, history_ms)
  local was = redis.call('PTTL', hkey)
  redis.call('HINCRBY', hkey, jail, 1)
  redis.call('HINCRBY', hkey, '*', 1)
  keep_history(hkey, ban, history_ms, was)
end

-- Slides a window: drops failure times at or before now - window.
local function trim(key, window_ms)
  while true do
    local first = redis.call('LINDEX', key, 0)
    if not first or tonumber(first) > now - window_ms then break end
    redis.call('LPOP', key)
  end
end

-- JSON has no infinity: an infinite threshold travels as -1.
local function fin(x) if x == math.huge then return -1 end return x end
`;
