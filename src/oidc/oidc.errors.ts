import { GatewayError } from '../common/gateway-error.js';
import { parseRetryAfter, type TokenAnswer } from './token-outcome.js';

/** The provider is down, slow or answering 5xx: never a reason to sign anyone out. */
export class ProviderUnavailableError extends GatewayError {
  constructor(
    detail = 'The identity provider cannot be reached right now; try again shortly.',
    cause?: unknown,
    retryAfterS = 5,
    /** The provider's own Retry-After (seconds, capped), when it sent one. */
    readonly providerRetryAfterS?: number,
  ) {
    super(503, 'provider_unavailable', 'Identity provider unavailable', detail, { cause, retryAfterS });
  }
}

/** The token endpoint refused a grant (invalid_grant, invalid_client, ...): an OAuth error response. */
export class TokenRequestRejectedError extends GatewayError {
  constructor(
    readonly oauthError: string,
    readonly grant: 'authorization_code' | 'refresh_token' | 'client_credentials' | 'token_exchange',
  ) {
    super(400, 'token_request_rejected', 'Token request rejected', `The provider refused the ${grant} grant (${oauthError}).`);
  }
}

/** An ID token failed one of the OIDC Core §3.1.3.7 checks; `detail` names which. */
export class IdTokenInvalidError extends GatewayError {
  constructor(detail: string, cause?: unknown) {
    super(401, 'id_token_invalid', 'Invalid ID token', detail, { cause });
  }
}

/**
 * A refreshed ID token names another issuer, user or client than the session's (OIDC Core §12.2):
 * the session cannot go on as the same user.
 */
export class IdTokenMismatchError extends GatewayError {
  constructor(readonly claim: 'iss' | 'sub' | 'aud') {
    super(401, 'id_token_mismatch', 'ID token does not match the session', `The refreshed ID token's ${claim} differs from the session's.`);
  }
}

/** The provider's token response is not what RFC 6749 §5.1 and OIDC Core §3.1.3.3 require. */
export class TokenResponseInvalidError extends GatewayError {
  constructor(detail: string) {
    super(502, 'token_response_invalid', 'Invalid token response from the provider', detail);
  }
}

/** The provider refused the gateway's client credentials: a configuration fault for an operator. */
export class ClientAuthenticationFailedError extends GatewayError {
  constructor(oauthError: string, endpoint = 'token endpoint', method = 'client_secret_basic') {
    const credentials = method === 'private_key_jwt' ? 'OIDC_CLIENT_PRIVATE_KEY and the keys the provider has for the client (its jwks_uri: /auth/jwks.json)' : 'OIDC_CLIENT_SECRET';
    super(502, 'client_authentication_failed', 'The identity provider refused the gateway\'s credentials', `The ${endpoint} answered ${oauthError}; check OIDC_CLIENT_ID, ${credentials} and OIDC_TOKEN_ENDPOINT_AUTH_METHOD.`, {
      operatorFault: true,
    });
  }
}

/** RFC 9126 §2.3: the provider refused the pushed authorization request (not the client's credentials). */
export class AuthorizationRequestRejectedError extends GatewayError {
  constructor(detail: string) {
    super(502, 'authorization_request_rejected', 'The identity provider refused the authorization request', detail, { operatorFault: true });
  }
}

/** The userinfo endpoint's answer is unusable (not a JSON object, refused our token, or another `sub`). */
export class UserinfoInvalidError extends GatewayError {
  constructor(detail: string) {
    super(502, 'userinfo_invalid', 'Invalid userinfo response from the provider', detail);
  }
}

/**
 * OIDC_DPOP: the provider answered a request carrying a DPoP proof with a token that is not
 * DPoP-bound (RFC 9449 §5: token_type Bearer). Sending it on as a bearer token would silently give
 * up the binding: the provider's DPoP support or the client's registration needs an operator.
 */
export class TokenTypeInvalidError extends GatewayError {
  constructor(tokenType: string) {
    super(502, 'token_type_invalid', 'The identity provider issued a token that is not DPoP-bound', `The token endpoint answered token_type ${tokenType} to a request with a DPoP proof; check the provider's DPoP support for this client.`, {
      operatorFault: true,
    });
  }
}

/** How the provider answered one of its endpoints, for messages: `answered 400 (invalid_grant)`, or `did not answer`. */
export function answeredText(answer: TokenAnswer): string {
  return answer.kind === 'http' ? `answered ${answer.status}${answer.error === undefined ? '' : ` (${answer.error})`}` : 'did not answer';
}

/** The provider's OAuth error code; `http_<status>` when it sent none, `network` when it did not answer. */
export function answerCode(answer: TokenAnswer): string {
  return answer.kind === 'http' ? (answer.error ?? `http_${answer.status}`) : 'network';
}

/**
 * 503 for an outage at any provider endpoint (`request` names the call): the wait is the provider's
 * own Retry-After when it sent one, else 5 s.
 */
export function providerUnavailableFor(answer: TokenAnswer, retryAfter: string | null, now: number, request: string, cause?: unknown): ProviderUnavailableError {
  const providerRetryAfterS = parseRetryAfter(retryAfter, now);
  return new ProviderUnavailableError(`The identity provider ${answeredText(answer)} to ${request}; try again shortly.`, cause, providerRetryAfterS ?? 5, providerRetryAfterS);
}
