import type { IncomingHttpHeaders } from 'node:http';
import { CrossOriginRequestError, CsrfHeaderMissingError } from './proxy.errors.js';

/** How an /api request arrived: a routed HTTP request, or a WebSocket handshake. */
export type ApiRequestKind = 'http' | 'websocket';

/** True when the browser says the request comes from the gateway's own origin. */
export function isSameOrigin(headers: IncomingHttpHeaders, publicOrigin: string): boolean {
  const origin = headers.origin;
  if (origin !== undefined) return origin === publicOrigin;
  // browsers omit Origin on same-origin GETs (EventSource) but send Fetch Metadata
  return headers['sec-fetch-site'] === 'same-origin';
}

/**
 * Browser requests that cannot carry a custom header: an EventSource (a GET for text/event-stream)
 * and a WebSocket handshake.
 */
function cannotCarryHeader(kind: ApiRequestKind, method: string | undefined, headers: IncomingHttpHeaders): boolean {
  return kind === 'websocket' || (method === 'GET' && (headers.accept ?? '').includes('text/event-stream'));
}

/**
 * The one anti-forgery rule for /api, HTTP and WebSocket alike: a request proves it comes from the
 * app with the custom header, which cannot be sent cross-site without a CORS preflight the gateway
 * never grants; a request that cannot carry it must come from the gateway's own origin instead. A
 * handshake is held to its origin even when it carries the header, since the origin is what
 * protects a browser's handshake.
 */
export function checkApiOrigin(kind: ApiRequestKind, method: string | undefined, headers: IncomingHttpHeaders, csrfHeader: string, publicOrigin: string): void {
  if (kind === 'http' && headers[csrfHeader] === '1') return;
  if (!cannotCarryHeader(kind, method, headers)) throw new CsrfHeaderMissingError(csrfHeader);
  if (!isSameOrigin(headers, publicOrigin)) throw new CrossOriginRequestError();
}
