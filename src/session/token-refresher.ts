import { Inject, Injectable, Logger } from '@nestjs/common';
import { setTimeout as delay } from 'node:timers/promises';
import { CLOCK, type Clock } from '../common/clock.js';
import { GatewayError } from '../common/gateway-error.js';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { Metrics } from '../metrics/metrics.js';
import { IdTokenValidator, userClaims } from '../oidc/id-token.validator.js';
import {
  ClientAuthenticationFailedError,
  IdTokenInvalidError,
  IdTokenMismatchError,
  ProviderUnavailableError,
  TokenRequestRejectedError,
  TokenResponseInvalidError,
  TokenTypeInvalidError,
} from '../oidc/oidc.errors.js';
import { TokenClient, type TokenResponse, type TokenTarget } from '../oidc/token-client.js';
import type { TokenFailure } from '../oidc/token-outcome.js';
import { RefreshBackoff, type RefreshPermit } from './refresh-backoff.js';
import { sessionDpopKey } from './session-dpop.js';
import { sidHash } from './session-cookie.js';
import { RouteTokenRejectedError, SessionExpiredError, SessionStoreUnavailableError } from './session.errors.js';
import { SESSION_STORE, type ReplaceTokensResult, type RouteToken, type SessionRecord, type SessionStore, type SessionTokens, type StoreLock } from './session-store.js';
import { accessTokenExpiresAt, needsRefresh } from './session-timing.js';
import { Tracing } from '../tracing/tracing.js';

const LOCK_POLL_MS = 25;
/** Sessions whose new tokens wait in memory for the store; beyond this the oldest are dropped. */
const MAX_UNSAVED = 10_000;
/** Store writes of new tokens per refresh before they wait in memory. */
const WRITE_ATTEMPTS = 2;

export type RefreshOutcome = 'refreshed' | 'expired' | Exclude<TokenFailure, 'grant_rejected'> | 'store_unavailable';
/** What a failed attempt's log line says. */
type FailureKind = TokenFailure | 'id_token_mismatch' | 'store_unavailable';

/** A route whose token is obtained for it (its own audience, resource or scope). */
export interface RouteTokenSpec {
  /** Where the token is kept in the session record: the route's prefix. */
  readonly key: string;
  readonly target: TokenTarget;
  /** RFC 8693: exchange the session's access token instead of using the refresh token. */
  readonly exchange: boolean;
}

/** Tokens the provider issued (possibly rotating the refresh token) that the store did not take yet. */
interface UnsavedTokens {
  /** The version they replace: written with the same compare-and-set as the refresh itself. */
  readonly basedOn: number;
  readonly tokens: SessionTokens;
  readonly claims: Readonly<Record<string, unknown>>;
}

/**
 * Keeps a session's access token fresh: refreshes it before it expires, once per session however
 * many requests arrive together: an in-process promise for this replica, a store lock across replicas
 * (the others wait for the new tokens), and a compare-and-set on the record's version for the write,
 * so a refresher whose lock expired (a stalled process) can never overwrite newer tokens.
 */
