import { createHash, randomBytes } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { Cluster } from 'ioredis';
import { z } from 'zod';
import type { Clock } from '../common/clock.js';
import { DpopPrivateJwkSchema } from '../oidc/dpop.js';
import { setBounded } from '../common/bounded-map.js';
import { RecordSeal } from './record-seal.js';
import { createRedisClient, isCluster, type RedisClient, type RedisConnection } from './redis-connection.js';
import { PrefixedLayout, SlottedLayout, type NewRecordFields, type SessionLayout } from './redis-session-layout.js';
import { SHARED, type LuaScript } from './redis-session-scripts.js';
import { sidHash } from './session-cookie.js';
import { SessionStoreUnavailableError } from './session.errors.js';
import type { ReplaceTokensResult, SessionRecord, SessionStore, SessionTokens, StoreLock } from './session-store.js';

/*
 * A session is one hash (where it and its indexes live: redis-session-layout.ts), PEXPIREAT
 * min(idle, abs):
 *     v       version (decimal; replaceTokens' compare-and-set)
 *     idle    idle expiry, epoch ms
 *     abs     absolute expiry, epoch ms
 *     sub     HMAC of the user's sub (its by-sub index)
 *     psid    HMAC of the provider's sid (its by-psid index), absent without one
 *     ident   sealed { sub, providerSid, logoutValue, createdAt, dpopKey }; written once (dpopKey:
 *             the session's private DPoP JWK under OIDC_DPOP, sealed like the tokens)
 *     tokens  sealed { tokens, claims }; replaced by replaceTokens
 * Beside the sessions, under `keyPrefix` (default `bff:`):
 *   <prefix>lock:<name>        string: the owner's random token; PX ttl (refresh single-flight; the
 *                              name holds the store key, itself a SHA-256 of the cookie's session id)
 *   <prefix>once:<sha256>      string "1"; PX ttl (logout token jti replay protection; the jti is hashed)
 *
 * The record's id is the store key (SHA-256 of the session id in the cookie, and in Redis Cluster
 * the slot tag after it). Sealed fields are AES-256-GCM under a key derived from SESSION_SECRET
 * (RecordSeal); their associated data names the record and the field (and, for tokens, the
 * version), so a field copied to another record or position does not open. The HMACs are keyed
 * from SESSION_SECRET too: without it, a dump cannot tell which user a session belongs to, only
 * that two sessions share one. What the scripts need (version, expiries, index hashes) stays
 * readable beside the sealed fields: Lua cannot open them.
 *
 * Index sets expire no earlier than their newest member (create and touch extend them). A member
 * whose session expired by TTL is harmless (a set member never recreates a session) and is pruned
 * at the user's next sign-in (create) or by deleteBySubject / deleteByProviderSid.
 *
 * Records of the previous format (a JSON string under <prefix>session:<id>, indexes under
 * <prefix>sub: and <prefix>psid:) are never read: an upgrade signs users out once, and the old keys
 * expire by their own TTL.
 */

const DEFAULT_COMMAND_TIMEOUT_MS = 1000;
const DEFAULT_READY_TIMEOUT_MS = 2000;

export type RedisSessionStoreOptions = RedisConnection & {
  /** Overrides any password in a URL; the data nodes' password for Sentinel and Cluster. */
  readonly password: string | undefined;
  readonly keyPrefix: string;
  /** SESSION_SECRET's list: the first seals records and keys their index hashes, all open and find them. */
  readonly secrets: readonly string[];
  /** How long one command may take before it fails with SessionStoreUnavailableError. Default 1000 ms. */
  readonly commandTimeoutMs?: number;
};

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
  /** OIDC_DPOP: the session's DPoP private key (RFC 9449), which never changes for a session. */
  dpopKey: DpopPrivateJwkSchema.optional(),
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

type Ident = z.infer<typeof IdentSchema>;
type SealedTokens = z.infer<typeof TokensSchema>;

