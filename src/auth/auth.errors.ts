import { GatewayError } from '../common/gateway-error.js';

/** The user (or the provider on their behalf) declined: `error=access_denied` at the callback. */
export class LoginDeniedError extends GatewayError {
  constructor() {
    super(401, 'login_denied', 'Sign-in was cancelled or denied', 'The identity provider reported that sign-in was denied.');
  }
}

/** `prompt=none` could not complete silently: the SPA should start an interactive login. */
export class LoginRequiredError extends GatewayError {
  constructor(providerError: string) {
    super(401, 'login_required', 'Interactive sign-in required', `The identity provider needs user interaction (${providerError}).`);
  }
}

/** Any other error the provider returned to the callback (RFC 6749 §4.1.2.1). */
export class LoginFailedError extends GatewayError {
  constructor(providerError: string) {
    super(400, 'login_failed', 'Sign-in failed', `The identity provider returned an error (${providerError}).`);
  }
}

/** Missing, unknown, expired or already used `state`: a forged, stale or replayed callback. */
export class LoginStateMismatchError extends GatewayError {
  constructor(detail = 'This sign-in response does not match a sign-in started in this browser, or it was already used. Start again.') {
    super(400, 'login_state_mismatch', 'Sign-in could not be verified', detail);
  }
}

/** RFC 9207: the callback's `iss` names another provider (mix-up attack). */
export class LoginIssuerMismatchError extends GatewayError {
  constructor() {
    super(400, 'login_issuer_mismatch', 'Sign-in response from an unexpected issuer', 'The authorization response names an issuer other than the configured provider.');
  }
}

/** The provider refused the authorization code (expired, used, or not for this client). */
export class LoginCodeRejectedError extends GatewayError {
  constructor(oauthError: string) {
    super(400, 'login_code_rejected', 'Sign-in code rejected', `The identity provider refused the authorization code (${oauthError}). Start again.`);
  }
}

/** A logout request without the value from /auth/me's logoutUrl (or without the CSRF header). */
export class LogoutRequestInvalidError extends GatewayError {
  constructor(detail = 'The logout request does not carry this session\'s logout value; the session was kept.') {
    super(400, 'logout_request_invalid', 'Logout request not accepted', detail);
  }
}
