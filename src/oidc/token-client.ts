import { Inject, Injectable } from '@nestjs/common';
import { z } from 'zod';
import { CLOCK, type Clock } from '../common/clock.js';
import { GatewayError } from '../common/gateway-error.js';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { ClientAuthentication, type FormParams } from './client-auth.js';
import { DpopNonces, sendWithDpop, type DpopKey } from './dpop.js';
import { answerCode, ClientAuthenticationFailedError, ProviderUnavailableError, providerUnavailableFor, TokenRequestRejectedError, TokenResponseInvalidError, TokenTypeInvalidError } from './oidc.errors.js';
import { ProviderMetadata } from './provider-metadata.js';
import { classifyTokenAnswer, oauthErrorOf, parseJson, type TokenAnswer } from './token-outcome.js';
import { Tracing } from '../tracing/tracing.js';

// token_type is checked apart (tokenRequest): which one is right depends on whether a DPoP proof went along
const TokenResponseSchema = z.object({
  access_token: z.string().min(1),
  token_type: z.string(),
  expires_in: z.coerce.number().positive().optional(),
  refresh_token: z.string().min(1).optional(),
  id_token: z.string().min(1).optional(),
  scope: z.string().optional(),
});
export type TokenResponse = z.infer<typeof TokenResponseSchema>;

/** RFC 8693 §2.2.1: `issued_token_type` is required; `token_type` may be `N_A` for a token that is not an OAuth access token type. */
const ExchangeResponseSchema = z.object({
  access_token: z.string().min(1),
  issued_token_type: z.string().min(1),
  token_type: z.string(),
  expires_in: z.coerce.number().positive().optional(),
  scope: z.string().optional(),
});
export type ExchangeResponse = z.infer<typeof ExchangeResponseSchema>;

/** What a route's token is for: RFC 8707 `resource`, `audience` (Auth0 and others), `scope`. */
export interface TokenTarget {
  readonly audience?: string | undefined;
  readonly resource?: readonly string[];
  readonly scope?: string | undefined;
}

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

type Grant = 'authorization_code' | 'refresh_token' | 'client_credentials' | 'token_exchange';

function targetParams(target: TokenTarget | undefined): FormParams {
  if (target === undefined) return {};
  return { audience: target.audience, resource: target.resource !== undefined && target.resource.length > 0 ? target.resource : undefined, scope: target.scope };
}

/**
 * The token endpoint (authorization_code, refresh_token, client_credentials and RFC 8693 token
 * exchange grants) and RFC 7009 revocation, authenticated by ClientAuthentication.
 * passport-openidconnect only does client_secret_post and no PKCE, so every token request goes through here.
 */
