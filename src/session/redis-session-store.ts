import { createHash, randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { z } from 'zod';
import type { Clock } from '../common/clock.js';
import { SessionStoreUnavailableError } from './session.errors.js';
import type { ReplaceTokensResult, SessionRecord, SessionStore, SessionTokens, StoreLock } from './session-store.js';

/*
 * Key layout, everything under `keyPrefix` (default `bff:`):
 *
 *   <prefix>session:<id>   string: the SessionRecord as versioned JSON; PEXPIREAT min(idleExpiresAt, absoluteExpiresAt)
 *   <prefix>sub:<sub>      set of session ids of one user, for deleteBySubject (back-channel logout by sub)
 *   <prefix>psid:<sid>     set of session ids bound to the provider's sid, for deleteByProviderSid
 *   <prefix>lock:<name>    string: the owner's random token; PX ttl (refresh single-flight)
 *   <prefix>once:<name>    string "1"; PX ttl (logout token jti replay protection)
 *
 * Index sets expire no earlier than their newest member. A member whose session expired by TTL is
 * harmless (a set member never recreates a session) and is pruned at the user's next sign-in
 * (create) or by deleteBySubject / deleteByProviderSid. Every write that touches a session and its indexes is one Lua script, so a crash
 * between steps cannot leave a session reachable without its index or the reverse.
 *
 * The scripts derive index and session keys from values inside the script, which a single Redis
 * (or a primary with replicas) allows and Redis Cluster does not: this store does not support Cluster.
 */

const DEFAULT_COMMAND_TIMEOUT_MS = 1000;
const DEFAULT_READY_TIMEOUT_MS = 2000;
const CONNECT_TIMEOUT_MS = 2000;
const MAX_RECONNECT_DELAY_MS = 2000;
const RECORD_VERSION = 1;
/** A swap lost to a concurrent slide is retried this often before giving up. */
const SWAP_ATTEMPTS = 3;

export interface RedisSessionStoreOptions {
  /** `redis://` or `rediss://` (TLS); may carry a username, password and database number. */
  readonly url: string;
  /** Overrides any password in `url`. */
  readonly password: string | undefined;
  readonly keyPrefix: string;
  /** How long one command may take before it fails with SessionStoreUnavailableError. Default 1000 ms. */
  readonly commandTimeoutMs?: number;
}

// JSON has no undefined: optional fields travel as null and come back as undefined, so a record
// read back deep-equals the one written.
const nullableString = z
  .string()
  .nullable()
  .transform((value) => value ?? undefined);

const RecordSchema = z.object({
  id: z.string().min(1),
  sub: z.string().min(1),
  providerSid: nullableString,
  claims: z.record(z.string(), z.unknown()),
  tokens: z.object({
    accessToken: z.string(),
    accessTokenExpiresAt: z.number(),
    refreshToken: nullableString,
    idToken: z.string(),
    scope: nullableString,
  }),
  logoutValue: z.string(),
  createdAt: z.number(),
  absoluteExpiresAt: z.number(),
  idleExpiresAt: z.number(),
  // records written before versions existed read as version 0
  version: z.number().int().min(0).default(0),
});

// The version lets a later release change the shape and still recognise what an older one wrote.
const StoredSchema = z.object({ v: z.literal(RECORD_VERSION), record: RecordSchema });

function serialize(record: SessionRecord): string {
  const stored = {
    id: record.id,
    sub: record.sub,
    providerSid: record.providerSid ?? null,
    claims: record.claims,
    tokens: {
      accessToken: record.tokens.accessToken,
      accessTokenExpiresAt: record.tokens.accessTokenExpiresAt,
      refreshToken: record.tokens.refreshToken ?? null,
      idToken: record.tokens.idToken,
      scope: record.tokens.scope ?? null,
    },
    logoutValue: record.logoutValue,
    createdAt: record.createdAt,
    absoluteExpiresAt: record.absoluteExpiresAt,
    idleExpiresAt: record.idleExpiresAt,
    version: record.version,
  };
  return JSON.stringify({ v: RECORD_VERSION, record: stored });
}

/** The one place a Redis payload becomes a SessionRecord; anything unexpected is "no session". */
function parseRecord(raw: string, id: string): SessionRecord | undefined {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return undefined; // malformed JSON is a missing session, by contract
  }
  const parsed = StoredSchema.safeParse(json);
  if (!parsed.success || parsed.data.record.id !== id) return undefined;
  return parsed.data.record;
}

function expiresAt(record: SessionRecord): number {
  return Math.min(record.idleExpiresAt, record.absoluteExpiresAt);
}

