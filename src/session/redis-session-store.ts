import { createHash, randomBytes } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { Redis, type RedisOptions } from 'ioredis';
import { z } from 'zod';
import type { Clock } from '../common/clock.js';
import { RecordSeal } from './record-seal.js';
import { sidHash } from './session-cookie.js';
import { SessionStoreUnavailableError } from './session.errors.js';
import type { ReplaceTokensResult, SessionRecord, SessionStore, SessionTokens, StoreLock } from './session-store.js';

/*
 * Key layout, everything under `keyPrefix` (default `bff:`):
 *
 *   <prefix>record:<id>        hash, one per session; PEXPIREAT min(idle, abs):
 *                                v       version (decimal; replaceTokens' compare-and-set)
 *                                idle    idle expiry, epoch ms
 *                                abs     absolute expiry, epoch ms
 *                                sub     HMAC of the user's sub (its by-sub index)
 *                                psid    HMAC of the provider's sid (its by-psid index), absent without one
 *                                ident   sealed { sub, providerSid, logoutValue, createdAt }; written once
 *                                tokens  sealed { tokens, claims }; replaced by replaceTokens
 *   <prefix>by-sub:<hmac>      set of session ids of one user, for deleteBySubject (back-channel logout by sub)
 *   <prefix>by-psid:<hmac>     set of session ids bound to the provider's sid, for deleteByProviderSid
 *   <prefix>lock:<name>        string: the owner's random token; PX ttl (refresh single-flight; the
 *                              name holds the store key, itself a SHA-256 of the cookie's session id)
 *   <prefix>once:<sha256>      string "1"; PX ttl (logout token jti replay protection; the jti is hashed)
 *
 * <id> is the store key (SHA-256 of the session id in the cookie). Sealed fields are AES-256-GCM
 * under a key derived from SESSION_SECRET (RecordSeal); their associated data names the record
 * and the field (and, for tokens, the version), so a field copied to another record or position
 * does not open. The HMACs are keyed from SESSION_SECRET too: without it, a dump cannot tell
 * which user a session belongs to, only that two sessions share one. What the scripts need (version,
 * expiries, index hashes) stays readable beside the sealed fields: Lua cannot open them.
 *
 * Index sets expire no earlier than their newest member (create and touch extend them). A member
 * whose session expired by TTL is harmless (a set member never recreates a session) and is pruned
 * at the user's next sign-in (create) or by deleteBySubject / deleteByProviderSid. Every write that
 * touches a session and its indexes is one Lua script, so a crash between steps cannot leave a
 * session reachable without its index or the reverse.
 *
 * Records of the previous format (a JSON string under <prefix>session:<id>, indexes under
 * <prefix>sub: and <prefix>psid:) are never read: an upgrade signs users out once, and the old keys
 * expire by their own TTL.
 *
 * The scripts derive index and record keys from values inside the script, which a single Redis
 * (or a primary with replicas) allows and Redis Cluster does not: this store does not support Cluster.
 */

const DEFAULT_COMMAND_TIMEOUT_MS = 1000;
const DEFAULT_READY_TIMEOUT_MS = 2000;
const CONNECT_TIMEOUT_MS = 2000;
const MAX_RECONNECT_DELAY_MS = 2000;

export interface RedisSessionStoreOptions {
  /** `redis://` or `rediss://` (TLS); may carry a username, password and database number. */
  readonly url: string;
  /** Overrides any password in `url`. */
  readonly password: string | undefined;
  readonly keyPrefix: string;
  /** SESSION_SECRET's list: the first seals records and keys their index hashes, all open and find them. */
  readonly secrets: readonly string[];
  /** How long one command may take before it fails with SessionStoreUnavailableError. Default 1000 ms. */
  readonly commandTimeoutMs?: number;
}

// JSON has no undefined: optional fields travel as null and come back as undefined, so a record
// read back deep-equals the one written.
const nullableString = z
  .string()
  .nullable()
  .transform((value) => value ?? undefined);

/** The sealed part written once at creation. */
const IdentSchema = z.object({
  sub: z.string().min(1),
  providerSid: nullableString,
  logoutValue: z.string(),
  createdAt: z.number(),
});

