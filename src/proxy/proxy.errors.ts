import { GatewayError } from '../common/gateway-error.js';

export class UpstreamUnavailableError extends GatewayError {
  constructor(cause?: unknown) {
    super(502, 'upstream_unavailable', 'Upstream unavailable', 'The API behind the gateway refused or dropped the connection.', { cause });
  }
}

export class UpstreamTimeoutError extends GatewayError {
  constructor(timeoutS: number) {
    super(504, 'upstream_timeout', 'Upstream timeout', `The API behind the gateway sent no response within ${timeoutS} s.`);
  }
}

export class InvalidUpstreamPathError extends GatewayError {
  constructor() {
    super(400, 'invalid_upstream_path', 'Invalid API path', 'The path leaves the API route it addresses (dot segments or encoded separators).');
  }
}

export class ApiRouteNotFoundError extends GatewayError {
  constructor() {
    super(404, 'api_route_not_found', 'No API route', 'No upstream is configured for this path.');
  }
}

export class RequestBodyTooLargeError extends GatewayError {
  constructor(limitBytes: number) {
    super(413, 'payload_too_large', 'Request body too large', `API request bodies are limited to ${limitBytes} bytes.`);
  }
}

/** /api/* without the anti-forgery header: 403, so a SPA never mistakes it for "sign in again". */
export class CsrfHeaderMissingError extends GatewayError {
  constructor(header: string) {
    super(403, 'csrf_header_missing', 'Anti-forgery header missing', `API requests must carry the header ${header}: 1.`);
  }
}

/** A WebSocket or EventSource request (which cannot carry the header) from another origin. */
export class CrossOriginRequestError extends GatewayError {
  constructor() {
    super(403, 'cross_origin_request', 'Cross-origin request refused', 'Streaming and WebSocket API requests must come from the gateway\'s own origin.');
  }
}

/** What /api forwards when a route lists no methods: everything but TRACE (it would echo cookies back). */
const FORWARDED_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/** A method the route does not allow, or TRACE, which would echo the request (cookies and all) back: never forwarded. */
export class ApiMethodNotAllowedError extends GatewayError {
  constructor(
    method: string,
    readonly allowed?: readonly string[],
  ) {
    super(405, 'method_not_allowed', 'Method not allowed', `${method} is not forwarded to ${allowed === undefined ? 'the API' : `this API route (it allows ${allowed.join(', ')})`}.`, { allow: allowed ?? FORWARDED_METHODS });
  }
}

/** A WebSocket handshake on a path that serves none (a gateway path, or the SPA without a dev server). */
export class UpgradeNotServedError extends GatewayError {
  constructor() {
    super(404, 'not_found', 'Not found', 'No WebSocket is served at this path.');
  }
}

/**
 * RFC 9470: the API asked for a stronger or more recent authentication than the session's. The SPA
 * sends the user to `loginUrl` (appending `&returnTo=` with its own path) and retries afterwards.
 */
export class StepUpRequiredError extends GatewayError {
  constructor(loginUrl: string) {
    super(401, 'step_up_required', 'Stronger authentication required', 'The API needs a stronger or more recent sign-in: send the user to loginUrl, then try again.', {
      extensions: { loginUrl },
    });
  }
}