/** Records whose sealed fields a replica keeps opened: a few KB each, some MB at most. */
const OPENED_RECORDS_MAX = 4_096;

/** A record's sealed fields as read, and what they opened to. */
interface OpenedRecord {
  readonly version: number;
  readonly sealedIdent: string;
  readonly sealedTokens: string;
  readonly ident: Ident;
  readonly tokens: SealedTokens;
}

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
  const ident = {
    sub: record.sub,
    providerSid: record.providerSid ?? null,
    logoutValue: record.logoutValue,
    createdAt: record.createdAt,
    ...(record.dpopKey === undefined ? {} : { dpopKey: record.dpopKey }),
  };
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

/**
 * Sessions in Redis, shared by every replica. Each method makes its own bounded attempt and
 * rejects with SessionStoreUnavailableError when Redis is down, frozen or failing; the client
 * reconnects by itself (capped back-off, forever), so the same instance serves again once Redis
 * is back.
 */
export class RedisSessionStore implements SessionStore {
  private readonly log = new Logger(RedisSessionStore.name);
  private readonly redis: RedisClient;
  private readonly seal: RecordSeal;
  private readonly layout: SessionLayout;
  private readonly keys: { lock: string; once: string };
  /** Why the connection is down, for the cause of the errors raised meanwhile. */
  private connectionError: Error | undefined;
  /**
   * The last fields each session's reads opened, by record id. Opening (AES-GCM, JSON, schema) is
   * most of an /api request's store cost, and a session's fields stay the same between refreshes:
   * a read whose sealed fields and version are exactly those opened before (so the same bytes under
   * the same associated data) takes what they opened to. The opened tokens stay in this process's
   * memory, as the memory store's records do; Redis still holds only sealed ones.
   */
  private readonly opened = new Map<string, OpenedRecord>();

