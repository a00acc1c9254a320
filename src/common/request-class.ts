/**
 * The one request classifier: which part of the gateway a request target belongs to. Every caller
 * that asks "is this /api?" (routing of upgrades, problem format, metrics, security headers, the SPA's
 * reserved paths) asks here, so `/apiary` or `/api` itself can never be classified two ways.
 */
export type RequestClass = 'auth' | 'api' | 'spa' | 'ops';

/** Reserved with everything below them, so an unknown /healthz/x is the gateway's 404, never the SPA's page. */
const OPS_PATHS = ['/healthz', '/readyz', '/metrics'];

function underPrefix(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}/`);
}

/** Classifies by the target's path (query and fragment ignored), matched or not: a 404 is classified too. */
export function requestClassOf(url: string): RequestClass {
  const path = pathOf(url);
  if (underPrefix(path, '/api')) return 'api';
  if (underPrefix(path, '/auth')) return 'auth';
  if (OPS_PATHS.some((prefix) => underPrefix(path, prefix))) return 'ops';
  return 'spa';
}

/** The target without its query or fragment (every request is classified: no regex, no array). */
function pathOf(url: string): string {
  let end = url.indexOf('?');
  const fragment = url.indexOf('#');
  if (fragment !== -1 && (end === -1 || fragment < end)) end = fragment;
  return end === -1 ? url : url.slice(0, end);
}

/**
 * True when the Accept header lists `text/html` (or `application/xhtml+xml`) with a non-zero
 * weight: what browsers send for navigations (and iframes), never for scripts, styles, images or fetch().
 */
export function acceptsHtml(accept: string | undefined): boolean {
  return (accept ?? '').split(',').some((range) => {
    const [type = '', ...params] = range.split(';').map((part) => part.trim().toLowerCase());
    if (type !== 'text/html' && type !== 'application/xhtml+xml') return false;
    const q = params.find((param) => param.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}
