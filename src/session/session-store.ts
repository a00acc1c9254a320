import type { DpopPrivateJwk } from '../oidc/dpop.js';

/** The tokens of one session. Only ever on the server. */
export interface SessionTokens {
  readonly accessToken: string;
  /** Epoch milliseconds. */
  readonly accessTokenExpiresAt: number;
  readonly refreshToken: string | undefined;
  readonly idToken: string;
  readonly scope: string | undefined;
  /**
   * Tokens obtained for routes with their own audience, resource or scope, by route prefix: they
   * live (sealed) with the session's, so a request still costs one store read, and are replaced
   * with the same compare-and-set.
   */
  readonly routes?: Readonly<Record<string, RouteToken>> | undefined;
}

/** An access token a route's policy asked for (refresh-token grant with a target, or token exchange). */
export interface RouteToken {
  readonly accessToken: string;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
}

export interface SessionRecord {
  /** Store key: SHA-256 (hex) of the cookie's session id. The raw id is never stored. */
  readonly id: string;
  readonly sub: string;
  /** The provider's `sid` claim, for back-channel logout (OIDC Back-Channel Logout §2.4). */
  readonly providerSid: string | undefined;
  /** The ID token's user claims (no protocol claims such as nonce or at_hash). */
  readonly claims: Readonly<Record<string, unknown>>;
  readonly tokens: SessionTokens;
  /** The value of `sid` in the logout URL: proves a logout request came from the app, not a cross-site link. */
  readonly logoutValue: string;
  /**
   * OIDC_DPOP: the session's own DPoP private key (RFC 9449), created at its login; every token of
   * the session is bound to it. Sealed at rest with the rest of the record; never leaves the server.
   */
  readonly dpopKey?: DpopPrivateJwk | undefined;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  readonly absoluteExpiresAt: number;
  readonly idleExpiresAt: number;
  /**
   * Token generation: 0 at creation, +1 on every replaceTokens. A refresher writes only if the
   * version it read is still current, so it can never put back tokens another request replaced.
   */
  readonly version: number;
}

/** What replaceTokens did: `conflict` when the stored version is not the expected one (someone refreshed first). */
export type ReplaceTokensResult = 'replaced' | 'conflict' | 'missing';

/** A held lock; release is safe to call once the lock has expired or been taken over. */
export interface StoreLock {
  /** True while this holder still owns the lock: not expired, not taken over by another holder. */
  held(): Promise<boolean>;
  release(): Promise<void>;
}

/**
 * Where sessions live: the one seam with two implementations (memory for one process, Redis for
 * replicas). Every implementation passes test/session/session-store.contract.ts.
 * Every method rejects with SessionStoreUnavailableError when the backing store cannot answer.
 */
export interface SessionStore {
  /**
   * What a new session's id must carry for this store to find it with one read, from the user's
   * sub: Redis Cluster's hash slot tag (a keyed hash of sub). Undefined for stores that need none.
   */
  sessionTag(sub: string): string | undefined;
  /** Adds a new session. It expires at min(idleExpiresAt, absoluteExpiresAt). */
  create(record: SessionRecord): Promise<void>;
  /** The session, or undefined when it does not exist or has expired. */
  get(id: string): Promise<SessionRecord | undefined>;
  /**
   * Moves only the idle expiry forward (never back, never past the absolute expiry); tokens and
   * claims are not written, so a slide can never put back tokens a refresh replaced. False when the
   * session no longer exists or has expired.
   */
  touch(id: string, idleExpiresAt: number): Promise<boolean>;
  /**
   * Compare-and-set of the tokens (and the claims a refreshed ID token brings): written only when
   * the stored version equals `expectedVersion`; the stored version becomes `expectedVersion + 1`.
   * Expiry fields are not written.
   */
  replaceTokens(id: string, expectedVersion: number, tokens: SessionTokens, claims: Readonly<Record<string, unknown>>): Promise<ReplaceTokensResult>;
  delete(id: string): Promise<void>;
  /** Ends every session of a user; returns how many ended. */
  deleteBySubject(sub: string): Promise<number>;
  /** Ends every session bound to the provider's session id; returns how many ended. */
  deleteByProviderSid(providerSid: string): Promise<number>;
  /** A short exclusive lock (refresh single-flight), or undefined when someone else holds it. */
  tryLock(name: string, ttlMs: number): Promise<StoreLock | undefined>;
  /** Records a one-time value (a logout token's jti); false when it was seen before. */
  markOnce(name: string, ttlMs: number): Promise<boolean>;
  /** True while a value recorded by markOnce is remembered; records nothing. */
  isMarked(name: string): Promise<boolean>;
  /** Resolves when the store answers (readiness). */
  ping(): Promise<void>;
  /** Sessions held (memory store; undefined where counting would be expensive). */
  size(): number | undefined;
  close(): Promise<void>;
}

/** DI token for the configured SessionStore. */
export const SESSION_STORE = Symbol('SESSION_STORE');
