import { GatewayError } from '../common/gateway-error.js';

/** A crafted path (dot segments, "//", a backslash, bad encoding): never looked up on disk. */
export class InvalidSpaPathError extends GatewayError {
  constructor() {
    super(400, 'invalid_path', 'Invalid path', 'The path contains dot segments, empty segments, backslashes or invalid encoding.');
  }
}

/** SPA_UPSTREAM_URL is set but the frontend dev server refused or dropped the connection. */
export class SpaDevServerUnavailableError extends GatewayError {
  constructor(cause?: unknown) {
    super(502, 'spa_dev_server_unavailable', 'Frontend dev server unavailable', 'The frontend dev server (SPA_UPSTREAM_URL) refused or dropped the connection.', { cause });
  }
}
