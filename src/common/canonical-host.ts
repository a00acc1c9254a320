import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { Config } from '../config/config.js';
import { acceptsHtml, requestClassOf } from './request-class.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** PUBLIC_URL, the one origin sign-in works on: problem pages name it (set by decorateCanonicalUrl). */
    canonicalUrl?: string;
  }
}

/**
 * The host a request was sent to, normalised as PUBLIC_URL's is (lower case, no default port), or
 * undefined for a Host header that is no host at all. Behind TRUST_PROXY, Fastify's `request.host`
 * is the proxy's X-Forwarded-Host.
 */
function requestedHost(request: FastifyRequest, protocol: string): string | undefined {
  return URL.parse(`${protocol}//${request.host}`)?.host;
}

/** A navigation the canonical host applies to: the SPA's pages and the start of sign-in. */
function redirectsOnWrongHost(request: FastifyRequest): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false;
  if (!request.url.startsWith('/') || !acceptsHtml(request.headers.accept)) return false;
  const requestClass = requestClassOf(request.url);
  return requestClass === 'spa' || (requestClass === 'auth' && /^\/auth\/login(?:[?#]|$)/.test(request.url));
}

/**
 * One canonical host: a browser that opened the app on another name for the gateway
 * (`127.0.0.1` for `localhost`, a bare IP, an old domain) is sent to the same path on PUBLIC_URL
 * before anything else happens, because the login cookie is set on the host sign-in starts on and
 * the provider always returns to PUBLIC_URL; a sign-in started elsewhere could only end in
 * `login_state_mismatch`. API calls, the callback and the operations endpoints are answered where
 * they arrive (probes and scripts address the gateway by any name).
 *
 * The hook of the scopes it applies to: the SPA's, and /auth/login's own (before its rate limit).
 */
export function canonicalHostRedirect(config: Config): onRequestHookHandler {
  const canonical = new URL(config.server.publicUrl);
  return (request, reply, done) => {
    if (!redirectsOnWrongHost(request) || requestedHost(request, canonical.protocol) === canonical.host) {
      done();
      return;
    }
    void reply.code(308).header('location', `${canonical.origin}${request.url}`).header('cache-control', 'no-store').send();
  };
}

/** Problem pages name PUBLIC_URL (a sign-in that still failed on the wrong host says where to go). */
export function decorateCanonicalUrl(fastify: FastifyInstance, config: Config): void {
  fastify.decorate('canonicalUrl', config.server.publicUrl);
}
