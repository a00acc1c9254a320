import { Inject, Injectable, Logger } from '@nestjs/common';
import { setTimeout as delay } from 'node:timers/promises';
import { systemClock } from '../common/clock.js';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { ProviderUnavailableError, TokenRequestRejectedError, TokenResponseInvalidError } from '../oidc/oidc.errors.js';
import { TokenClient } from '../oidc/token-client.js';
import { sidHash } from './session-cookie.js';
import { SessionExpiredError } from './session.errors.js';
import { SESSION_STORE, type SessionRecord, type SessionStore } from './session-store.js';
import { accessTokenExpiresAt, needsRefresh } from './session-timing.js';

/** Longer than any token request (the provider timeout), so the lock never expires mid-refresh. */
const LOCK_TTL_MS = 15_000;
const LOCK_POLL_MS = 25;

export type RefreshOutcome = 'refreshed' | 'expired' | 'provider_unavailable';

/**
 * Keeps a session's access token fresh: refreshes it before it expires, once per session however
 * many requests arrive together: an in-process promise for this replica, a store lock across replicas
 * (the loser waits for the winner's new tokens).
 */
@Injectable()
export class TokenRefresher {
  private readonly log = new Logger(TokenRefresher.name);
  private readonly inFlight = new Map<string, Promise<SessionRecord>>();
  /** Called after each refresh attempt (metrics). */
  onOutcome: (outcome: RefreshOutcome) => void = () => undefined;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(SESSION_STORE) private readonly store: SessionStore,
    private readonly tokens: TokenClient,
  ) {}

  /**
   * The session with an access token valid beyond the skew. Throws SessionExpiredError (and ends the
   * session) when it cannot be renewed, ProviderUnavailableError (keeping it) when the provider is down.
   */
  async fresh(record: SessionRecord): Promise<SessionRecord> {
    if (!needsRefresh(record, systemClock.now(), this.config.session.refreshSkewS)) return record;
    let pending = this.inFlight.get(record.id);
    if (pending === undefined) {
      pending = this.refreshAcrossReplicas(record).finally(() => this.inFlight.delete(record.id));
      this.inFlight.set(record.id, pending);
    }
    return pending;
  }

  private async refreshAcrossReplicas(record: SessionRecord): Promise<SessionRecord> {
    const deadline = systemClock.now() + LOCK_TTL_MS;
    for (;;) {
      const lock = await this.store.tryLock(`refresh:${record.id}`, LOCK_TTL_MS);
      if (lock !== undefined) {
        try {
          // another replica may have refreshed while this one waited for the lock
          const current = await this.store.get(record.id);
          if (current === undefined) throw new SessionExpiredError();
          if (!needsRefresh(current, systemClock.now(), this.config.session.refreshSkewS)) return current;
          return await this.refresh(current);
        } finally {
          await lock.release();
        }
      }
      const current = await this.store.get(record.id);
      if (current === undefined) throw new SessionExpiredError();
      if (current.tokens.accessToken !== record.tokens.accessToken) return current;
      if (systemClock.now() > deadline) throw new ProviderUnavailableError('A token refresh for this session is taking too long; try again shortly.');
      await delay(LOCK_POLL_MS);
    }
  }

  private async refresh(record: SessionRecord): Promise<SessionRecord> {
    const now = systemClock.now();
    const { refreshToken } = record.tokens;
    if (refreshToken === undefined) {
      if (record.tokens.accessTokenExpiresAt > now) return record; // still valid, merely close to expiry
      await this.store.delete(record.id);
      this.onOutcome('expired');
      throw new SessionExpiredError('The access token expired and the provider issued no refresh token; sign in again.');
    }
    let response;
    try {
      response = await this.tokens.refresh(refreshToken);
    } catch (error) {
      if (error instanceof TokenRequestRejectedError) {
        // invalid_grant and friends: the provider ended this grant, so the session is over
        await this.store.delete(record.id);
        this.onOutcome('expired');
        this.log.warn(`token refresh refused for ${sidHash(record.id)} (${error.oauthError}); session ended`);
        throw new SessionExpiredError();
      }
      this.onOutcome('provider_unavailable');
      if (error instanceof ProviderUnavailableError || error instanceof TokenResponseInvalidError) throw new ProviderUnavailableError(undefined, error);
      throw error;
    }
    const tokens = {
      accessToken: response.access_token,
      accessTokenExpiresAt: accessTokenExpiresAt(response.access_token, response.expires_in, now),
      // RFC 6749 §6: the provider may rotate the refresh token; keep the old one if it did not
      refreshToken: response.refresh_token ?? refreshToken,
      idToken: response.id_token ?? record.tokens.idToken,
      scope: response.scope ?? record.tokens.scope,
    };
    const written = await this.store.replaceTokens(record.id, record.version, tokens, record.claims);
    if (written === 'missing') throw new SessionExpiredError();
    if (written === 'conflict') {
      // another request or replica stored newer tokens first: use those
      const current = await this.store.get(record.id);
      if (current === undefined) throw new SessionExpiredError();
      return current;
    }
    const refreshed: SessionRecord = { ...record, tokens, version: record.version + 1 };
    this.onOutcome('refreshed');
    return refreshed;
  }
}