/** The sealed part replaceTokens replaces. */
const TokensSchema = z.object({
  tokens: z.object({
    accessToken: z.string(),
    accessTokenExpiresAt: z.number(),
    refreshToken: nullableString,
    idToken: z.string(),
    scope: nullableString,
    routes: z.record(z.string(), z.object({ accessToken: z.string(), expiresAt: z.number() })).optional(),
  }),
  claims: z.record(z.string(), z.unknown()),
});

const decimal = z.string().regex(/^-?\d+(\.\d+)?$/).transform(Number);

/** The hash as HGETALL returns it; anything else is not a record this release wrote. */
const HashSchema = z.object({
  v: z.string().regex(/^\d+$/).transform(Number),
  idle: decimal,
  abs: decimal,
  ident: z.string().min(1),
  tokens: z.string().min(1),
});

// Associated data of the sealed fields: the record's store key and the field, and for the tokens
// the version they were written as, so neither a copy under another key nor an older tokens field
// put back beside a newer version opens.
const identData = (id: string): string => `bff-session-record-v2\u0000${id}\u0000ident`;
const tokensData = (id: string, version: number): string => `bff-session-record-v2\u0000${id}\u0000tokens\u0000${version}`;

function sealIdent(seal: RecordSeal, record: SessionRecord): string {
  const ident = { sub: record.sub, providerSid: record.providerSid ?? null, logoutValue: record.logoutValue, createdAt: record.createdAt };
  return seal.seal(JSON.stringify(ident), identData(record.id));
}

function sealTokens(seal: RecordSeal, id: string, version: number, tokens: SessionTokens, claims: Readonly<Record<string, unknown>>): string {
  const stored = {
    tokens: {
      accessToken: tokens.accessToken,
      accessTokenExpiresAt: tokens.accessTokenExpiresAt,
      refreshToken: tokens.refreshToken ?? null,
      idToken: tokens.idToken,
      scope: tokens.scope ?? null,
      // the routes' own tokens (per-route audience, resource, scope), sealed with the session's
      ...(tokens.routes === undefined ? {} : { routes: tokens.routes }),
    },
    claims,
  };
  return seal.seal(JSON.stringify(stored), tokensData(id, version));
}

/** Opens one sealed field into its schema; undefined when it does not open or does not parse. */
function openField<T>(seal: RecordSeal, sealed: string, associatedData: string, schema: z.ZodType<T>): T | undefined {
  const plaintext = seal.open(sealed, associatedData);
  if (plaintext === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(plaintext);
  } catch {
    return undefined; // sealed by us yet not JSON: a record this release cannot read is no session
  }
  const parsed = schema.safeParse(json);
  return parsed.success ? parsed.data : undefined;
}

function expiresAt(record: Pick<SessionRecord, 'idleExpiresAt' | 'absoluteExpiresAt'>): number {
  return Math.min(record.idleExpiresAt, record.absoluteExpiresAt);
}

/** PEXPIREAT takes whole milliseconds; rounding up never ends a session early. */
function expireAtArg(at: number): string {
  return String(Math.ceil(at));
}

interface LuaScript {
  readonly lua: string;
  readonly sha: string;
}