  constructor(
    options: RedisSessionStoreOptions,
    private readonly clock: Clock,
  ) {
    const prefix = options.keyPrefix;
    this.keys = { lock: `${prefix}lock:`, once: `${prefix}once:` };
    this.seal = new RecordSeal(options.secrets);
    this.redis = createRedisClient(options, { password: options.password, commandTimeoutMs: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS });
    const runner = { run: this.script.bind(this), members: (key: string) => this.call(() => this.redis.smembers(key)) };
    this.layout = isCluster(options) ? new SlottedLayout(prefix, runner) : new PrefixedLayout(prefix, runner);
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

  sessionTag(sub: string): string | undefined {
    return this.layout.sessionTag(this.seal.lookupHash(sub));
  }

  async create(record: SessionRecord): Promise<void> {
    const fields: NewRecordFields = {
      id: record.id,
      version: String(record.version),
      idle: String(record.idleExpiresAt),
      abs: String(record.absoluteExpiresAt),
      expireAt: expireAtArg(expiresAt(record)),
      absoluteExpireAt: expireAtArg(record.absoluteExpiresAt),
      subHash: this.seal.lookupHash(record.sub),
      psidHash: record.providerSid === undefined ? undefined : this.seal.lookupHash(record.providerSid),
      ident: sealIdent(this.seal, record),
      tokens: sealTokens(this.seal, record.id, record.version, record.tokens, record.claims),
    };
    await this.layout.create(fields);
  }

  /** One HGETALL: the /api hot path makes exactly one Redis round trip while the token is fresh. */
  async get(id: string): Promise<SessionRecord | undefined> {
    const key = this.layout.recordKey(id);
    if (key === undefined) return undefined;
    const hash = await this.call(() => this.redis.hgetall(key));
    if (Object.keys(hash).length === 0) {
      this.opened.delete(id);
      return undefined;
    }
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
    const opened = this.open(id, fields);
    if (opened === undefined) {
      this.unreadable(id, 'seal');
      return undefined;
    }
    const { ident, tokens: sealed } = opened;
    return {
      id,
      sub: ident.sub,
      providerSid: ident.providerSid,
      claims: sealed.claims,
      tokens: sealed.tokens,
      logoutValue: ident.logoutValue,
      createdAt: ident.createdAt,
      ...(ident.dpopKey === undefined ? {} : { dpopKey: ident.dpopKey }),
      absoluteExpiresAt: fields.abs,
      idleExpiresAt: fields.idle,
      version: fields.v,
    };
  }

  async touch(id: string, idleExpiresAt: number): Promise<boolean> {
    return this.layout.touch(id, String(idleExpiresAt), expireAtArg(idleExpiresAt), String(this.clock.now()));
  }

  async replaceTokens(id: string, expectedVersion: number, tokens: SessionTokens, claims: Readonly<Record<string, unknown>>): Promise<ReplaceTokensResult> {
    const key = this.layout.recordKey(id);
    if (key === undefined) return 'missing';
    const next = expectedVersion + 1;
    const sealed = sealTokens(this.seal, id, next, tokens, claims);
    const result = await this.script(SHARED.replaceTokens, [key], [String(expectedVersion), String(next), sealed, String(this.clock.now())]);
    if (result === 1) return 'replaced';
    return result === 0 ? 'missing' : 'conflict';
  }

  /** The record's sealed fields opened, from `opened` when they are the ones opened last time. */
  private open(id: string, fields: { readonly v: number; readonly ident: string; readonly tokens: string }): OpenedRecord | undefined {
    const known = this.opened.get(id);
    if (known !== undefined && known.version === fields.v && known.sealedTokens === fields.tokens && known.sealedIdent === fields.ident) return known;
    const ident = openField(this.seal, fields.ident, identData(id), IdentSchema);
    const tokens = openField(this.seal, fields.tokens, tokensData(id, fields.v), TokensSchema);
    if (ident === undefined || tokens === undefined) {
      this.opened.delete(id);
      return undefined;
    }
    const record = { version: fields.v, sealedIdent: fields.ident, sealedTokens: fields.tokens, ident, tokens };
    setBounded(this.opened, id, record, OPENED_RECORDS_MAX);
    return record;
  }

  async delete(id: string): Promise<void> {
    this.opened.delete(id);
    await this.layout.delete(id);
  }

  async deleteBySubject(sub: string): Promise<number> {
    return this.layout.deleteBySubject(this.seal.lookupHashes(sub));
  }

  async deleteByProviderSid(providerSid: string): Promise<number> {
    return this.layout.deleteByProviderSid(this.seal.lookupHashes(providerSid));
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
        await this.script(SHARED.releaseLock, [key], [owner]);
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
    if (!(this.redis instanceof Cluster)) {
      await this.call(() => this.redis.ping());
      return;
    }
    // a node answers PING while the cluster refuses every key (a shard without a primary): ask for the cluster's state
    const info = await this.call(() => this.redis.call('CLUSTER', 'INFO'));
    if (typeof info !== 'string' || !/^cluster_state:ok\r?$/m.test(info)) throw new SessionStoreUnavailableError(new Error('the Redis Cluster is not serving every slot (cluster_state is not ok)'));
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
      // QUIT ends the connection to the primary only: in Sentinel mode the connections that watch
      // for a failover (+switch-master) would go on reconnecting and hold the process open
      () => this.redis.disconnect(),
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

  private unreadable(id: string, part: 'fields' | 'seal'): void {
    // a record sealed under a secret no longer configured, copied under another key, or tampered with
    this.log.debug(`session record ${sidHash(id)} is unreadable (${part}); treated as no session`);
  }

  /** EVALSHA, falling back to EVAL once after Redis lost its script cache (restart, failover). */
  private async script(lua: LuaScript, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    return this.call(async () => {
      try {
        return await this.redis.evalsha(lua.sha, keys.length, ...keys, ...args);
      } catch (error) {
        if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
        return this.redis.eval(lua.lua, keys.length, ...keys, ...args);
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
