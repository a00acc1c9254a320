import { BadRequestError } from '../common/gateway-error.js';
import type { DpopPrivateJwk } from '../oidc/dpop.js';
import type { IdTokenClaims } from '../oidc/id-token.validator.js';
import { IdTokenInvalidError, TokenRequestRejectedError, TokenResponseInvalidError } from '../oidc/oidc.errors.js';
import type { TokenResponse } from '../oidc/token-client.js';
import { LoginCodeRejectedError, LoginDeniedError, LoginFailedError, LoginIssuerMismatchError, LoginRequiredError, LoginStateMismatchError } from './auth.errors.js';
import type { LoginTransaction } from './login-transaction.store.js';

/** OIDC Core §3.1.2.6: errors a `prompt=none` request ends with when the user must interact. */
const INTERACTION_ERRORS: ReadonlySet<string> = new Set(['login_required', 'consent_required', 'interaction_required', 'account_selection_required']);

/** What a successful authorization response carries (other parameters, such as session_state, are ignored). */
export interface CallbackParams {
  readonly code: string;
  readonly state: string;
}

/** RFC 9207: which `iss` values an authorization response may carry, and whether it must carry one. */
export interface ResponseIssuer {
  readonly accepted: readonly string[];
  /** Discovery's authorization_response_iss_parameter_supported. */
  readonly promised: boolean;
}

/** The token response of a login: an ID token is required (OIDC Core §3.1.3.3). */
export type LoginTokens = TokenResponse & { readonly id_token: string };

/** A completed code exchange with a validated ID token. */
export interface LoginResult {
  readonly claims: IdTokenClaims;
  readonly tokens: LoginTokens;
  readonly returnTo: string;
  /** OIDC_DPOP: the transaction's key, which the tokens are bound to: it moves into the session record. */
  readonly dpopKey?: DpopPrivateJwk | undefined;
}

/**
 * Step 3 of a login: the provider's redirect back, read. A repeated parameter counts as absent.
 * The issuer is checked first (a mix-up attacker's error must not be believed either), then the
 * provider's error, then state and code.
 */
export function receiveCallback(query: Readonly<Record<string, unknown>>, issuer: ResponseIssuer): CallbackParams {
  const iss = single(query, 'iss');
  // RFC 9207 §2.4: an authorization response naming another issuer is a mix-up attempt, and one
  // without `iss` from a provider that promises to send it must be refused too
  if (iss === undefined ? issuer.promised : !issuer.accepted.includes(iss)) throw new LoginIssuerMismatchError();
  const providerError = single(query, 'error');
  if (providerError !== undefined) {
    // RFC 6749 §4.1.2.1 lists the codes, providers add their own: any word-like code is named
    const code = /^[\w.-]{1,64}$/.test(providerError) ? providerError : 'invalid_error_code';
    if (code === 'access_denied') throw new LoginDeniedError();
    if (INTERACTION_ERRORS.has(code)) throw new LoginRequiredError(code);
    throw new LoginFailedError(code);
  }
  const state = single(query, 'state');
  if (state === undefined) throw new LoginStateMismatchError('The sign-in response carries no state.');
  const code = single(query, 'code');
  if (code === undefined) throw new BadRequestError('The sign-in response carries no authorization code.');
  return { code, state };
}

/** The token endpoint's authorization_code grant (TokenClient.exchangeCode). */
export type CodeExchange = (code: string, codeVerifier: string) => Promise<TokenResponse>;

/**
 * Step 4: the code for tokens, with the transaction's PKCE verifier. The provider refusing the code
 * is the user's problem (400 login_code_rejected, start again); no ID token is the provider's (502).
 */
export async function exchangeCode(exchange: CodeExchange, code: string, transaction: LoginTransaction): Promise<LoginTokens> {
  let tokens: TokenResponse;
  try {
    tokens = await exchange(code, transaction.codeVerifier);
  } catch (error) {
    if (error instanceof TokenRequestRejectedError) throw new LoginCodeRejectedError(error.oauthError);
    throw error;
  }
  const idToken = tokens.id_token;
  if (idToken === undefined) throw new TokenResponseInvalidError('The token response carries no ID token (was the openid scope granted?).');
  return { ...tokens, id_token: idToken };
}

/** IdTokenValidator.validate: signature, iss, aud, azp, exp, iat, sub, and the nonce sent at login. */
export type IdTokenCheck = (idToken: string, nonce: string) => Promise<IdTokenClaims>;

/**
 * Step 5: the ID token, validated against the nonce this browser's transaction sent. Without
 * max_age, auth_time is not needed and an absent or 0 one is tolerated (some providers send
 * either); with max_age it must be present and recent enough (OIDC Core §3.1.2.1, §3.1.3.7 step 13).
 * A step-up's acr_values are voluntary for the provider (OIDC Core §5.5.1.1), so its answer is
 * checked here: an `acr` other than those asked for is refused (§3.1.3.7 step 12).
 */
export async function validateIdToken(check: IdTokenCheck, tokens: LoginTokens, transaction: LoginTransaction, now: { readonly ms: number; readonly skewS: number }): Promise<IdTokenClaims> {
  const claims = await check(tokens.id_token, transaction.nonce);
  const { maxAgeS, acrValues } = transaction;
  if (acrValues !== undefined && !acrValues.some((value) => value === claims.acr)) {
    throw new IdTokenInvalidError(`The sign-in did not reach the authentication level asked for: acr must be one of ${acrValues.join(', ')}.`);
  }
  if (maxAgeS === undefined) return claims;
  const authTime = claims.auth_time;
  if (typeof authTime !== 'number' || authTime <= 0) throw new IdTokenInvalidError('max_age was requested, so the ID token must carry the authentication time (auth_time).');
  if (authTime + maxAgeS + now.skewS < now.ms / 1000) throw new IdTokenInvalidError('The user authenticated longer ago than max_age allows (auth_time).');
  return claims;
}

function single(query: Readonly<Record<string, unknown>>, name: string): string | undefined {
  const value = query[name];
  return typeof value === 'string' ? value : undefined;
}
