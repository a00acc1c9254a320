import { Inject, Injectable, Logger } from '@nestjs/common';
import { LogoutTokenInvalidError, LogoutTokenValidator } from '../oidc/logout-token.validator.js';
import { SESSION_STORE, type SessionStore } from '../session/session-store.js';

/** Ends the sessions a provider's logout token names, in the shared store, so every replica agrees. */
@Injectable()
export class BackchannelLogoutService {
  private readonly log = new Logger(BackchannelLogoutService.name);

  constructor(
    private readonly validator: LogoutTokenValidator,
    @Inject(SESSION_STORE) private readonly store: SessionStore,
  ) {}

  async handle(logoutToken: unknown): Promise<number> {
    if (typeof logoutToken !== 'string' || logoutToken === '') throw new LogoutTokenInvalidError('The request carries no logout_token form field.');
    const claims = await this.validator.validate(logoutToken);
    const ttlMs = Math.max(claims.rememberUntilS * 1000 - Date.now(), 1000);
    if (!(await this.store.markOnce(`jti:${claims.jti}`, ttlMs))) throw new LogoutTokenInvalidError('This logout token was already used (jti).');
    // §2.7: with a sid, only that provider session ends; with only a sub, all of the user's sessions
    const ended = claims.sid !== undefined ? await this.store.deleteByProviderSid(claims.sid) : await this.store.deleteBySubject(claims.sub ?? '');
    this.log.log(`back-channel logout ended ${ended} session(s)`);
    return ended;
  }
}