@Injectable()
export class TokenClient {
  /** The provider's latest DPoP nonce (RFC 9449 §8), per process: each request sends it, saving a challenge. */
  private readonly dpopNonces = new DpopNonces(4);

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    // only its loaded document is read: --check-config hands in one it loaded itself
    @Inject(ProviderMetadata) private readonly provider: Pick<ProviderMetadata, 'get'>,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly tracing: Tracing,
    private readonly client: ClientAuthentication,
  ) {}

  /** `dpop` (OIDC_DPOP): the session's key, which the tokens are bound to; the code was bound to it by `dpop_jkt`. */
  async exchangeCode(code: string, codeVerifier: string, dpop?: DpopKey): Promise<TokenResponse> {
    return this.tokenRequest('authorization_code', TokenResponseSchema, dpop, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: this.config.oidc.redirectUri,
      // RFC 7636 §4.5; RFC 9700 §2.1.1: PKCE for confidential clients too
      code_verifier: codeVerifier,
    });
  }

  /** `target` asks for a token for one API (a route's), with the session's refresh token. */
  async refresh(refreshToken: string, target?: TokenTarget, dpop?: DpopKey): Promise<TokenResponse> {
    return this.tokenRequest('refresh_token', TokenResponseSchema, dpop, { grant_type: 'refresh_token', refresh_token: refreshToken, ...targetParams(target) });
  }

  /** The gateway's own token (RFC 6749 §4.4) for a `client` route. */
  async clientCredentials(target: TokenTarget, dpop?: DpopKey): Promise<TokenResponse> {
    return this.tokenRequest('client_credentials', TokenResponseSchema, dpop, { grant_type: 'client_credentials', ...targetParams(target) });
  }

  /** RFC 8693: the session's access token exchanged for one for `target`. */
  async exchange(subjectToken: string, target: TokenTarget, dpop?: DpopKey): Promise<ExchangeResponse> {
    // RFC 8693 §2.2.1: token_type N_A for an issued token that is not an access token
    return this.tokenRequest('token_exchange', ExchangeResponseSchema, dpop, {
      grant_type: TOKEN_EXCHANGE_GRANT,
      subject_token: subjectToken,
      subject_token_type: ACCESS_TOKEN_TYPE,
      requested_token_type: ACCESS_TOKEN_TYPE,
      ...targetParams(target),
    }, ['n_a']);
  }

  /** RFC 7009. Resolves false when the provider has no revocation endpoint. Throws ProviderUnavailableError. */
  async revoke(token: string, hint: 'refresh_token' | 'access_token'): Promise<boolean> {
    const endpoint = this.provider.get().document.revocation_endpoint;
    if (endpoint === undefined) return false;
    return this.tracing.inSpan('oidc.revocation', { 'oauth.token_type_hint': hint }, async () => {
      const response = await this.client.post(endpoint, { token, token_type_hint: hint });
      // RFC 7009 §2.2: 200 whether or not the token was valid
      if (response.ok) {
        await response.body?.cancel();
        return true;
      }
      const answer: TokenAnswer = { kind: 'http', status: response.status, error: oauthErrorOf(parseJson(await response.text().catch(() => ''))) };
      // a refused client is the operator's to fix (a key or secret the provider does not hold), not an outage
      if (classifyTokenAnswer(answer).outcome === 'client_authentication_failed') {
        throw new ClientAuthenticationFailedError(answerCode(answer), 'revocation endpoint', this.config.oidc.clientAuth.method);
      }
      throw new ProviderUnavailableError(`The provider answered ${response.status} to token revocation.`);
    });
  }

  /**
   * One token-endpoint call in its span: the grant, and the outcome from the one table. With `dpop`
   * the request carries a proof and the answer must be a DPoP token (RFC 9449 §5); else Bearer.
   */
  private tokenRequest<T extends { readonly token_type: string }>(grant: Grant, schema: z.ZodType<T>, dpop: DpopKey | undefined, params: FormParams, otherTypes: readonly string[] = []): Promise<T> {
    return this.tracing.inSpan('oidc.token', { 'oauth.grant_type': grant }, async (span) => {
      try {
        const answer = await this.sendTokenRequest(grant, schema, dpop, params, [dpop === undefined ? 'bearer' : 'dpop', ...otherTypes]);
        span?.setAttribute('oauth.outcome', 'success');
        return answer;
      } catch (error) {
        span?.setAttribute('oauth.outcome', error instanceof GatewayError ? error.code : 'unknown');
        throw error;
      }
    });
  }

  private async sendTokenRequest<T extends { readonly token_type: string }>(grant: Grant, schema: z.ZodType<T>, dpop: DpopKey | undefined, params: FormParams, tokenTypes: readonly string[]): Promise<T> {
    let response: Response;
    let text: string;
    const endpoint = this.provider.get().document.token_endpoint;
    try {
      // a nonce retry posts again, so it carries a fresh client assertion too
      response = dpop === undefined ? await this.client.post(endpoint, params) : await sendWithDpop({ key: dpop, endpoint, nonces: this.dpopNonces, now: () => this.clock.now() }, (headers) => this.client.post(endpoint, params, headers));
      // a body cut off or stalled past the timeout is no answer at all
      text = await response.text();
    } catch (error) {
      throw this.failure(grant, { kind: 'network' }, undefined, error);
    }
    const body = parseJson(text);
    if (response.ok) {
      const parsed = schema.safeParse(body);
      // RFC 6749 §7.1: token_type is case-insensitive
      if (parsed.success && tokenTypes.includes(parsed.data.token_type.toLowerCase())) return parsed.data;
      if (parsed.success && dpop !== undefined) throw this.failure(grant, { kind: 'http', status: response.status, error: undefined, unboundToken: true }, response, undefined, parsed.data.token_type);
      if (parsed.success) throw this.failure(grant, { kind: 'http', status: response.status, error: undefined }, response, undefined, `token_type ${parsed.data.token_type} (expected ${tokenTypes.join(" or ")})`);
      const issue = parsed.error.issues[0];
      const what = body === undefined ? 'a non-JSON body' : `a malformed token response (${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'})`;
      throw this.failure(grant, { kind: 'http', status: response.status, error: undefined }, response, undefined, what);
    }
    throw this.failure(grant, { kind: 'http', status: response.status, error: oauthErrorOf(body) }, response);
  }

  /** The typed error for a failed token request, as TOKEN_RULES classifies it. */
  private failure(grant: Grant, answer: TokenAnswer, response: Response | undefined, cause?: unknown, what?: string): GatewayError {
    switch (classifyTokenAnswer(answer).outcome) {
      case 'provider_unavailable':
        return providerUnavailableFor(answer, response?.headers.get('retry-after') ?? null, this.clock.now(), `the ${grant} grant`, cause);
      case 'client_authentication_failed':
        return new ClientAuthenticationFailedError(answerCode(answer), 'token endpoint', this.config.oidc.clientAuth.method);
      case 'grant_rejected':
        return new TokenRequestRejectedError(answerCode(answer), grant);
      case 'token_response_invalid':
        return new TokenResponseInvalidError(`The provider answered the ${grant} grant with ${what ?? 'an invalid token response'}.`);
      case 'token_type_invalid':
        return new TokenTypeInvalidError(what ?? 'unknown');
    }
  }
}
