import { Inject, Injectable } from '@nestjs/common';
import { z } from 'zod';
import { CLOCK, type Clock } from '../common/clock.js';
import { GatewayError } from '../common/gateway-error.js';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { ClientAuthentication, type FormParams } from './client-auth.js';
import { ClientAuthenticationFailedError, ProviderUnavailableError, TokenRequestRejectedError, TokenResponseInvalidError } from './oidc.errors.js';
import { ProviderMetadata } from './provider-metadata.js';
import { classifyTokenAnswer, oauthErrorOf, parseJson, parseRetryAfter, type TokenAnswer } from './token-outcome.js';
import { Tracing } from '../tracing/tracing.js';

const TokenResponseSchema = z.object({
  access_token: z.string().min(1),
  // RFC 6749 §7.1: token_type is case-insensitive; the gateway only sends Bearer tokens.
  token_type: z.string().refine((t) => t.toLowerCase() === 'bearer', 'token_type must be Bearer'),
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
  token_type: z.string().refine((t) => ['bearer', 'n_a'].includes(t.toLowerCase()), 'token_type must be Bearer or N_A'),
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
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    // only its loaded document is read: --check-config hands in one it loaded itself
    @Inject(ProviderMetadata) private readonly provider: Pick<ProviderMetadata, 'get'>,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly tracing: Tracing,
    private readonly client: ClientAuthentication,
  ) {}

  async exchangeCode(code: string, codeVerifier: string): Promise<TokenResponse> {
    return this.tokenRequest('authorization_code', TokenResponseSchema, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: this.config.oidc.redirectUri,
      // RFC 7636 §4.5; RFC 9700 §2.1.1: PKCE for confidential clients too
      code_verifier: codeVerifier,
    });
  }

  /** `target` asks for a token for one API (a route's), with the session's refresh token. */
  async refresh(refreshToken: string, target?: TokenTarget): Promise<TokenResponse> {
    return this.tokenRequest('refresh_token', TokenResponseSchema, { grant_type: 'refresh_token', refresh_token: refreshToken, ...targetParams(target) });
  }

  /** The gateway's own token (RFC 6749 §4.4) for a `client` route. */
  async clientCredentials(target: TokenTarget): Promise<TokenResponse> {
    return this.tokenRequest('client_credentials', TokenResponseSchema, { grant_type: 'client_credentials', ...targetParams(target) });
  }

  /** RFC 8693: the session's access token exchanged for one for `target`. */
  async exchange(subjectToken: string, target: TokenTarget): Promise<ExchangeResponse> {
    return this.tokenRequest('token_exchange', ExchangeResponseSchema, {
      grant_type: TOKEN_EXCHANGE_GRANT,
      subject_token: subjectToken,
      subject_token_type: ACCESS_TOKEN_TYPE,
      requested_token_type: ACCESS_TOKEN_TYPE,
      ...targetParams(target),
    });
  }

  /** RFC 7009. Resolves false when the provider has no revocation endpoint. Throws ProviderUnavailableError. */
  async revoke(token: string, hint: 'refresh_token' | 'access_token'): Promise<boolean> {
    const endpoint = this.provider.get().document.revocation_endpoint;
    if (endpoint === undefined) return false;
    return this.tracing.inSpan('oidc.revocation', { 'oauth.token_type_hint': hint }, async () => {
      const response = await this.client.post(endpoint, { token, token_type_hint: hint });
      await response.body?.cancel();
      // RFC 7009 §2.2: 200 whether or not the token was valid; anything else is the provider's problem.
      if (!response.ok) throw new ProviderUnavailableError(`The provider answered ${response.status} to token revocation.`);
      return true;
    });
  }

  /** One token-endpoint call in its span: the grant, and the outcome from the one table. */
  private tokenRequest<T>(grant: Grant, schema: z.ZodType<T>, params: FormParams): Promise<T> {
    return this.tracing.inSpan('oidc.token', { 'oauth.grant_type': grant }, async (span) => {
      try {
        const answer = await this.sendTokenRequest(grant, schema, params);
        span?.setAttribute('oauth.outcome', 'success');
        return answer;
      } catch (error) {
        span?.setAttribute('oauth.outcome', error instanceof GatewayError ? error.code : 'unknown');
        throw error;
      }
    });
  }

  private async sendTokenRequest<T>(grant: Grant, schema: z.ZodType<T>, params: FormParams): Promise<T> {
    let response: Response;
    let text: string;
    try {
      response = await this.client.post(this.provider.get().document.token_endpoint, params);
      // a body cut off or stalled past the timeout is no answer at all
      text = await response.text();
    } catch (error) {
      throw this.failure(grant, { kind: 'network' }, undefined, error);
    }
    const body = parseJson(text);
    if (response.ok) {
      const parsed = schema.safeParse(body);
      if (parsed.success) return parsed.data;
      const issue = parsed.error.issues[0];
      const what = body === undefined ? 'a non-JSON body' : `a malformed token response (${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'})`;
      throw this.failure(grant, { kind: 'http', status: response.status, error: undefined }, response, undefined, what);
    }
    throw this.failure(grant, { kind: 'http', status: response.status, error: oauthErrorOf(body) }, response);
  }

  /** The typed error for a failed token request, as TOKEN_RULES classifies it. */
  private failure(grant: Grant, answer: TokenAnswer, response: Response | undefined, cause?: unknown, what?: string): GatewayError {
    const { outcome } = classifyTokenAnswer(answer);
    const answered = answer.kind === 'http' ? `answered ${answer.status}${answer.error === undefined ? '' : ` (${answer.error})`}` : 'did not answer';
    switch (outcome) {
      case 'provider_unavailable': {
        const providerRetryAfterS = parseRetryAfter(response?.headers.get('retry-after') ?? null, this.clock.now());
        return new ProviderUnavailableError(`The identity provider ${answered} to the ${grant} grant; try again shortly.`, cause, providerRetryAfterS ?? 5, providerRetryAfterS);
      }
      case 'client_authentication_failed':
        return new ClientAuthenticationFailedError(answer.kind === 'http' ? (answer.error ?? `http_${answer.status}`) : 'network', 'token endpoint', this.config.oidc.clientAuth.method);
      case 'grant_rejected':
        return new TokenRequestRejectedError(answer.kind === 'http' ? (answer.error ?? `http_${answer.status}`) : 'network', grant);
      case 'token_response_invalid':
        return new TokenResponseInvalidError(`The provider answered the ${grant} grant with ${what ?? 'an invalid token response'}.`);
    }
  }
}
