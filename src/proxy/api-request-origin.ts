import type { IncomingHttpHeaders } from 'node:http';
import { CrossOriginRequestError, CsrfHeaderMissingError } from './proxy.errors.js';

/** True when the browser says the request comes from the gateway's own origin. */
export function isSameOrigin(headers: IncomingHttpHeaders, publicOrigin: string): boolean {
  const origin = headers.origin;
  if (origin !== undefined) return origin === publicOrigin;
  // browsers omit Origin on same-origin GETs (EventSource) but send Fetch Metadata
  return headers['sec-fetch-site'] === 'same-origin';
}

/**
 * Anti-forgery for /api/*: a custom header cannot be sent cross-site without a CORS preflight, which
 * the gateway never grants. EventSource cannot set headers, so a GET for text/event-stream must
 * instead prove it is same-origin.
 */
export function checkApiRequestOrigin(method: string, headers: IncomingHttpHeaders, csrfHeader: string, publicOrigin: string): void {
  if (headers[csrfHeader] === '1') return;
  const eventStream = method === 'GET' && (headers.accept ?? '').includes('text/event-stream');
  if (!eventStream) throw new CsrfHeaderMissingError(csrfHeader);
  if (!isSameOrigin(headers, publicOrigin)) throw new CrossOriginRequestError();
}
