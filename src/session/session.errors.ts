import { GatewayError } from '../common/gateway-error.js';

/** No (valid, unexpired) session: the SPA should offer to sign in. */
export class SessionRequiredError extends GatewayError {
  constructor() {
    super(401, 'session_required', 'Sign-in required', 'This request needs a signed-in session.');
  }
}

/** The session existed but cannot continue (the provider refused the refresh token, or none was issued). */
export class SessionExpiredError extends GatewayError {
  constructor(detail = 'The session has ended; sign in again.') {
    super(401, 'session_expired', 'Session expired', detail);
  }
}

/** The session store (Redis) cannot answer: a 503, never a 401, so nobody is signed out by an outage. */
export class SessionStoreUnavailableError extends GatewayError {
  constructor(cause?: unknown) {
    super(503, 'session_store_unavailable', 'Session store unavailable', 'Sessions cannot be read right now; try again shortly.', { cause, retryAfterS: 2 });
  }
}

/**
 * The provider refused the token a route's policy asks for (e.g. `invalid_target`, `invalid_scope`):
 * 403, the session is kept and other routes are unaffected; an operator should fix the route.
 */
export class RouteTokenRejectedError extends GatewayError {
  constructor(
    readonly oauthError: string,
    cause?: unknown,
  ) {
    // a route whose token the provider refuses is misconfigured (or the provider is): an operator must look
    super(403, 'route_token_rejected', 'Route token refused', `The identity provider refused the token this API route needs (${oauthError}).`, { cause, operatorFault: true });
  }
}
