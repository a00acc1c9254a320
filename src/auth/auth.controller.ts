import { Body, Controller, Get, Headers, HttpCode, Inject, Post, Query, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { SessionService } from '../session/session.service.js';
import { sessionEndsAt } from '../session/session-timing.js';
import { LogoutRequestInvalidError } from './auth.errors.js';
import { LoginFlowService } from './login-flow.service.js';
import { LogoutService } from './logout.service.js';
import { BackchannelLogoutService } from './backchannel-logout.service.js';

/** GET /auth/me: who is signed in. Never a token. */
export interface MeResponse {
  readonly sub: string;
  readonly claims: Readonly<Record<string, unknown>>;
  /** ISO 8601: when the session ends if nothing else happens (idle or absolute, the earlier). */
  readonly expiresAt: string;
  /** Navigate here to sign out; the `sid` value is bound to this session but is not the session id. */
  readonly logoutUrl: string;
}

@Controller('auth')
export class AuthController {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly login: LoginFlowService,
    private readonly sessions: SessionService,
    private readonly logout: LogoutService,
    private readonly backchannel: BackchannelLogoutService,
  ) {}

  /**
   * Starts the code flow: 302 to the provider. `returnTo` (a local path, else "/"), `prompt`
   * (none, login, consent, select_account) and `login_hint` are optional. 503 while discovery is loading.
   */
  @Get('login')
  async startLogin(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    await reply.redirect(await this.login.start(request), 302);
  }

  /** The provider's redirect back: validates everything, then starts a session under a new id. */
  @Get('callback')
  async callback(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    await reply.redirect(await this.login.complete(request), 302);
  }

  /** The signed-in user; 401 session_required otherwise. `slide=false` does not extend the idle timeout. */
  @Get('me')
  async me(@Req() request: FastifyRequest, @Query('slide') slide: unknown): Promise<MeResponse> {
    const record = await this.sessions.require(request, slide !== 'false');
    return {
      sub: record.sub,
      claims: record.claims,
      expiresAt: new Date(sessionEndsAt(record)).toISOString(),
      logoutUrl: `/auth/logout?sid=${encodeURIComponent(record.logoutValue)}`,
    };
  }

  /** Navigation logout: `sid` must be the value from /auth/me's logoutUrl, else 400 and the session stays. */
  @Get('logout')
  async logoutByLink(@Req() request: FastifyRequest, @Res() reply: FastifyReply, @Query('sid') sid: unknown): Promise<void> {
    await reply.redirect(await this.logout.endWithValue(request, sid), 302);
  }

  /**
   * POST logout: a `fetch` with the CSRF header gets 200 `{ redirectTo }`; a form POST carrying `sid`
   * gets a 302. Anything else (a cross-site form without the value) is refused and the session stays.
   */
  @Post('logout')
  @HttpCode(200)
  async logoutByPost(
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
    @Body() body: unknown,
    @Headers() headers: Record<string, string | undefined>,
  ): Promise<{ redirectTo: string } | undefined> {
    if (headers[this.config.proxy.csrfHeader] === '1') return { redirectTo: await this.logout.endCurrent(request) };
    const sid = typeof body === 'object' && body !== null && 'sid' in body ? body.sid : undefined;
    if (sid === undefined) throw new LogoutRequestInvalidError(`Send the form field sid (from /auth/me's logoutUrl) or the ${this.config.proxy.csrfHeader} header; the session was kept.`);
    await reply.redirect(await this.logout.endWithValue(request, sid), 302);
    return undefined;
  }

  /**
   * OpenID Connect Back-Channel Logout 1.0: the provider posts a `logout_token`; every session it
   * names ends, on every replica. 200 on success; 400 problem+json for a bad token, and nothing ends;
   * 503 when the session store cannot answer, with the token left unused for the provider's retry.
   */
  @Post('backchannel-logout')
  @HttpCode(200)
  async backchannelLogout(@Req() request: FastifyRequest, @Body() body: unknown): Promise<void> {
    await this.backchannel.handle(request, typeof body === 'object' && body !== null && 'logout_token' in body ? body.logout_token : undefined);
  }
}
