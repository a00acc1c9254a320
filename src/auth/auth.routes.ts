import { Inject, Injectable } from '@nestjs/common';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { canonicalHostRedirect } from '../common/canonical-host.js';
import { CLOCK, type Clock } from '../common/clock.js';
import { registerSecurityHeaders } from '../common/security-headers.js';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { authenticationClaims, type AuthenticationClaims } from '../oidc/id-token.validator.js';
import { SessionService } from '../session/session.service.js';
import { registerSessionCookie } from '../session/session-cookie.js';
import { sessionEndsAt } from '../session/session-timing.js';
import { LogoutRequestInvalidError } from './auth.errors.js';
import { BackchannelLogoutService } from './backchannel-logout.service.js';
import { loginRateLimit } from './login-rate-limit.js';
import { LoginFlowService } from './login-flow.service.js';
import { LogoutService } from './logout.service.js';

/**
 * GET /auth/me: who is signed in, and how they authenticated (`acr`, `amr`, `auth_time` from the
 * session's ID token, when it carries them: what a step-up changes). Never a token.
 */
export interface MeResponse extends AuthenticationClaims {
  readonly sub: string;
  readonly claims: Readonly<Record<string, unknown>>;
  /** ISO 8601: when the session ends if nothing else happens (idle or absolute, the earlier). */
  readonly expiresAt: string;
  /** Navigate here to sign out; the `sid` value is bound to this session but is not the session id. */
  readonly logoutUrl: string;
}

/**
 * /auth/*: the code flow, who is signed in, and the logout channels, in one scope of their own with
 * the hooks only they need: the session cookie, the gateway's security headers, no caching, and the
 * canonical host and the login rate limit on /auth/login alone.
 */
@Injectable()
export class AuthRoutes {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly login: LoginFlowService,
    private readonly sessions: SessionService,
    private readonly logout: LogoutService,
    private readonly backchannel: BackchannelLogoutService,
  ) {}

  async register(scope: FastifyInstance): Promise<void> {
    await registerSessionCookie(scope, this.config);
    registerSecurityHeaders(scope);
    // login state, user claims and logout values must never sit in a shared or browser cache
    scope.addHook('onSend', (_request, reply, payload, done) => {
      void reply.header('cache-control', 'no-store');
      done(null, payload);
    });
    // the canonical host first: a login attempt on the wrong host is redirected, not counted
    const limit = loginRateLimit(this.config, this.clock);
    const loginHooks = limit === undefined ? [canonicalHostRedirect(this.config)] : [canonicalHostRedirect(this.config), limit];
    scope.get('/auth/login', { onRequest: loginHooks }, (request, reply) => this.startLogin(request, reply));
    scope.get('/auth/callback', (request, reply) => this.callback(request, reply));
    scope.get('/auth/me', (request) => this.me(request));
    scope.get('/auth/logout', (request, reply) => this.logoutByLink(request, reply));
    scope.post('/auth/logout', (request, reply) => this.logoutByPost(request, reply));
    scope.post('/auth/backchannel-logout', (request, reply) => this.backchannelLogout(request, reply));
  }

  /**
   * Starts the code flow: 302 to the provider. `returnTo` (a local path, else "/"), `prompt`
   * (none, login, consent, select_account), `login_hint`, and the step-up's `acr_values` (each in
   * OIDC_ACR_VALUES_ALLOWED) and `max_age` are optional. 503 while discovery is loading.
   */
  private async startLogin(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    await reply.redirect(await this.login.start(request), 302);
  }

  /** The provider's redirect back: validates everything, then starts a session under a new id. */
  private async callback(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    await reply.redirect(await this.login.complete(request), 302);
  }

  /** The signed-in user; 401 session_required otherwise. `slide=false` does not extend the idle timeout. */
  private async me(request: FastifyRequest): Promise<MeResponse> {
    const record = await this.sessions.require(request, field(request.query, 'slide') !== 'false');
    return {
      sub: record.sub,
      claims: record.claims,
      ...authenticationClaims(record.tokens.idToken),
      expiresAt: new Date(sessionEndsAt(record)).toISOString(),
      logoutUrl: `/auth/logout?sid=${encodeURIComponent(record.logoutValue)}`,
    };
  }

  /** Navigation logout: `sid` must be the value from /auth/me's logoutUrl, else 400 and the session stays. */
  private async logoutByLink(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    await reply.redirect(await this.logout.endWithValue(request, field(request.query, 'sid')), 302);
  }

  /**
   * POST logout: a `fetch` with the CSRF header gets 200 `{ redirectTo }`; a form POST carrying `sid`
   * gets a 302. Anything else (a cross-site form without the value) is refused and the session stays.
   */
  private async logoutByPost(request: FastifyRequest, reply: FastifyReply): Promise<{ redirectTo: string } | FastifyReply> {
    const csrfHeader = this.config.proxy.csrfHeader;
    if (request.headers[csrfHeader] === '1') return { redirectTo: await this.logout.endCurrent(request) };
    const sid = field(request.body, 'sid');
    if (sid === undefined) throw new LogoutRequestInvalidError(`Send the form field sid (from /auth/me's logoutUrl) or the ${csrfHeader} header; the session was kept.`);
    return reply.redirect(await this.logout.endWithValue(request, sid), 302);
  }

  /**
   * OpenID Connect Back-Channel Logout 1.0: the provider posts a `logout_token`; every session it
   * names ends, on every replica. 200 on success; 400 problem+json for a bad token, and nothing ends;
   * 503 when the session store cannot answer, with the token left unused for the provider's retry.
   */
  private async backchannelLogout(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    await this.backchannel.handle(request, field(request.body, 'logout_token'));
    return reply.status(200).send();
  }
}

/** A query or form field as the client sent it (a string, a list when repeated), undefined when absent. */
function field(source: unknown, name: string): unknown {
  return typeof source === 'object' && source !== null && Object.hasOwn(source, name) ? Reflect.get(source, name) : undefined;
}
