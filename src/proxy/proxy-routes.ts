import type { ProxyRoute } from '../config/config.js';

export interface RouteMatch {
  readonly route: ProxyRoute;
  /** The path and query to send upstream: the raw path (prefix stripped if configured), unchanged otherwise. */
  readonly upstreamPath: string;
}

/**
 * Dot segments resolved the way a URL parser (and so most upstream routers) would, including
 * percent-encoded dots; encoded slashes stay encoded, as they are part of an id, not a separator.
 */
export function normalisePath(rawPath: string): string {
  return new URL(rawPath, 'http://gateway.invalid').pathname;
}

function under(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`);
}

/**
 * The route for a request URL, matched on the raw path (longest prefix first; routes come sorted).
 * Returns 'escapes' when the normalised path leaves the matched route's prefix (`/api/../admin`),
 * undefined when no route matches.
 */
export function matchRoute(routes: readonly ProxyRoute[], url: string): RouteMatch | 'escapes' | undefined {
  const queryAt = url.indexOf('?');
  const rawPath = queryAt === -1 ? url : url.slice(0, queryAt);
  const query = queryAt === -1 ? '' : url.slice(queryAt);
  const route = routes.find((r) => under(rawPath, r.prefix));
  if (route === undefined) return undefined;
  if (rawPath.includes('\\')) return 'escapes';
  // only dot segments (plain or percent-encoded) can move a path: skip the URL parser otherwise
  if (/[.%]/.test(rawPath) && !under(normalisePath(rawPath), route.prefix)) return 'escapes';
  if (!route.stripPrefix) return { route, upstreamPath: url };
  const rest = rawPath.slice(route.prefix.length);
  return { route, upstreamPath: `${rest.startsWith('/') ? rest : `/${rest}`}${query}` };
}
