import type { IncomingHttpHeaders } from 'node:http';

/** RFC 9110 §7.6.1: meaningful for one connection only. Connection/Upgrade stay on a 101. */
const HOP_BY_HOP = ['keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding'];

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
 * The one response-header policy, for proxied responses and 101 handshake answers alike (in place):
 * hop-by-hop headers and those named in Connection are dropped (on a 101 Connection and Upgrade are
 * the point and stay); Set-Cookie is dropped unless the route passes cookies, and then never for a
 * gateway cookie name (nor a nameless cookie, which browsers could read as one). Location and every
 * other header pass unchanged.
 */
export function applyResponsePolicy(headers: IncomingHttpHeaders, policy: ResponsePolicy, upgrade: boolean): void {
  const named = headers.connection;
  if (typeof named === 'string') {
    for (const name of named.split(',')) {
      const header = name.trim().toLowerCase();
      if (header !== '' && !(upgrade && header === 'upgrade')) delete headers[header];
    }
  }
  if (!upgrade) {
    if (named !== undefined) delete headers.connection;
    if (headers.upgrade !== undefined) delete headers.upgrade;
  }
  // a delete of a header the response lacks is still a slow runtime call: look first
  for (const name of HOP_BY_HOP) if (headers[name] !== undefined) delete headers[name];
  if (policy.varyCookie && !upgrade) headers.vary = withVaryCookie(headers.vary);
  const cookies = headers['set-cookie'];
  if (cookies === undefined) return;
  const passed = policy.passCookies ? cookies.filter((cookie) => isForeignCookie(cookie, policy.isGatewayCookie)) : [];
  if (passed.length === 0) delete headers['set-cookie'];
  else headers['set-cookie'] = passed;
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
