/** The tokens of one session. Only ever on the server. */
export interface SessionTokens {
  readonly accessToken: string;
  /** Epoch milliseconds. */
  readonly accessTokenExpiresAt: number;
  readonly refreshToken: string | undefined;
  readonly idToken: string;
  readonly scope: string | undefined;
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
  /** Epoch milliseconds. */
  readonly createdAt: number;
  readonly absoluteExpiresAt: number;
  readonly idleExpiresAt: number;
}

/** A held lock; release is safe to call once the lock has expired or been taken over. */
export interface StoreLock {
  release(): Promise<void>;
}

/**
 * Where sessions live: the one seam with two implementations (memory for one process, Redis for
 * replicas). Every implementation passes test/session/session-store.contract.ts.
 * Every method rejects with SessionStoreUnavailableError when the backing store cannot answer.
 */
export interface SessionStore {
  /** Adds a new session. It expires at min(idleExpiresAt, absoluteExpiresAt). */
  create(record: SessionRecord): Promise<void>;
  /** The session, or undefined when it does not exist or has expired. */
  get(id: string): Promise<SessionRecord | undefined>;
  /** Replaces an existing session (new tokens, slid idle expiry). Returns false when it no longer exists. */
  update(record: SessionRecord): Promise<boolean>;
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
