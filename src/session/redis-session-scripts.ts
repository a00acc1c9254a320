import { createHash } from 'node:crypto';

/*
 * The Lua scripts of RedisSessionStore, for its two key layouts (redis-session-layout.ts).
 *
 * Numbers that are written back travel as the caller's strings: Lua would print large numbers in
 * exponent notation, which PEXPIREAT and the TS side do not read.
 */

export interface LuaScript {
  readonly lua: string;
  readonly sha: string;
}

function script(...parts: string[]): LuaScript {
  const lua = parts.join('');
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/** Helpers that touch only keys their caller names. */
const LUA_COMMON = `
-- the version, idle and absolute expiry of a record that is live by the caller's clock, or nil
local function live(key, now)
  local fields = redis.call('HMGET', key, 'v', 'idle', 'abs')
  local version, idle, abs = tonumber(fields[1]), tonumber(fields[2]), tonumber(fields[3])
  if not version or not idle or not abs then return nil end
  if math.min(idle, abs) <= tonumber(now) then return nil end
  return version, idle, abs, fields[3]
end

local function redisNowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- never shorten an index's life: it must outlive its newest member
local function extendTo(key, at)
  local ttl = redis.call('PTTL', key)
  if ttl < 0 or redisNowMs() + ttl < tonumber(at) then redis.call('PEXPIREAT', key, at) end
end

-- the idle expiry a slide may write: forward only, never past the absolute expiry; nil when none
local function slideTo(idle, abs, absText, wantedText, wantedAt)
  local wanted, at = tonumber(wantedText), wantedAt
  if wanted > abs then
    wanted, wantedText, at = abs, absText, string.format('%.0f', math.ceil(abs))
  end
  if wanted > idle then return wantedText, at end
  return nil
end
`;

/*
 * Single Redis and Sentinel (one primary): the scripts derive index and record keys from the
 * prefixes in ARGV[1..3] and from values in the records, as they always have. ARGV layout of every
 * caller: [1] record key prefix, [2] by-sub index prefix, [3] by-psid index prefix, then
 * script-specific values.
 */
const LUA_PREFIXED = `
local recordPrefix, subPrefix, psidPrefix = ARGV[1], ARGV[2], ARGV[3]

local function indexKeysOf(key)
  local fields = redis.call('HMGET', key, 'sub', 'psid')
  local keys = {}
  if fields[1] then keys[#keys + 1] = subPrefix .. fields[1] end
  if fields[2] then keys[#keys + 1] = psidPrefix .. fields[2] end
  return keys
end

local function pruneIndex(key)
  for _, member in ipairs(redis.call('SMEMBERS', key)) do
    if redis.call('EXISTS', recordPrefix .. member) == 0 then redis.call('SREM', key, member) end
  end
end

local function unindex(key, id)
  for _, index in ipairs(indexKeysOf(key)) do redis.call('SREM', index, id) end
end
`;

const prefixed = (body: string): LuaScript => script(LUA_COMMON, LUA_PREFIXED, body);
const keyed = (body: string): LuaScript => script(LUA_COMMON, body);

export const PREFIXED = {
  // KEYS[1] record key; ARGV[4] id, [5] version, [6] idle, [7] abs, [8] expire-at, [9] sub HMAC,
  // [10] psid HMAC or '', [11] sealed ident, [12] sealed tokens
  create: prefixed(`
unindex(KEYS[1], ARGV[4])
redis.call('DEL', KEYS[1])
local fields = { 'v', ARGV[5], 'idle', ARGV[6], 'abs', ARGV[7], 'sub', ARGV[9], 'ident', ARGV[11], 'tokens', ARGV[12] }
local indexes = { subPrefix .. ARGV[9] }
if ARGV[10] ~= '' then
  fields[#fields + 1] = 'psid'
  fields[#fields + 1] = ARGV[10]
  indexes[2] = psidPrefix .. ARGV[10]
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIREAT', KEYS[1], ARGV[8])
-- prune on create (a sign-in), not on every slide
for _, index in ipairs(indexes) do
  pruneIndex(index)
  redis.call('SADD', index, ARGV[4])
  extendTo(index, ARGV[8])
end
return 1
`),

  // KEYS[1] record key; ARGV[4] the wanted idle expiry, [5] its expire-at, [6] the caller's now.
  // Writes the idle expiry only: a slide cannot touch the tokens, whatever it read before.
  touch: prefixed(`
local version, idle, abs, absText = live(KEYS[1], ARGV[6])
if not version then return 0 end
local idleText, at = slideTo(idle, abs, absText, ARGV[4], ARGV[5])
if idleText then
  redis.call('HSET', KEYS[1], 'idle', idleText)
  redis.call('PEXPIREAT', KEYS[1], at)
  for _, index in ipairs(indexKeysOf(KEYS[1])) do extendTo(index, at) end
end
return 1
`),

  // KEYS[1] record key; ARGV[4] id
  delete: prefixed(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
unindex(KEYS[1], ARGV[4])
redis.call('DEL', KEYS[1])
return 1
`),

  // KEYS: the index's key under every configured secret. Removes every live member from all of its
  // indexes, drops members whose session already expired, and returns how many sessions ended.
  deleteIndexed: prefixed(`
local count = 0
for _, index in ipairs(KEYS) do
  for _, id in ipairs(redis.call('SMEMBERS', index)) do
    local key = recordPrefix .. id
    if redis.call('EXISTS', key) == 1 then
      unindex(key, id)
      redis.call('DEL', key)
      count = count + 1
    end
  end
  redis.call('DEL', index)
end
return count
`),
};

/*
 * Redis Cluster: every key a script touches arrives in KEYS, and all of one call's keys share the
 * session's hash slot (the caller reads what it must name beforehand). ARGV starts at 1.
 */
export const KEYED = {
  // KEYS[1] record key, [2] its by-sub index, [3..] record keys of the index's members as the caller
  // read them (pruning candidates); ARGV[1] id, [2] version, [3] idle, [4] abs, [5] expire-at,
  // [6] sub HMAC, [7] psid HMAC or '', [8] sealed ident, [9] sealed tokens, [10..] the candidates' ids
  create: keyed(`
redis.call('DEL', KEYS[1])
local fields = { 'v', ARGV[2], 'idle', ARGV[3], 'abs', ARGV[4], 'sub', ARGV[6], 'ident', ARGV[8], 'tokens', ARGV[9] }
if ARGV[7] ~= '' then
  fields[#fields + 1] = 'psid'
  fields[#fields + 1] = ARGV[7]
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then redis.call('SREM', KEYS[2], ARGV[i + 7]) end
end
redis.call('SADD', KEYS[2], ARGV[1])
extendTo(KEYS[2], ARGV[5])
return 1
`),

  // KEYS[1] record key, [2] its by-sub index; ARGV[1] the wanted idle expiry, [2] its expire-at, [3] the caller's now
  touch: keyed(`
local version, idle, abs, absText = live(KEYS[1], ARGV[3])
if not version then return 0 end
local idleText, at = slideTo(idle, abs, absText, ARGV[1], ARGV[2])
if idleText then
  redis.call('HSET', KEYS[1], 'idle', idleText)
  redis.call('PEXPIREAT', KEYS[1], at)
  extendTo(KEYS[2], at)
end
return 1
`),

  // KEYS[1] record key, [2] its by-sub index; ARGV[1] id
  delete: keyed(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
return 1
`),

  // KEYS[1] a by-sub index, [2..] record keys of sessions in its slot; ARGV[i - 1] the id of KEYS[i].
  // Ends those sessions, takes them out of the index (dropping it once empty), returns how many ended.
  deleteSessions: keyed(`
local count = 0
for i = 2, #KEYS do
  if redis.call('DEL', KEYS[i]) == 1 then count = count + 1 end
  redis.call('SREM', KEYS[1], ARGV[i - 1])
end
if redis.call('SCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) end
return count
`),

  // KEYS[1] a provider-sid locator; ARGV[1] id, [2] the session's absolute expiry (epoch ms, whole)
  locate: keyed(`
redis.call('SADD', KEYS[1], ARGV[1])
extendTo(KEYS[1], ARGV[2])
return 1
`),

  // KEYS[1] a provider-sid locator; ARGV: the ids whose sessions ended
  forget: keyed(`
redis.call('SREM', KEYS[1], unpack(ARGV))
if redis.call('SCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) end
return 1
`),
};

/** Scripts with one key, the same in both layouts; ARGV starts at 1. */
export const SHARED = {
  // KEYS[1] record key; ARGV[1] expected version, [2] next version, [3] sealed tokens, [4] the caller's now.
  // Compare-and-set: the tokens change only if nobody replaced them since the caller read them.
  replaceTokens: keyed(`
local version = live(KEYS[1], ARGV[4])
if not version then return 0 end
if version ~= tonumber(ARGV[1]) then return -1 end
redis.call('HSET', KEYS[1], 'tokens', ARGV[3], 'v', ARGV[2])
return 1
`),

  // KEYS[1] lock key; ARGV[1] the owner's token
  releaseLock: keyed(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`),
};
