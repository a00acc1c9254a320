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
  const path = url.split(/[?#]/, 1)[0] ?? '';
  if (underPrefix(path, '/api')) return 'api';
  if (underPrefix(path, '/auth')) return 'auth';
  if (OPS_PATHS.some((prefix) => underPrefix(path, prefix))) return 'ops';
  return 'spa';
}
