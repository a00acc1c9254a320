import { randomBytes, timingSafeEqual } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { ProviderMetadata } from '../oidc/provider-metadata.js';
import { TokenClient } from '../oidc/token-client.js';
import { WebSocketSessions } from '../proxy/websocket-sessions.js';
import { sidHash } from '../session/session-cookie.js';
import { SessionService } from '../session/session.service.js';
import type { SessionRecord } from '../session/session-store.js';
import { LogoutRequestInvalidError } from './auth.errors.js';

/** Ends sessions on request of the user: locally, at the provider (revocation), and via its end-session page. */
@Injectable()
export class LogoutService {
  private readonly log = new Logger(LogoutService.name);

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly sessions: SessionService,
    private readonly provider: ProviderMetadata,
    private readonly tokens: TokenClient,
    private readonly websockets: WebSocketSessions,
  ) {}

  /**
   * Logout proven by the session's logout value (a link or form from the app). Without a session
   * there is nothing to end: straight to the post-logout page.
   */
  async endWithValue(request: FastifyRequest, value: unknown): Promise<string> {
    const record = await this.sessions.load(request, false);
    if (record === undefined) return this.config.oidc.postLogoutRedirectUri;
    if (typeof value !== 'string' || !sameValue(value, record.logoutValue)) throw new LogoutRequestInvalidError();
    return this.end(request, record);
  }

  /** Logout by a same-origin fetch (the CSRF header was checked): 401 without a session. */
  async endCurrent(request: FastifyRequest): Promise<string> {
    return this.end(request, await this.sessions.require(request, false));
  }

  private async end(request: FastifyRequest, record: SessionRecord): Promise<string> {
    await this.sessions.end(request, record);
    this.websockets.close(record.id);
    this.log.log(`session ${sidHash(record.id)} ended by logout`);
    const refreshToken = record.tokens.refreshToken;
    if (refreshToken !== undefined) {
      // RFC 7009, awaited so that "signed out" means the grant is gone; a failure (bounded by the
      // provider timeout) is logged and the logout completes anyway
      await this.tokens.revoke(refreshToken, 'refresh_token').catch((error: unknown) => {
        this.log.warn(`refresh token revocation failed for ${sidHash(record.id)}: ${error instanceof Error ? error.message : String(error)}`);
      });
    }
    return this.endSessionUrl(record.tokens.idToken);
  }

  /**
   * RP-Initiated Logout 1.0: the provider's end-session page (OIDC_END_SESSION_URL, else discovery's),
   * or the post-logout page when it has none (Google). The return parameter is
   * OIDC_END_SESSION_REDIRECT_PARAM (Auth0's /v2/logout: returnTo).
   */
  private endSessionUrl(idToken: string): string {
    const { postLogoutRedirectUri, clientId, endSessionUrl, endSessionRedirectParam } = this.config.oidc;
    const endpoint = endSessionUrl ?? (this.provider.isLoaded ? this.provider.get().document.end_session_endpoint : undefined);
    if (endpoint === undefined) return postLogoutRedirectUri;
    const url = new URL(endpoint);
    url.searchParams.set('id_token_hint', idToken);
    url.searchParams.set(endSessionRedirectParam, postLogoutRedirectUri);
    url.searchParams.set('client_id', clientId);
    // RP-Initiated Logout §2: optional, but some providers (glewlwyd) return to
    // post_logout_redirect_uri only when it is present. Nothing is kept to check it against: the
    // return lands on a public page and proves nothing the gateway acts on.
    url.searchParams.set('state', randomBytes(16).toString('base64url'));
    return url.toString();
  }
}

function sameValue(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
