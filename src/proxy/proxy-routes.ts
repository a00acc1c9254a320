import type { ProxyRoute } from '../config/config.js';

export interface RouteMatch {
  readonly route: ProxyRoute;
  /** The path and query to send upstream: the raw ones, or the normalised remainder when the route strips its prefix. */
  readonly upstreamPath: string;
}

const DOT = /^(?:\.|%2e)$/i;
const DOT_DOT = /^(?:\.|%2e){2}$/i;

/**
 * The path as an upstream router would see it once it resolved it: `.` and `..` segments (also
 * percent-encoded) resolved, empty segments collapsed, nothing decoded (`%2F` stays part of an id,
 * not a separator). A trailing slash is kept. Returns undefined when `..` climbs above the root.
 */
export function normalisePath(rawPath: string): string | undefined {
  const segments: string[] = [];
  const parts = rawPath.split('/');
  let trailingSlash = false;
  for (const part of parts) {
    trailingSlash = part === '' || DOT.test(part) || DOT_DOT.test(part);
    if (part === '' || DOT.test(part)) continue;
    if (DOT_DOT.test(part)) {
      if (segments.pop() === undefined) return undefined;
      continue;
    }
    segments.push(part);
  }
  const path = `/${segments.join('/')}`;
  return trailingSlash && segments.length > 0 ? `${path}/` : path;
}

function under(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`);
}

/**
 * The route for a request URL (routes come sorted, longest prefix first). The route is chosen on the
 * normalised path, as the upstream will read it, so `/api//orders/1` and `/api/x/../orders/1` reach
 * the `/api/orders` route. Returns 'escapes' when the normalised path leaves the route the raw path
 * addresses (`/api/orders/../users`, `/api/../admin`) or holds a backslash, and undefined when no
 * route matches the raw path.
 */
export function matchRoute(routes: readonly ProxyRoute[], url: string): RouteMatch | 'escapes' | undefined {
  const queryAt = url.indexOf('?');
  const rawPath = queryAt === -1 ? url : url.slice(0, queryAt);
  const query = queryAt === -1 ? '' : url.slice(queryAt);
  const addressed = routes.find((r) => under(rawPath, r.prefix));
  if (addressed === undefined) return undefined;
  if (rawPath.includes('\\')) return 'escapes';
  // the common case (no dot, no empty segment) is already normal: skip the work
  const normalised = /\/\.|%2e|\/\//i.test(rawPath) ? normalisePath(rawPath) : rawPath;
  if (normalised === undefined || !under(normalised, addressed.prefix)) return 'escapes';
  const route = normalised === rawPath ? addressed : (routes.find((r) => under(normalised, r.prefix)) ?? addressed);
  if (!route.stripPrefix) return { route, upstreamPath: url };
  const rest = normalised.slice(route.prefix.length);
  return { route, upstreamPath: `${rest.startsWith('/') ? rest : `/${rest}`}${query}` };
}
