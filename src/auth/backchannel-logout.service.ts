import { Inject, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { CLOCK, type Clock } from '../common/clock.js';
import { LogoutTokenInvalidError, LogoutTokenValidator, type LogoutClaims } from '../oidc/logout-token.validator.js';
import { WebSocketSessions } from '../proxy/websocket-sessions.js';
import { SESSION_STORE, type SessionStore } from '../session/session-store.js';

/**
 * Ends the sessions a provider's logout token names, in the shared store, so every replica agrees.
 *
 * Order: validate, check the jti, delete, and only then record the jti. A store failure anywhere
 * answers 503 session_store_unavailable with the jti unrecorded, so the provider's retry of the same
 * token works: a deliberate deviation from Back-Channel Logout 1.0 §2.8, which says 400 for a
 * logout that failed (a 400 tells a provider not to retry, and the user would stay signed in).
 * Two deliveries of one token at the same time may both pass the check and both delete; deleting
 * is idempotent, so the second ends nothing more, and whichever records the jti second still
 * answers 200. A replay after the first delivery completed is refused.
 */
@Injectable()
export class BackchannelLogoutService {
  constructor(
    private readonly validator: LogoutTokenValidator,
    @Inject(SESSION_STORE) private readonly store: SessionStore,
    private readonly websockets: WebSocketSessions,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  async handle(request: FastifyRequest, logoutToken: unknown): Promise<number> {
    let claims: LogoutClaims;
    try {
      claims = await this.accept(logoutToken);
    } catch (error) {
      // the problem body tells the provider; the operator needs the reason in the log as well
      // (a provider whose tokens are all refused means nobody is signed out), never the token
      if (error instanceof LogoutTokenInvalidError) request.log.warn({ event: 'logout_token_refused', reason: error.reason }, 'logout token refused');
      throw error;
    }
    // §2.7: with a sid, only that provider session ends; with only a sub, all of the user's sessions
    const ended = claims.sid !== undefined ? await this.store.deleteByProviderSid(claims.sid) : await this.store.deleteBySubject(claims.sub ?? '');
    const ttlMs = Math.max(claims.rememberUntilS * 1000 - this.clock.now(), 1000);
    // false: a concurrent delivery of this token recorded it first; the sessions are gone either way
    await this.store.markOnce(jtiName(claims.jti), ttlMs);
    request.log.info({ event: 'backchannel_logout', ended }, 'back-channel logout');
    // this replica's sockets close now; other replicas' at their next check
    if (ended > 0) void this.websockets.check();
    return ended;
  }

  /** A valid token whose jti has not been used yet; nothing is recorded. */
  private async accept(logoutToken: unknown): Promise<LogoutClaims> {
    if (typeof logoutToken !== 'string' || logoutToken === '') throw new LogoutTokenInvalidError('missing', 'The request carries no logout_token form field.');
    const claims = await this.validator.validate(logoutToken);
    if (await this.store.isMarked(jtiName(claims.jti))) throw new LogoutTokenInvalidError('replayed', 'This logout token was already used (jti).');
    return claims;
  }
}

function jtiName(jti: string): string {
  return `jti:${jti}`;
}
