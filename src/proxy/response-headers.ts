import type { IncomingHttpHeaders } from 'node:http';

/** RFC 9110 §7.6.1: meaningful for one connection only. Connection/Upgrade stay on a 101. */
const HOP_BY_HOP: ReadonlySet<string> = new Set(['keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding']);

export interface ResponsePolicy {
  /** The route opted in (`"passCookies": true`) to let its upstream set cookies. */
  readonly passCookies: boolean;
  /** True for cookie names that belong to the gateway (its session cookie, any prefix or case). */
  readonly isGatewayCookie: (name: string) => boolean;
  /** The answer depends on whether the request carried a session (a `user-or-none` route): caches must key on the cookie. */
  readonly varyCookie: boolean;
}

/**
 * The gateway's own cookie names: the session cookie (which also carries the login transaction),
 * whatever its `__Host-`/`__Secure-` prefix or letter case, since browsers match prefixes
 * case-insensitively (RFC 6265bis).
 */
export function gatewayCookieMatcher(sessionCookieName: string): (name: string) => boolean {
  const base = withoutPrefix(sessionCookieName).toLowerCase();
  return (name) => withoutPrefix(name).toLowerCase() === base;
}

function withoutPrefix(name: string): string {
  return name.replace(/^__(host|secure)-/i, '');
}

/**
 * The one response-header policy, for proxied responses and 101 handshake answers alike: the
 * headers to send, a new object (built rather than deleted from: deleting turns an object into a
 * slow dictionary, on every proxied response). Hop-by-hop headers and those named in Connection are
 * dropped (on a 101 Connection and Upgrade are the point and stay); Set-Cookie is dropped unless the
 * route passes cookies, and then never for a gateway cookie name (nor a nameless cookie, which
 * browsers could read as one). Location and every other header pass unchanged, in their order.
 */
export function applyResponsePolicy(headers: IncomingHttpHeaders, policy: ResponsePolicy, upgrade: boolean): IncomingHttpHeaders {
  const named = connectionNamed(headers.connection, upgrade);
  const sent: IncomingHttpHeaders = {};
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || (!upgrade && (name === 'connection' || name === 'upgrade')) || named?.includes(name) === true) continue;
    if (name === 'set-cookie') {
      const passed = policy.passCookies ? (headers['set-cookie'] ?? []).filter((cookie) => isForeignCookie(cookie, policy.isGatewayCookie)) : [];
      if (passed.length > 0) sent['set-cookie'] = passed;
      continue;
    }
    sent[name] = headers[name];
  }
  if (policy.varyCookie && !upgrade) sent.vary = withVaryCookie(headers.vary);
  return sent;
}

/** The header names Connection lists (lower case), but Upgrade on a handshake. */
function connectionNamed(connection: string | undefined, upgrade: boolean): string[] | undefined {
  if (connection === undefined) return undefined;
  return connection
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== '' && !(upgrade && name === 'upgrade'));
}

function isForeignCookie(setCookie: string, isGatewayCookie: (name: string) => boolean): boolean {
  const pair = setCookie.split(';', 1)[0] ?? '';
  const equals = pair.indexOf('=');
  if (equals === -1) return false;
  const name = pair.slice(0, equals).trim();
  return name !== '' && !isGatewayCookie(name);
}

/** RFC 9110 §12.5.5: adds Cookie to the upstream's Vary (a `*` already covers it). */
function withVaryCookie(vary: string | undefined): string {
  const names = (vary ?? '').split(',').map((n) => n.trim()).filter((n) => n !== '');
  if (names.some((n) => n === '*' || n.toLowerCase() === 'cookie')) return names.join(', ');
  return [...names, 'Cookie'].join(', ');
}
