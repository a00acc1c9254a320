import { Inject, Injectable, Logger } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { CLOCK, type Clock } from '../common/clock.js';
import { mapError } from '../common/problem.js';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { Metrics } from '../metrics/metrics.js';
import { DpopKey } from '../oidc/dpop.js';
import { IdTokenValidator } from '../oidc/id-token.validator.js';
import { ParClient } from '../oidc/par-client.js';
import { ProviderMetadata } from '../oidc/provider-metadata.js';
import { TokenClient } from '../oidc/token-client.js';
import { mergeUserinfo, UserinfoClient } from '../oidc/userinfo-client.js';
import { sidHash } from '../session/session-cookie.js';
import type { SessionRecord } from '../session/session-store.js';
import { SessionService } from '../session/session.service.js';
import { buildAuthorizationRequest } from './authorization-request.js';
import { exchangeCode, receiveCallback, validateIdToken, type LoginResult } from './login-callback.js';
import { storeTransaction, takeTransaction } from './login-transaction.store.js';
import { authorizationUrl } from './oidc.strategy.js';

/** How a callback ended, for metrics: the error code is the one the client sees. */
export type LoginOutcome = { readonly outcome: 'success' } | { readonly outcome: 'failure'; readonly code: string };

/**
 * The authorization code flow, one named step after another: build the authorization request, store
 * the transaction, (the provider), receive the callback, exchange the code, validate the ID token
 * (and merge userinfo, when configured), start the session. Every step throws a typed error; nothing is stored server-side before the last.
 */
@Injectable()
export class LoginFlowService {
  private readonly log = new Logger(LoginFlowService.name);

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly provider: ProviderMetadata,
    private readonly tokens: TokenClient,
    private readonly par: ParClient,
    private readonly idTokens: IdTokenValidator,
    private readonly userinfo: UserinfoClient,
    private readonly sessions: SessionService,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly metrics: Metrics,
  ) {}

  /** `/auth/login`: the provider's authorization URL for a new login. 503 until discovery has loaded. */
  async start(request: FastifyRequest): Promise<string> {
    const { document } = this.provider.get();
    const now = this.clock.now();
    const authorization = buildAuthorizationRequest(this.config.oidc, queryOf(request), now);
    storeTransaction(request.session, authorization.transaction, now);
    const url = await authorizationUrl(document, this.config, authorization);
    // RFC 9126: the same request, pushed; the browser carries only client_id and request_uri
    return this.par.wanted(document) ? this.par.redirectFor(url) : url;
  }

  /** `/auth/callback`: verifies the response, starts a session under a new id, and answers where to go. */
  async complete(request: FastifyRequest): Promise<string> {
    let result: LoginResult;
    try {
      result = await this.verifyCallback(request);
      this.metrics.countLogin({ outcome: 'success' });
    } catch (error) {
      this.metrics.countLogin({ outcome: 'failure', code: mapError(error).code });
      throw error;
    }
    await this.startSession(request, result);
    return result.returnTo;
  }

  private async verifyCallback(request: FastifyRequest): Promise<LoginResult> {
    const { document, issuers } = this.provider.get();
    const params = receiveCallback(queryOf(request), {
      accepted: [...issuers.keys()],
      // OIDC_PROFILE=fapi2 requires it whatever discovery says (FAPI 2.0 §5.3.2.2)
      promised: this.config.oidc.requireIssParameter || document.authorization_response_iss_parameter_supported === true,
    });
    const transaction = takeTransaction(request.session, params.state, this.clock.now());
    const dpop = transaction.dpopKey === undefined ? undefined : DpopKey.fromJwk(transaction.dpopKey);
    const tokens = await exchangeCode((code, verifier) => this.tokens.exchangeCode(code, verifier, dpop), params.code, transaction);
    const idTokenClaims = await validateIdToken((idToken, nonce) => this.idTokens.validate(idToken, nonce), tokens, transaction, {
      ms: this.clock.now(),
      skewS: this.config.oidc.clockSkewS,
    });
    // OIDC_USERINFO: for providers whose ID tokens carry few claims (Google, Entra ID)
    const claims = this.config.oidc.userinfo ? mergeUserinfo(idTokenClaims, await this.userinfo.fetch(tokens.access_token, dpop)) : idTokenClaims;
    return { claims, tokens, returnTo: transaction.returnTo, dpopKey: transaction.dpopKey };
  }

  /**
   * Step 6: the session, under a new id. Signing in again replaces the browser's session; the grant
   * behind the old one is revoked (RFC 7009) as at logout, unless shareGrant() says the new login
   * reused it. Awaited, bounded by the provider timeout; a failure is logged and the login completes.
   */
  private async startSession(request: FastifyRequest, result: LoginResult): Promise<void> {
    const { record, replaced } = await this.sessions.start(request, result);
    const refreshToken = replaced?.tokens.refreshToken;
    if (replaced === undefined || refreshToken === undefined || sharesGrant(replaced, record)) return;
    await this.tokens.revoke(refreshToken, 'refresh_token').catch((error: unknown) => {
      this.log.warn(`refresh token revocation failed for replaced session ${sidHash(replaced.id)}: ${error instanceof Error ? error.message : String(error)}`);
    });
  }
}

/**
 * Whether a new session came from the same provider session as the one it replaces: providers reuse
 * that session's grant (oidc-provider, Keycloak's client session), and revoking a refresh token
 * revokes its grant, which would end the new session too.
 */
export function sharesGrant(replaced: Pick<SessionRecord, 'providerSid' | 'sub'>, current: Pick<SessionRecord, 'providerSid' | 'sub'>): boolean {
  return replaced.providerSid !== undefined && replaced.providerSid === current.providerSid && replaced.sub === current.sub;
}

function queryOf(request: FastifyRequest): Readonly<Record<string, unknown>> {
  const query: unknown = request.query;
  return typeof query === 'object' && query !== null ? { ...query } : {};
}
