import type { IdTokenClaims } from '../oidc/id-token.validator.js';
import type { TokenResponse } from '../oidc/token-client.js';
import type { LoginTransaction } from './login-transaction.store.js';

/** A completed code exchange with a validated ID token. */
export interface LoginResult {
  readonly claims: IdTokenClaims;
  readonly tokens: TokenResponse & { readonly id_token: string };
  readonly returnTo: string;
}

/**
 * One login request's state as it passes through passport: the strategy, its state store and its
 * token endpoint write here, and the controller reads the outcome, so no typed data has to travel
 * through passport's untyped callbacks.
 */
export class LoginAttempt {
  /** Set when the login starts: PKCE verifier and where to go afterwards. */
  codeVerifier: string | undefined;
  nonce: string | undefined;
  returnTo = '/';
  /** Set by the state store at the callback, once the state matched and the transaction was consumed. */
  transaction: LoginTransaction | undefined;
  /** Set by the state store when the state matched nothing. */
  stateMismatch = false;
  /** Set by the token endpoint: the validated result, or why the exchange failed. */
  result: LoginResult | undefined;
  error: unknown;
}