@Injectable()
export class TokenRefresher {
  private readonly log = new Logger(TokenRefresher.name);
  private readonly inFlight = new Map<string, Promise<SessionRecord>>();
  /** Route-token requests under way, by session and route: one per pair however many requests wait. */
  private readonly routeInFlight = new Map<string, Promise<string>>();
  private readonly unsaved = new Map<string, UnsavedTokens>();
  /** The refresh locks kept while their session's tokens wait in `unsaved`. */
  private readonly keptLocks = new Map<string, StoreLock>();

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(SESSION_STORE) private readonly store: SessionStore,
    private readonly tokens: TokenClient,
    private readonly idTokens: IdTokenValidator,
    private readonly backoff: RefreshBackoff,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly metrics: Metrics,
    private readonly tracing: Tracing,
  ) {}

  /**
   * The lock outlives a token request that runs into its timeout and a second provider call
   * (a JWKS fetch for a refreshed ID token), plus margin for the store writes.
   */
  get lockTtlMs(): number {
    return (2 * this.config.oidc.httpTimeoutS + 5) * 1000;
  }

  /**
   * The session with an access token valid beyond the skew. Throws SessionExpiredError (and ends the
   * session) when it cannot be renewed, ProviderUnavailableError (keeping it) when the provider is down.
   */
  async fresh(record: SessionRecord): Promise<SessionRecord> {
    if (!this.unsaved.has(record.id) && !this.due(record)) return record;
    const pending = this.inFlight.get(record.id);
    // a request that joins another's refresh waits for it: that wait is its own span
    if (pending !== undefined) return this.tracing.inSpan('session.refresh_wait', { 'bff.single_flight': 'joined' }, () => pending);
    const started = this.tracing.inSpan('session.refresh', {}, () => this.renew(record)).finally(() => this.inFlight.delete(record.id));
    this.inFlight.set(record.id, started);
    return started;
  }

  private due(record: SessionRecord): boolean {
    return needsRefresh(record, this.clock.now(), this.config.session.refreshSkewS);
  }

  private async renew(record: SessionRecord): Promise<SessionRecord> {
    const unsaved = this.unsaved.get(record.id);
    const current = unsaved === undefined ? record : await this.saveUnsaved(record, unsaved);
    return this.due(current) ? this.refreshAcrossReplicas(current) : current;
  }

  private refreshAcrossReplicas(record: SessionRecord): Promise<SessionRecord> {
    return this.underSessionLock(
      record,
      (current) => !this.due(current),
      (current, lock) => this.refreshHolding(current, lock, true),
    );
  }

  /**
   * `work` under the session's one refresh lock (every grant that spends or reads the session's
   * refresh token takes it), on the session as stored once the lock is held; `satisfied` says when
   * another request or replica already did the work, so nothing is asked of the provider.
   */
  private async underSessionLock(
    record: SessionRecord,
    satisfied: (current: SessionRecord) => boolean,
    work: (current: SessionRecord, lock: StoreLock) => Promise<SessionRecord>,
  ): Promise<SessionRecord> {
    const ttlMs = this.lockTtlMs;
    const deadline = this.clock.now() + ttlMs;
    for (;;) {
      const lock = await this.store.tryLock(`refresh:${record.id}`, ttlMs);
      if (lock !== undefined) {
        try {
          // another replica may have refreshed while this one waited for the lock
          const current = await this.store.get(record.id);
          if (current === undefined) throw new SessionExpiredError();
          if (satisfied(current)) return current;
          return await work(current, lock);
        } finally {
          // new tokens the store did not take keep the lock until its TTL: this replica, which holds
          // them, gets that long to write them before another replica refreshes with the spent token
          if (this.unsaved.has(record.id)) this.keptLocks.set(record.id, lock);
          else await lock.release().catch(() => undefined); // it expires by its TTL
        }
      }
      const current = await this.store.get(record.id);
      if (current === undefined) throw new SessionExpiredError();
      if (current.version !== record.version && satisfied(current)) return current;
      if (this.clock.now() > deadline) throw new ProviderUnavailableError('A token refresh for this session is taking too long; try again shortly.');
      await delay(LOCK_POLL_MS);
    }
  }

  /** Refreshes `current` (read under `lock`); `reread` allows one look for newer tokens after a refusal. */
  private async refreshHolding(current: SessionRecord, lock: StoreLock, reread: boolean): Promise<SessionRecord> {
    const { refreshToken } = current.tokens;
    if (refreshToken === undefined) {
      if (current.tokens.accessTokenExpiresAt > this.clock.now()) return current; // still valid, merely close to expiry
      await this.store.delete(current.id);
      this.metrics.countTokenRefresh('expired');
      throw new SessionExpiredError('The access token expired and the provider issued no refresh token; sign in again.');
    }
    const permit = await this.permitHolding(lock, current.id);
    if (permit === undefined) {
      // the lock expired while this request stalled: another holder may be refreshing this very token
      return this.useNewer(current, () => {
        throw new ProviderUnavailableError('A token refresh for this session is in progress; try again shortly.', undefined, 1);
      });
    }
    const now = this.clock.now();
    let response: TokenResponse;
    try {
      response = await this.tokens.refresh(refreshToken, undefined, sessionDpopKey(current, this.config.oidc.dpop));
    } catch (error) {
      return this.refused(current, lock, reread, permit, error);
    }
    this.backoff.succeeded(permit);
    const claims = await this.refreshedClaims(current, response);
    const tokens: SessionTokens = {
      accessToken: response.access_token,
      accessTokenExpiresAt: accessTokenExpiresAt(response.access_token, response.expires_in, now),
      // RFC 6749 §6: the provider may rotate the refresh token; keep the old one if it did not
      refreshToken: response.refresh_token ?? refreshToken,
      idToken: response.id_token ?? current.tokens.idToken,
      scope: response.scope ?? current.tokens.scope,
      ...(current.tokens.routes === undefined ? {} : { routes: current.tokens.routes }),
    };
    return this.write(current, { basedOn: current.version, tokens, claims });
  }

  /**
   * The access token of a route with its own audience, resource or scope: kept in the session
   * record until it is about to expire, then obtained again once per session and route, under the
   * session's one refresh lock (the refresh-token grant with the route's target, rotation stored by
   * compare-and-set) or by RFC 8693 token exchange of the session's fresh access token.
   */
  async routeToken(record: SessionRecord, route: RouteTokenSpec): Promise<string> {
    const cached = this.usableRouteToken(record, route.key);
    if (cached !== undefined && !this.unsaved.has(record.id)) return cached.accessToken;
    const flight = `${record.id}\u0000${route.key}`;
    let pending = this.routeInFlight.get(flight);
    if (pending === undefined) {
      pending = this.renewRoute(record, route).finally(() => this.routeInFlight.delete(flight));
      this.routeInFlight.set(flight, pending);
    }
    return pending;
  }

  private usableRouteToken(record: SessionRecord, key: string): RouteToken | undefined {
    const token = record.tokens.routes?.[key];
    if (token === undefined) return undefined;
    return token.expiresAt - this.clock.now() > this.config.session.refreshSkewS * 1000 ? token : undefined;
  }

  private async renewRoute(record: SessionRecord, route: RouteTokenSpec): Promise<string> {
    // an exchange needs the session's own access token fresh: renewed first, outside the lock it takes
    let current = route.exchange || this.unsaved.has(record.id) ? await this.fresh(record) : record;
    const obtained: { token?: string } = {};
    current = await this.underSessionLock(
      current,
      (stored) => this.usableRouteToken(stored, route.key) !== undefined,
      async (stored, lock) => {
        const result = await this.obtainRouteToken(stored, lock, route, true);
        obtained.token = result.token;
        return result.record;
      },
    );
    // a compare-and-set lost to newer tokens keeps those; this request still uses the token it got
    const token = obtained.token ?? this.usableRouteToken(current, route.key)?.accessToken;
    if (token === undefined) throw new ProviderUnavailableError('A token for this API route is being obtained; try again shortly.', undefined, 1);
    return token;
  }

  /**
   * Leave to call the token endpoint, for the session's grant and a route's alike: 503 while the
   * provider is backing off; undefined (the permit handed back) when `lock` expired meanwhile.
   */
  private async permitHolding(lock: StoreLock, id: string): Promise<RefreshPermit | undefined> {
    const admission = this.backoff.admit();
    if ('waitMs' in admission) {
      const retryAfterS = Math.ceil(admission.waitMs / 1000);
      this.log.debug({ event: 'token_refresh_deferred', sidHash: sidHash(id), retryAfterS, msg: 'token refresh deferred: the provider is backing off' });
      throw new ProviderUnavailableError('The identity provider was unavailable a moment ago; try again shortly.', undefined, retryAfterS);
    }
    const permit = admission.permit;
    let held: boolean;
    try {
      held = await lock.held();
    } catch (error) {
      this.backoff.unused(permit);
      throw error;
    }
    if (held) return permit;
    this.backoff.unused(permit);
    return undefined;
  }

  /** Holding `lock`: one provider request for the route's token, written into the record by compare-and-set. */
  private async obtainRouteToken(stored: SessionRecord, lock: StoreLock, route: RouteTokenSpec, reread: boolean): Promise<{ record: SessionRecord; token: string }> {
    let current = stored;
    if (route.exchange && this.due(current)) current = await this.refreshHolding(current, lock, true);
    const { refreshToken } = current.tokens;
    if (!route.exchange && refreshToken === undefined) throw new RouteTokenRejectedError('no_refresh_token');
    const permit = await this.permitHolding(lock, current.id);
    if (permit === undefined) {
      // the lock expired while this request stalled: another holder may be spending this very token
      throw new ProviderUnavailableError('A token refresh for this session is in progress; try again shortly.', undefined, 1);
    }
    const now = this.clock.now();
    let accessToken: string;
    let expiresIn: number | undefined;
    let rotated: string | undefined;
    try {
      if (route.exchange) {
        const answer = await this.tokens.exchange(current.tokens.accessToken, route.target, sessionDpopKey(current, this.config.oidc.dpop));
        ({ access_token: accessToken, expires_in: expiresIn } = answer);
      } else {
        const answer = await this.tokens.refresh(refreshToken ?? '', route.target, sessionDpopKey(current, this.config.oidc.dpop));
        ({ access_token: accessToken, expires_in: expiresIn, refresh_token: rotated } = answer);
      }
    } catch (error) {
      return this.routeRefused(current, lock, route, reread, permit, error);
    }
    this.backoff.succeeded(permit);
    const token: RouteToken = { accessToken, expiresAt: accessTokenExpiresAt(accessToken, expiresIn, now) };
    const tokens: SessionTokens = {
      ...current.tokens,
      // RFC 6749 §6: a rotated refresh token replaces the session's, whichever grant spent it
      refreshToken: rotated ?? refreshToken,
      routes: { ...current.tokens.routes, [route.key]: token },
    };
    const record = await this.write(current, { basedOn: current.version, tokens, claims: current.claims });
    return { record, token: accessToken };
  }

  /**
   * A failed route-token request. The provider being down or refusing the gateway's credentials
   * means what it means for the session's own refresh; a refused grant is the route's problem:
   * 403, the session kept. Some providers spend a rotating refresh token before refusing a target,
   * so the session is re-read first: newer tokens stored meanwhile get one more try.
   */
  private async routeRefused(current: SessionRecord, lock: StoreLock, route: RouteTokenSpec, reread: boolean, permit: RefreshPermit, failure: unknown): Promise<{ record: SessionRecord; token: string }> {
    const error = this.settleBackoff(permit, failure, (unavailable) => this.routeFailed(current, route, 'provider_unavailable', unavailable));
    if (error instanceof TokenRequestRejectedError) {
      this.routeFailed(current, route, 'grant_rejected', error);
      const latest = await this.store.get(current.id);
      if (latest === undefined) throw new SessionExpiredError();
      if (reread && latest.version !== current.version) return this.obtainRouteToken(latest, lock, route, false);
      throw new RouteTokenRejectedError(error.oauthError, error);
    }
    this.routeFailed(current, route, answerFailure(error) ?? 'token_response_invalid', error);
    throw error;
  }

  private routeFailed(record: SessionRecord, route: RouteTokenSpec, outcome: TokenFailure, error: unknown): void {
    const oauthError = error instanceof TokenRequestRejectedError ? error.oauthError : undefined;
    this.log.warn({ event: 'route_token_failed', sidHash: sidHash(record.id), route: route.key, exchange: route.exchange, outcome, oauthError, msg: 'route token request failed' });
  }

  /** What a failed token request means for the session (the outcome table decided the error class). */
  private async refused(current: SessionRecord, lock: StoreLock, reread: boolean, permit: RefreshPermit, failure: unknown): Promise<SessionRecord> {
    const error = this.settleBackoff(permit, failure, (unavailable) => this.failed(current, 'provider_unavailable', unavailable));
    if (error instanceof TokenRequestRejectedError) {
      this.failed(current, 'grant_rejected', error);
      // another request or replica may have rotated the token while this one was on its way
      if (reread) {
        return this.useNewer(current, async () => this.endSession(current), (newer) => (this.due(newer) ? this.refreshHolding(newer, lock, false) : Promise.resolve(newer)));
      }
      return this.endSession(current);
    }
    const outcome = answerFailure(error);
    if (outcome !== undefined) this.failed(current, outcome, error);
    throw error;
  }

  /**
   * The back-off's part in a failed token request, for the session's refresh and a route's token
   * alike: a provider that is down counts against it (503 with the wait, after `unavailable`
   * reports it); one that answered, whatever it said, is up; anything else leaves it as it was.
   * Returns the provider's answer as its typed error.
   */
  private settleBackoff(permit: RefreshPermit, error: unknown, unavailable: (error: ProviderUnavailableError) => void): GatewayError {
    if (error instanceof ProviderUnavailableError) {
      const waitMs = this.backoff.failed(permit, error.providerRetryAfterS);
      unavailable(error);
      throw new ProviderUnavailableError(undefined, error, Math.max(1, Math.ceil(waitMs / 1000)));
    }
    if (!(error instanceof GatewayError)) {
      this.backoff.unused(permit);
      throw error;
    }
    this.backoff.succeeded(permit);
    return error;
  }

  /**
   * Re-reads the session once: newer tokens (a higher version) that another request or replica
   * stored are used; otherwise `otherwise` decides.
   */
  private async useNewer(
    current: SessionRecord,
    otherwise: () => Promise<SessionRecord> | SessionRecord,
    withNewer: (newer: SessionRecord) => Promise<SessionRecord> = (newer) => Promise.resolve(newer),
  ): Promise<SessionRecord> {
    const latest = await this.store.get(current.id);
    if (latest === undefined) throw new SessionExpiredError();
    if (latest.version !== current.version) return withNewer(latest);
    return otherwise();
  }

  private async endSession(current: SessionRecord, detail?: string): Promise<never> {
    await this.store.delete(current.id);
    this.metrics.countTokenRefresh('expired');
    throw new SessionExpiredError(detail);
  }

  /** OIDC Core §12.2: a refreshed ID token must be valid and about the same user and client. */
  private async refreshedClaims(current: SessionRecord, response: TokenResponse): Promise<Readonly<Record<string, unknown>>> {
    if (response.id_token === undefined) return current.claims;
    try {
      return userClaims(await this.idTokens.validateRefreshed(response.id_token, current.tokens.idToken));
    } catch (error) {
      if (error instanceof IdTokenMismatchError) {
        this.failed(current, 'id_token_mismatch', error);
        return this.endSession(current, `The provider's refreshed ID token names another ${error.claim === 'sub' ? 'user' : error.claim === 'aud' ? 'client' : 'issuer'}; sign in again.`);
      }
      if (error instanceof IdTokenInvalidError) {
        const invalid = new TokenResponseInvalidError(`The refreshed ID token is not valid: ${error.detail ?? 'unknown reason'}`);
        this.failed(current, 'token_response_invalid', invalid);
        throw invalid;
      }
      throw error;
    }
  }

  /** The compare-and-set write; on a store failure once more, then the tokens wait in memory. */
  private async write(current: SessionRecord, next: UnsavedTokens): Promise<SessionRecord> {
    for (let attempt = 1; ; attempt++) {
      let result: ReplaceTokensResult;
      try {
        result = await this.replace(current.id, next);
      } catch (error) {
        // the provider may have rotated the refresh token already: losing these tokens could end the
        // session at the next refresh, so the write is worth one more try before 503
        if (attempt < WRITE_ATTEMPTS) continue;
        return this.unstored(current, next, error);
      }
      switch (result) {
        case 'replaced':
          this.metrics.countTokenRefresh('refreshed');
          this.log.debug({ event: 'token_refresh_succeeded', sidHash: sidHash(current.id), version: next.basedOn + 1, msg: 'token refreshed' });
          return { ...current, tokens: next.tokens, claims: next.claims, version: next.basedOn + 1 };
        case 'missing':
          // logged out (or expired) while the refresh was under way
          throw new SessionExpiredError();
        case 'conflict': {
          // another holder (this one's lock had expired) stored newer tokens first: those win
          const latest = await this.store.get(current.id);
          if (latest === undefined) throw new SessionExpiredError();
          if (latest.version !== next.basedOn) return latest;
          // same version: the store lost its swap to concurrent slides, not to newer tokens
          if (attempt >= WRITE_ATTEMPTS) return this.unstored(current, next, new SessionStoreUnavailableError());
        }
      }
    }
  }

  /** New tokens the store would not take: kept in memory for the session's next request, 503 now. */
  private unstored(current: SessionRecord, next: UnsavedTokens, error: unknown): never {
    this.keepUnsaved(current.id, next);
    this.failed(current, 'store_unavailable', error);
    throw error instanceof GatewayError ? error : new SessionStoreUnavailableError(error);
  }

  private replace(id: string, next: UnsavedTokens): Promise<ReplaceTokensResult> {
    return this.store.replaceTokens(id, next.basedOn, next.tokens, next.claims);
  }

  private keepUnsaved(id: string, next: UnsavedTokens): void {
    this.unsaved.delete(id);
    this.unsaved.set(id, next);
    if (this.unsaved.size > MAX_UNSAVED) {
      const oldest = this.unsaved.keys().next();
      if (oldest.done !== true) {
        this.unsaved.delete(oldest.value);
        this.keptLocks.delete(oldest.value);
      }
    }
  }

  /** Writes tokens an earlier request got but could not store; 503 while the store still refuses. */
  private async saveUnsaved(record: SessionRecord, unsaved: UnsavedTokens): Promise<SessionRecord> {
    const result = await this.replace(record.id, unsaved);
    this.unsaved.delete(record.id);
    switch (result) {
      case 'replaced':
        this.metrics.countTokenRefresh('refreshed');
        this.log.debug({ event: 'token_refresh_saved_late', sidHash: sidHash(record.id), msg: 'refreshed tokens stored after a store outage' });
        await this.releaseKeptLock(record.id);
        return { ...record, tokens: unsaved.tokens, claims: unsaved.claims, version: unsaved.basedOn + 1 };
      case 'missing':
        await this.releaseKeptLock(record.id);
        throw new SessionExpiredError();
      case 'conflict': {
        const latest = await this.store.get(record.id);
        if (latest === undefined) throw new SessionExpiredError();
        if (latest.version === unsaved.basedOn) {
          // lost to concurrent slides only: the tokens stay for the next request
          this.unsaved.set(record.id, unsaved);
          throw new SessionStoreUnavailableError();
        }
        await this.releaseKeptLock(record.id);
        return latest;
      }
    }
  }

  private async releaseKeptLock(id: string): Promise<void> {
    const lock = this.keptLocks.get(id);
    this.keptLocks.delete(id);
    await lock?.release().catch(() => undefined); // it expires by its TTL
  }

  /** One log line per failed refresh attempt: warn, with its outcome; never a token. */
  private failed(record: SessionRecord, outcome: FailureKind, error: unknown): void {
    // a refused grant or another user's ID token ends the session: endSession() counts it
    if (outcome !== 'grant_rejected' && outcome !== 'id_token_mismatch') this.metrics.countTokenRefresh(outcome);
    const code = error instanceof GatewayError ? error.code : undefined;
    const oauthError = error instanceof TokenRequestRejectedError ? error.oauthError : undefined;
    this.log.warn({ event: 'token_refresh_failed', sidHash: sidHash(record.id), outcome, code, oauthError, msg: 'token refresh failed' });
  }
}

/** The outcome-table row behind a provider answer that is neither an outage nor a refused grant (its error class says which). */
function answerFailure(error: GatewayError): Extract<TokenFailure, 'client_authentication_failed' | 'token_response_invalid' | 'token_type_invalid'> | undefined {
  if (error instanceof ClientAuthenticationFailedError) return 'client_authentication_failed';
  if (error instanceof TokenResponseInvalidError) return 'token_response_invalid';
  if (error instanceof TokenTypeInvalidError) return 'token_type_invalid';
  return undefined;
}
