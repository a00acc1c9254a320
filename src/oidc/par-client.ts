import { Inject, Injectable } from '@nestjs/common';
import { z } from 'zod';
import { CLOCK, type Clock } from '../common/clock.js';
import type { GatewayError } from '../common/gateway-error.js';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { Tracing } from '../tracing/tracing.js';
import { ClientAuthentication } from './client-auth.js';
import { answerCode, answeredText, AuthorizationRequestRejectedError, ClientAuthenticationFailedError, ProviderUnavailableError, providerUnavailableFor } from './oidc.errors.js';
import { ProviderMetadata, type DiscoveryDocument } from './provider-metadata.js';
import { classifyTokenAnswer, oauthErrorOf, parseJson, type TokenAnswer } from './token-outcome.js';

/** RFC 9126 §2.2. */
const ParResponseSchema = z.object({ request_uri: z.string().min(1), expires_in: z.coerce.number().positive() });

/**
 * An authorization URL split for RFC 9126: every parameter is pushed except the authorization
 * endpoint's own query, which stays on the browser's redirect (RFC 9126 §4) beside client_id and request_uri.
 */
export function splitForPush(
  authorizationUrl: string,
  authorizationEndpoint: string,
): { readonly pushed: Readonly<Record<string, readonly string[]>>; readonly redirect: (clientId: string, requestUri: string) => string } {
  const own = new URL(authorizationEndpoint).searchParams;
  const pushed: Record<string, string[]> = {};
  for (const [name, value] of new URL(authorizationUrl).searchParams) {
    if (!own.has(name)) (pushed[name] ??= []).push(value);
  }
  return {
    pushed,
    redirect: (clientId, requestUri) => {
      const url = new URL(authorizationEndpoint);
      url.searchParams.set('client_id', clientId);
      url.searchParams.set('request_uri', requestUri);
      return url.href;
    },
  };
}

/**
 * Pushed authorization requests (RFC 9126): the authorization request's parameters go to the
 * provider's PAR endpoint, client-authenticated, and the browser carries only `client_id` and the
 * `request_uri` it answers with, so nothing of the request (PKCE challenge, nonce, resources,
 * hints) can be read or changed on its way through the browser.
 */
@Injectable()
export class ParClient {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly provider: ProviderMetadata,
    private readonly client: ClientAuthentication,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly tracing: Tracing,
  ) {}

  /** OIDC_PAR: `always`, or `auto` with a provider that requires it (discovery's require_pushed_authorization_requests). */
  wanted(document: DiscoveryDocument): boolean {
    const { par } = this.config.oidc;
    return par === 'always' || (par === 'auto' && document.require_pushed_authorization_requests === true);
  }

  /**
   * The browser's URL for a pushed request: `authorizationUrl` (what the strategy built) is pushed
   * whole, except the authorization endpoint's own query, which stays on the redirect (Azure B2C's
   * `p`, say). 503 when the provider is down, 502 when it refuses the client or the request.
   */
  async redirectFor(authorizationUrl: string): Promise<string> {
    const { document } = this.provider.get();
    const endpoint = document.pushed_authorization_request_endpoint;
    if (endpoint === undefined) throw new ProviderUnavailableError('The discovery document advertises no pushed_authorization_request_endpoint.');
    const { pushed, redirect } = splitForPush(authorizationUrl, document.authorization_endpoint);
    const requestUri = await this.tracing.inSpan('oidc.par', {}, () => this.push(endpoint, pushed));
    return redirect(this.config.oidc.clientId, requestUri);
  }

  private async push(endpoint: string, params: Readonly<Record<string, readonly string[]>>): Promise<string> {
    let response: Response;
    let text: string;
    try {
      response = await this.client.post(endpoint, params);
      text = await response.text();
    } catch (error) {
      throw this.failure({ kind: 'network' }, undefined, error);
    }
    const body = parseJson(text);
    if (response.ok) {
      const parsed = ParResponseSchema.safeParse(body);
      if (parsed.success) return parsed.data.request_uri;
      throw this.failure({ kind: 'http', status: response.status, error: undefined }, response);
    }
    throw this.failure({ kind: 'http', status: response.status, error: oauthErrorOf(body) }, response);
  }

  /** The typed error for a failed push, as TOKEN_RULES classifies the answer. */
  private failure(answer: TokenAnswer, response: Response | undefined, cause?: unknown): GatewayError {
    const answered = answeredText(answer);
    switch (classifyTokenAnswer(answer).outcome) {
      case 'provider_unavailable':
        return providerUnavailableFor(answer, response?.headers.get('retry-after') ?? null, this.clock.now(), 'the pushed authorization request', cause);
      case 'client_authentication_failed':
        return new ClientAuthenticationFailedError(answerCode(answer), 'pushed authorization request endpoint', this.config.oidc.clientAuth.method);
      case 'grant_rejected':
        return new AuthorizationRequestRejectedError(`The pushed authorization request endpoint ${answered}; check the login parameters (OIDC_SCOPES, OIDC_EXTRA_AUTH_PARAMS, routes' resources) and the client's registration.`);
      // a PAR answer carries no token: row 5 (a token that is not DPoP-bound) cannot apply
      case 'token_response_invalid':
      case 'token_type_invalid':
        return new AuthorizationRequestRejectedError(`The pushed authorization request endpoint ${answered} without a request_uri and expires_in (RFC 9126 §2.2).`);
    }
  }
}