interface LuaScript {
  readonly lua: string;
  readonly sha: string;
}

function script(body: string): LuaScript {
  const lua = LUA_HELPERS + body;
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

// Shared by the session scripts. ARGV layout of every caller: [1] session key prefix,
// [2] sub index prefix, [3] psid index prefix, then script-specific values.
const LUA_HELPERS = `
local sessionPrefix, subPrefix, psidPrefix = ARGV[1], ARGV[2], ARGV[3]

-- the sub and sid of a stored record, or nil for a record that does not decode
local function indexKeysOf(raw)
  local ok, stored = pcall(cjson.decode, raw)
  if not ok or type(stored) ~= 'table' or type(stored.record) ~= 'table' then return nil end
  local record = stored.record
  local keys = {}
  if type(record.sub) == 'string' then keys[#keys + 1] = subPrefix .. record.sub end
  if type(record.providerSid) == 'string' then keys[#keys + 1] = psidPrefix .. record.providerSid end
  return keys, record
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

local function pruneIndex(key)
  for _, member in ipairs(redis.call('SMEMBERS', key)) do
    if redis.call('EXISTS', sessionPrefix .. member) == 0 then redis.call('SREM', key, member) end
  end
end

local function unindex(raw, id)
  local keys = indexKeysOf(raw)
  if keys then
    for _, key in ipairs(keys) do redis.call('SREM', key, id) end
  end
end

-- prune: drop members whose session expired; done on create (a login), not on every update
local function write(key, id, json, at, sub, psid, prune)
  redis.call('SET', key, json)
  redis.call('PEXPIREAT', key, at)
  local indexes = { subPrefix .. sub }
  if psid ~= '' then indexes[2] = psidPrefix .. psid end
  for _, index in ipairs(indexes) do
    if prune then pruneIndex(index) end
    redis.call('SADD', index, id)
    extendTo(index, at)
  end
end
`;

// KEYS[1] session key; ARGV[4] id, [5] json, [6] expiresAt, [7] sub, [8] sid or ''
const CREATE = script(`
local old = redis.call('GET', KEYS[1])
if old then unindex(old, ARGV[4]) end
write(KEYS[1], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], true)
return 1
`);

// KEYS[1] session key; ARGV[4] id, [5] the value read, [6] the new json, [7] expiresAt.
// Compare-and-swap on the whole stored value: a write based on a read that another request's
// write (a refresh, a slide, a logout) has since replaced changes nothing. Index keys never change
// here (sub and sid are fixed for a session's life).
const SWAP = script(`
local old = redis.call('GET', KEYS[1])
if not old then return 0 end
if old ~= ARGV[5] then return -1 end
redis.call('SET', KEYS[1], ARGV[6])
redis.call('PEXPIREAT', KEYS[1], ARGV[7])
return 1
`);

// KEYS[1] session key; ARGV[4] id, [5] the value to delete or '' for any.
// The compare lets get() drop a malformed record without racing a concurrent rewrite.
const DELETE = script(`
local old = redis.call('GET', KEYS[1])
if not old then return 0 end
if ARGV[5] ~= '' and old ~= ARGV[5] then return 0 end
unindex(old, ARGV[4])
redis.call('DEL', KEYS[1])
return 1
`);

// KEYS[1] index key. Removes every live member from all of its indexes, drops members whose
// session already expired, and returns how many sessions ended.
const DELETE_INDEXED = script(`
local count = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = sessionPrefix .. id
  local old = redis.call('GET', key)
  if old then
    unindex(old, id)
    redis.call('DEL', key)
    count = count + 1
  end
end
redis.call('DEL', KEYS[1])
return count
`);

const RELEASE_LOCK = script(`
if redis.call('GET', KEYS[1]) == ARGV[4] then redis.call('DEL', KEYS[1]) end
return 1
`);

/**
 * Sessions in Redis, shared by every replica. Each method makes its own bounded attempt and
 * rejects with SessionStoreUnavailableError when Redis is down, frozen or failing; the client
 * reconnects by itself (capped back-off, forever), so the same instance serves again once Redis
 * is back.
 */
export class RedisSessionStore implements SessionStore {
  private readonly redis: Redis;
  private readonly keys: { session: string; sub: string; psid: string; lock: string; once: string };
  /** Why the connection is down, for the cause of the errors raised meanwhile. */
  private connectionError: Error | undefined;

  constructor(
    options: RedisSessionStoreOptions,
    private readonly clock: Clock,
  ) {
    const prefix = options.keyPrefix;
    this.keys = { session: `${prefix}session:`, sub: `${prefix}sub:`, psid: `${prefix}psid:`, lock: `${prefix}lock:`, once: `${prefix}once:` };
    const { url, credentials } = splitCredentials(options.url, options.password);
    const commandTimeout = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.redis = new Redis(url, {
      ...credentials,
      commandTimeout,
      connectTimeout: CONNECT_TIMEOUT_MS,
      // ioredis arms this timer even for a socket that already closed (Redis down), and the timer
      // holds the process open: keep a shutdown during an outage from waiting for it.
      disconnectTimeout: 200,
      // Never give up: the process must serve again when Redis returns, however long it was gone.
      retryStrategy: (attempt) => Math.min(100 * 2 ** Math.min(attempt - 1, 10), MAX_RECONNECT_DELAY_MS),
      // A short offline queue bridges a reconnect blip; commandTimeout bounds the wait, and
      // flushing on every failed reconnect attempt keeps callers from queueing behind an outage.
      enableOfflineQueue: true,
      maxRetriesPerRequest: 0,
      // A command the caller already saw fail must not run later behind its back.
      autoResendUnfulfilledCommands: false,
    });
    // Without a listener ioredis writes every failed reconnect attempt to stderr, outside the
    // gateway's logs; callers see SessionStoreUnavailableError and log it once, so connection
    // errors only serve as the cause of those errors.
    this.redis.on('error', (error: Error) => {
      this.connectionError = error;
    });
    this.redis.on('ready', () => {
      this.connectionError = undefined;
    });
  }

  /**
   * Builds the store and waits up to `readyTimeoutMs` (default 2000) for a first connection.
   * Resolves either way: a Redis that is down at start-up leaves the store reconnecting in the
   * background and its calls rejecting with SessionStoreUnavailableError until Redis is back.
   */
  static async open(options: RedisSessionStoreOptions, clock: Clock, readyTimeoutMs = DEFAULT_READY_TIMEOUT_MS): Promise<RedisSessionStore> {
    const store = new RedisSessionStore(options, clock);
    await store.whenReady(readyTimeoutMs);
    return store;
  }

  async create(record: SessionRecord): Promise<void> {
    await this.script(CREATE, this.sessionKey(record.id), ...this.writeArgs(record));
  }

  async get(id: string): Promise<SessionRecord | undefined> {
    return (await this.read(id))?.record;
  }

  async touch(id: string, idleExpiresAt: number): Promise<boolean> {
    for (let attempt = 0; attempt < SWAP_ATTEMPTS; attempt++) {
      const read = await this.read(id);
      if (read === undefined) return false;
      const next = Math.min(idleExpiresAt, read.record.absoluteExpiresAt);
      if (next <= read.record.idleExpiresAt) return true;
      const result = await this.swap(read, { ...read.record, idleExpiresAt: next });
      if (result !== 'conflict') return result === 'replaced';
    }
    // every attempt lost to a concurrent write: that write kept the session alive just as well
    return true;
  }

  async replaceTokens(id: string, expectedVersion: number, tokens: SessionTokens, claims: Readonly<Record<string, unknown>>): Promise<ReplaceTokensResult> {
    for (let attempt = 0; attempt < SWAP_ATTEMPTS; attempt++) {
      const read = await this.read(id);
      if (read === undefined) return 'missing';
      if (read.record.version !== expectedVersion) return 'conflict';
      const result = await this.swap(read, { ...read.record, tokens, claims, version: expectedVersion + 1 });
      // a slide between the read and the swap: read again, the version decides
      if (result !== 'conflict') return result;
    }
    return 'conflict';
  }

  async delete(id: string): Promise<void> {
    await this.script(DELETE, this.sessionKey(id), id, '');
  }

  async deleteBySubject(sub: string): Promise<number> {
    return this.count(await this.script(DELETE_INDEXED, this.keys.sub + sub));
  }

  async deleteByProviderSid(providerSid: string): Promise<number> {
    return this.count(await this.script(DELETE_INDEXED, this.keys.psid + providerSid));
  }

  async tryLock(name: string, ttlMs: number): Promise<StoreLock | undefined> {
    const key = this.keys.lock + name;
    const owner = randomBytes(16).toString('base64url');
    const result = await this.call(() => this.redis.set(key, owner, 'PX', Math.ceil(ttlMs), 'NX'));
    if (result !== 'OK') return undefined;
    return {
      held: async () => (await this.call(() => this.redis.get(key))) === owner,
      // compare-and-delete: after expiry the lock may belong to someone else, whose lock stays
      release: async () => {
        await this.script(RELEASE_LOCK, key, owner);
      },
    };
  }

  async markOnce(name: string, ttlMs: number): Promise<boolean> {
    const result = await this.call(() => this.redis.set(this.keys.once + name, '1', 'PX', Math.ceil(ttlMs), 'NX'));
    return result === 'OK';
  }

  async isMarked(name: string): Promise<boolean> {
    return (await this.call(() => this.redis.exists(this.keys.once + name))) === 1;
  }

  async ping(): Promise<void> {
    await this.call(() => this.redis.ping());
  }

  size(): undefined {
    return undefined;
  }

  async close(): Promise<void> {
    if (this.redis.status === 'end') return;
    if (this.redis.status !== 'ready') {
      this.redis.disconnect();
      return;
    }
    await this.redis.quit().then(
      () => undefined,
      // a frozen Redis never answers QUIT: drop the socket instead
      () => this.redis.disconnect(),
    );
  }

  /** The live record and the exact stored value it came from (the compare of a later swap). */
  private async read(id: string): Promise<{ record: SessionRecord; raw: string } | undefined> {
    const raw = await this.call(() => this.redis.get(this.sessionKey(id)));
    if (raw === null) return undefined;
    const record = parseRecord(raw, id);
    if (record === undefined) {
      await this.script(DELETE, this.sessionKey(id), id, raw);
      return undefined;
    }
    // Expired by this replica's clock but not yet by Redis' TTL (skew): missing, but left for the
    // TTL to remove, since deleting could race another replica's write that just slid it.
    if (expiresAt(record) <= this.clock.now()) return undefined;
    return { record, raw };
  }

  private async swap(read: { record: SessionRecord; raw: string }, next: SessionRecord): Promise<ReplaceTokensResult> {
    const result = await this.script(SWAP, this.sessionKey(next.id), next.id, read.raw, serialize(next), Math.ceil(expiresAt(next)));
    if (result === 1) return 'replaced';
    return result === 0 ? 'missing' : 'conflict';
  }

  private whenReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.redis.status === 'ready') {
        resolve();
        return;
      }
      const done = (): void => {
        clearTimeout(timer);
        this.redis.off('ready', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      timer.unref();
      this.redis.once('ready', done);
    });
  }

  private sessionKey(id: string): string {
    return this.keys.session + id;
  }

  private writeArgs(record: SessionRecord): [string, string, number, string, string] {
    // PEXPIREAT takes whole milliseconds; rounding up never ends a session early
    return [record.id, serialize(record), Math.ceil(expiresAt(record)), record.sub, record.providerSid ?? ''];
  }

  private count(result: unknown): number {
    if (typeof result !== 'number') throw new SessionStoreUnavailableError(new Error(`unexpected script reply: ${typeof result}`));
    return result;
  }

  /** EVALSHA, falling back to EVAL once after Redis lost its script cache (restart, failover). */
  private async script(lua: LuaScript, key: string, ...args: Array<string | number>): Promise<unknown> {
    const argv = [this.keys.session, this.keys.sub, this.keys.psid, ...args];
    return this.call(async () => {
      try {
        return await this.redis.evalsha(lua.sha, 1, key, ...argv);
      } catch (error) {
        if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
        return this.redis.eval(lua.lua, 1, key, ...argv);
      }
    });
  }

  private async call<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (error) {
      const cause = this.redis.status !== 'ready' && this.connectionError !== undefined ? this.connectionError : error;
      throw new SessionStoreUnavailableError(cause);
    }
  }
}

/**
 * ioredis lets a URL's credentials win over the options object; REDIS_PASSWORD must win instead,
 * so the credentials leave the URL and travel as options. The scheme stays, so `rediss://` still
 * turns on TLS in ioredis.
 */
function splitCredentials(url: string, password: string | undefined): { url: string; credentials: Pick<RedisOptions, 'username' | 'password'> } {
  const parsed = new URL(url);
  const username = decodeUserInfo(parsed.username);
  const urlPassword = decodeUserInfo(parsed.password);
  parsed.username = '';
  parsed.password = '';
  const credentials: Pick<RedisOptions, 'username' | 'password'> = {};
  if (username !== '') credentials.username = username;
  const effective = password ?? (urlPassword === '' ? undefined : urlPassword);
  if (effective !== undefined) credentials.password = effective;
  return { url: parsed.toString(), credentials };
}

function decodeUserInfo(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value; // a literal '%' that is not an escape: the password is what was written
  }
}