function script(body: string): LuaScript {
  const lua = LUA_HELPERS + body;
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

// Shared by the session scripts. ARGV layout of every caller: [1] record key prefix,
// [2] by-sub index prefix, [3] by-psid index prefix, then script-specific values.
// Numbers that are written back travel as the caller's strings: Lua would print large
// numbers in exponent notation, which PEXPIREAT and the TS side do not read.
const LUA_HELPERS = `
local recordPrefix, subPrefix, psidPrefix = ARGV[1], ARGV[2], ARGV[3]

local function indexKeysOf(key)
  local fields = redis.call('HMGET', key, 'sub', 'psid')
  local keys = {}
  if fields[1] then keys[#keys + 1] = subPrefix .. fields[1] end
  if fields[2] then keys[#keys + 1] = psidPrefix .. fields[2] end
  return keys
end

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

local function pruneIndex(key)
  for _, member in ipairs(redis.call('SMEMBERS', key)) do
    if redis.call('EXISTS', recordPrefix .. member) == 0 then redis.call('SREM', key, member) end
  end
end

local function unindex(key, id)
  for _, index in ipairs(indexKeysOf(key)) do redis.call('SREM', index, id) end
end
`;

// KEYS[1] record key; ARGV[4] id, [5] version, [6] idle, [7] abs, [8] expire-at, [9] sub HMAC,
// [10] psid HMAC or '', [11] sealed ident, [12] sealed tokens
const CREATE = script(`
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
`);

// KEYS[1] record key; ARGV[4] the wanted idle expiry, [5] its expire-at, [6] the caller's now.
// Writes the idle expiry only, never back and never past the absolute expiry: a slide cannot
// touch the tokens, whatever it read before.
const TOUCH = script(`
local version, idle, abs, absText = live(KEYS[1], ARGV[6])
if not version then return 0 end
local wanted, wantedText, at = tonumber(ARGV[4]), ARGV[4], ARGV[5]
if wanted > abs then
  wanted, wantedText, at = abs, absText, string.format('%.0f', math.ceil(abs))
end
if wanted > idle then
  redis.call('HSET', KEYS[1], 'idle', wantedText)
  redis.call('PEXPIREAT', KEYS[1], at)
  for _, index in ipairs(indexKeysOf(KEYS[1])) do extendTo(index, at) end
end
return 1
`);

// KEYS[1] record key; ARGV[4] expected version, [5] next version, [6] sealed tokens, [7] the caller's now.
// Compare-and-set: the tokens change only if nobody replaced them since the caller read them.
const REPLACE_TOKENS = script(`
local version = live(KEYS[1], ARGV[7])
if not version then return 0 end
if version ~= tonumber(ARGV[4]) then return -1 end
redis.call('HSET', KEYS[1], 'tokens', ARGV[6], 'v', ARGV[5])
return 1
`);

// KEYS[1] record key; ARGV[4] id
const DELETE = script(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
unindex(KEYS[1], ARGV[4])
redis.call('DEL', KEYS[1])
return 1
`);

// KEYS: the index's key under every configured secret. Removes every live member from all of its
// indexes, drops members whose session already expired, and returns how many sessions ended.
const DELETE_INDEXED = script(`
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
  private readonly log = new Logger(RedisSessionStore.name);
  private readonly redis: Redis;
  private readonly seal: RecordSeal;
  private readonly keys: { record: string; sub: string; psid: string; lock: string; once: string };
  /** Why the connection is down, for the cause of the errors raised meanwhile. */
  private connectionError: Error | undefined;

  constructor(
    options: RedisSessionStoreOptions,
    private readonly clock: Clock,
  ) {
    const prefix = options.keyPrefix;
    this.keys = { record: `${prefix}record:`, sub: `${prefix}by-sub:`, psid: `${prefix}by-psid:`, lock: `${prefix}lock:`, once: `${prefix}once:` };
    this.seal = new RecordSeal(options.secrets);
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
    const psid = record.providerSid === undefined ? '' : this.seal.lookupHash(record.providerSid);
    await this.script(CREATE, [this.recordKey(record.id)], [
      record.id,
      String(record.version),
      String(record.idleExpiresAt),
      String(record.absoluteExpiresAt),
      expireAtArg(expiresAt(record)),
      this.seal.lookupHash(record.sub),
      psid,
      sealIdent(this.seal, record),
      sealTokens(this.seal, record.id, record.version, record.tokens, record.claims),
    ]);
  }

  /** One HGETALL: the /api hot path makes exactly one Redis round trip while the token is fresh. */
  async get(id: string): Promise<SessionRecord | undefined> {
    const hash = await this.call(() => this.redis.hgetall(this.recordKey(id)));
    if (Object.keys(hash).length === 0) return undefined;
    // Not deleted when unreadable: during a rolling secret rotation a replica that lacks the new
    // secret must not destroy what the others wrote; the record's own TTL removes it.
    const parsed = HashSchema.safeParse(hash);
    if (!parsed.success) {
      this.unreadable(id, 'fields');
      return undefined;
    }
    const fields = parsed.data;
    // Expired by this replica's clock but not yet by Redis' TTL (skew): missing, but left for the
    // TTL to remove, since deleting could race another replica's write that just slid it.
    if (expiresAt({ idleExpiresAt: fields.idle, absoluteExpiresAt: fields.abs }) <= this.clock.now()) return undefined;
    const ident = openField(this.seal, fields.ident, identData(id), IdentSchema);
    const sealed = openField(this.seal, fields.tokens, tokensData(id, fields.v), TokensSchema);
    if (ident === undefined || sealed === undefined) {
      this.unreadable(id, 'seal');
      return undefined;
    }
    return {
      id,
      sub: ident.sub,
      providerSid: ident.providerSid,
      claims: sealed.claims,
      tokens: sealed.tokens,
      logoutValue: ident.logoutValue,
      createdAt: ident.createdAt,
      absoluteExpiresAt: fields.abs,
      idleExpiresAt: fields.idle,
      version: fields.v,
    };
  }

  async touch(id: string, idleExpiresAt: number): Promise<boolean> {
    const result = await this.script(TOUCH, [this.recordKey(id)], [String(idleExpiresAt), expireAtArg(idleExpiresAt), String(this.clock.now())]);
    return result === 1;
  }

  async replaceTokens(id: string, expectedVersion: number, tokens: SessionTokens, claims: Readonly<Record<string, unknown>>): Promise<ReplaceTokensResult> {
    const next = expectedVersion + 1;
    const sealed = sealTokens(this.seal, id, next, tokens, claims);
    const result = await this.script(REPLACE_TOKENS, [this.recordKey(id)], [String(expectedVersion), String(next), sealed, String(this.clock.now())]);
    if (result === 1) return 'replaced';
    return result === 0 ? 'missing' : 'conflict';
  }

  async delete(id: string): Promise<void> {
    await this.script(DELETE, [this.recordKey(id)], [id]);
  }

  async deleteBySubject(sub: string): Promise<number> {
    return this.count(await this.script(DELETE_INDEXED, this.indexKeys(this.keys.sub, sub), []));
  }

  async deleteByProviderSid(providerSid: string): Promise<number> {
    return this.count(await this.script(DELETE_INDEXED, this.indexKeys(this.keys.psid, providerSid), []));
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
        await this.script(RELEASE_LOCK, [key], [owner]);
      },
    };
  }

  /** The name (a logout token's jti) is hashed: a dump shows that marks exist, not their values. */
  async markOnce(name: string, ttlMs: number): Promise<boolean> {
    const result = await this.call(() => this.redis.set(this.onceKey(name), '1', 'PX', Math.ceil(ttlMs), 'NX'));
    return result === 'OK';
  }

  async isMarked(name: string): Promise<boolean> {
    return (await this.call(() => this.redis.exists(this.onceKey(name)))) === 1;
  }

  /** The value (a logout token's jti) is hashed: key names in a dump reveal nothing. */
  private onceKey(name: string): string {
    return this.keys.once + createHash('sha256').update(name).digest('hex');
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

  private recordKey(id: string): string {
    return this.keys.record + id;
  }

  /** The index key of `value` under every configured secret: sessions indexed before a rotation are found too. */
  private indexKeys(prefix: string, value: string): string[] {
    return this.seal.lookupHashes(value).map((hash) => prefix + hash);
  }

  private unreadable(id: string, part: 'fields' | 'seal'): void {
    // a record sealed under a secret no longer configured, copied under another key, or tampered with
    this.log.debug(`session record ${sidHash(id)} is unreadable (${part}); treated as no session`);
  }

  private count(result: unknown): number {
    if (typeof result !== 'number') throw new SessionStoreUnavailableError(new Error(`unexpected script reply: ${typeof result}`));
    return result;
  }

  /** EVALSHA, falling back to EVAL once after Redis lost its script cache (restart, failover). */
  private async script(lua: LuaScript, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    const argv = [this.keys.record, this.keys.sub, this.keys.psid, ...args];
    return this.call(async () => {
      try {
        return await this.redis.evalsha(lua.sha, keys.length, ...keys, ...argv);
      } catch (error) {
        if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
        return this.redis.eval(lua.lua, keys.length, ...keys, ...argv);
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
