import { Inject, Injectable } from '@nestjs/common';
import { z } from 'zod';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { ClientAuthenticationFailedError, ProviderUnavailableError, TokenRequestRejectedError, TokenResponseInvalidError } from './oidc.errors.js';
import { ProviderMetadata } from './provider-metadata.js';

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

const OAuthErrorSchema = z.object({ error: z.string() });

/**
 * The token endpoint (authorization_code and refresh_token grants) and RFC 7009 revocation, with
 * client authentication as configured. passport-openidconnect only does client_secret_post and no
 * PKCE, so every token request goes through here.
 */
@Injectable()
export class TokenClient {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly provider: ProviderMetadata,
  ) {}

  async exchangeCode(code: string, codeVerifier: string): Promise<TokenResponse> {
    return this.tokenRequest('authorization_code', {
      grant_type: 'authorization_code',
      code,
      redirect_uri: this.config.oidc.redirectUri,
      // RFC 7636 §4.5; RFC 9700 §2.1.1: PKCE for confidential clients too
      code_verifier: codeVerifier,
    });
  }

  async refresh(refreshToken: string): Promise<TokenResponse> {
    return this.tokenRequest('refresh_token', { grant_type: 'refresh_token', refresh_token: refreshToken });
  }

  /** RFC 7009. Resolves false when the provider has no revocation endpoint. Throws ProviderUnavailableError. */
  async revoke(token: string, hint: 'refresh_token' | 'access_token'): Promise<boolean> {
    const endpoint = this.provider.get().document.revocation_endpoint;
    if (endpoint === undefined) return false;
    const response = await this.post(endpoint, { token, token_type_hint: hint });
    await response.body?.cancel();
    // RFC 7009 §2.2: 200 whether or not the token was valid; anything else is the provider's problem.
    if (!response.ok) throw new ProviderUnavailableError(`The provider answered ${response.status} to token revocation.`);
    return true;
  }

  private async tokenRequest(grant: 'authorization_code' | 'refresh_token', params: Record<string, string>): Promise<TokenResponse> {
    const response = await this.post(this.provider.get().document.token_endpoint, params);
    let body: unknown;
    try {
      body = await response.json();
    } catch (error) {
      // a 2xx that is not a token response is the provider misbehaving, not an outage a retry would fix
      if (response.ok) throw new TokenResponseInvalidError(`The provider answered ${response.status} with a non-JSON body to the ${grant} grant.`);
      throw new ProviderUnavailableError(`The provider answered ${response.status} with a non-JSON body to the ${grant} grant.`, error);
    }
    if (response.status >= 500) throw new ProviderUnavailableError(`The provider answered ${response.status} to the ${grant} grant.`);
    if (!response.ok) {
      // RFC 6749 §5.2: an error response names the error; anything else from a 4xx is the provider misbehaving.
      const oauthError = OAuthErrorSchema.safeParse(body);
      const code = oauthError.success ? oauthError.data.error : `http_${response.status}`;
      // the gateway's own credentials were refused: no user action helps, an operator must
      if (code === 'invalid_client' || code === 'unauthorized_client' || response.status === 401) throw new ClientAuthenticationFailedError(code);
      throw new TokenRequestRejectedError(code, grant);
    }
    const parsed = TokenResponseSchema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new TokenResponseInvalidError(`The token response is malformed (${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}).`);
    }
    return parsed.data;
  }

  private async post(endpoint: string, params: Record<string, string>): Promise<Response> {
    const { clientId, clientSecret, tokenEndpointAuthMethod, httpTimeoutS } = this.config.oidc;
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    const form = new URLSearchParams(params);
    if (tokenEndpointAuthMethod === 'client_secret_basic') {
      // RFC 6749 §2.3.1: id and secret are form-urlencoded before Base64.
      headers['authorization'] = `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(clientSecret)}`).toString('base64')}`;
    } else {
      form.set('client_id', clientId);
      form.set('client_secret', clientSecret);
    }
    try {
      return await fetch(endpoint, { method: 'POST', headers, body: form, signal: AbortSignal.timeout(httpTimeoutS * 1000), redirect: 'error' });
    } catch (error) {
      throw new ProviderUnavailableError('The identity provider\'s token endpoint cannot be reached.', error);
    }
  }
}

function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}
