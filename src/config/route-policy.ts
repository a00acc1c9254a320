import { z } from 'zod';

/**
 * One `/api` route's policy: where it goes, which methods it allows, and which token it carries.
 * The same schema reads PROXY_ROUTES (JSON) and the config file's `routes:` list, so both refuse
 * the same things with the same words, and the README's route table is rendered from ROUTE_KEYS.
 */

/** How a route's requests are authorised upstream. */
export const ROUTE_TOKEN_KINDS = ['user', 'user-or-none', 'client', 'none'] as const;
export type RouteTokenKind = (typeof ROUTE_TOKEN_KINDS)[number];

/** Methods a route may never allow: TRACE echoes cookies back, CONNECT is no API call. */
const NEVER_FORWARDED = new Set(['TRACE', 'CONNECT']);

const text = z.string({ error: 'expected a string' }).min(1, 'must not be empty');
const flag = z.boolean({ error: 'expected true or false' });
// RFC 8707 §2: an absolute URI without a fragment
const resourceUri = text.refine((value) => URL.canParse(value) && !value.includes('#'), 'must be an absolute URI without a fragment (RFC 8707)');

/** Every key a route may carry, with its documentation (rendered into the README and the example file). */
export const ROUTE_KEYS = {
  prefix: { schema: text.regex(/^\/[^?#]*$/, 'must start with "/"'), doc: 'Path prefix under `/api` (required); the longest matching prefix wins.' },
  target: { schema: z.url({ protocol: /^https?$/, error: 'must be an absolute http(s) URL' }), doc: 'The upstream\'s base URL (required).' },
  stripPrefix: { schema: flag.default(false), doc: '`true` sends the path without the prefix (default `false`).' },
  passCookies: { schema: flag.default(false), doc: '`true` lets the upstream\'s `Set-Cookie` reach the browser (never for the gateway\'s own cookie names); default `false`.' },
  methods: {
    schema: z
      .array(text.regex(/^[A-Z]+$/, 'must be an upper-case HTTP method').refine((m) => !NEVER_FORWARDED.has(m), 'TRACE and CONNECT are never forwarded'), { error: 'expected a list of HTTP methods' })
      .min(1, 'must list at least one method')
      .optional(),
    doc: 'Allowed methods, e.g. `["GET","POST"]`; any other gets 405 `method_not_allowed` and nothing is forwarded. Unset: every method but TRACE and CONNECT.',
  },
  timeoutS: {
    schema: z.number({ error: 'expected a number of seconds' }).int('must be a whole number of seconds').min(1, 'must be at least 1 second').optional(),
    doc: 'Time allowed for this upstream\'s response headers (default `UPSTREAM_TIMEOUT_S`); then 504.',
  },
  token: {
    schema: z.enum(ROUTE_TOKEN_KINDS, { error: 'must be one of user, user-or-none, client, none' }).default('user'),
    doc: '`user` (default: a session is required; the user\'s access token), `user-or-none` (the user\'s token when signed in, no `Authorization` otherwise; answers carry `Vary: Cookie`), `client` (the gateway\'s own client-credentials token; a session is still required), `none` (no `Authorization`).',
  },
  anonymous: {
    schema: flag.default(false),
    doc: '`true` lets a `token: none` route be called without a session (refused with any other `token`: a public route carrying a token would be an open relay). `X-CSRF` and `Origin` rules still apply.',
  },
  audience: { schema: text.optional(), doc: 'The `audience` parameter sent when obtaining this route\'s token (Auth0 and others).' },
  resource: {
    schema: z.union([resourceUri, z.array(resourceUri, { error: 'expected a string or a list of strings' }).min(1, 'must list at least one resource')], { error: 'expected a string or a list of strings' }).optional(),
    doc: 'RFC 8707 resource indicator(s) this route\'s token is for; login requests every route\'s resources.',
  },
  scope: { schema: text.optional(), doc: 'Scopes of this route\'s token, space separated (Entra ID: `api://…/.default`); login requests the union of the routes\' scopes.' },
  exchange: {
    schema: flag.default(false),
    doc: '`true` obtains this route\'s token by OAuth 2.0 Token Exchange (RFC 8693) of the session\'s access token instead of the refresh-token grant.',
  },
} as const;

export type RouteKey = keyof typeof ROUTE_KEYS;

const RouteSchema = z.strictObject(Object.fromEntries(Object.entries(ROUTE_KEYS).map(([key, spec]) => [key, spec.schema])) as { [K in RouteKey]: (typeof ROUTE_KEYS)[K]['schema'] }, {
  error: 'expected a route object',
});
const RoutesSchema = z.array(RouteSchema, { error: 'expected a list of routes' }).min(1, 'must hold at least one route');

type RouteInput = z.output<typeof RouteSchema>;

/** `routes[1].audience` from ['routes', 1, 'audience']. */
export function pathName(base: string, path: readonly PropertyKey[]): string {
  return path.reduce<string>((name, part) => (typeof part === 'number' ? `${name}[${part}]` : `${name}.${String(part)}`), base);
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  return path.reduce<unknown>((inner, key) => (typeof inner === 'object' && inner !== null ? Reflect.get(inner, key) : undefined), value);
}

function issueLine(base: string, issue: z.core.$ZodIssue, input: unknown): string {
  if (issue.code === 'unrecognized_keys') {
    return `${pathName(base, issue.path)}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} (a route takes ${Object.keys(ROUTE_KEYS).join(', ')})`;
  }
  // a missing required key reads "expected a string" from its type: say "required" instead
  if (issue.code === 'invalid_type' && valueAt(input, issue.path) === undefined) return `${pathName(base, issue.path)}: required`;
  return `${pathName(base, issue.path)}: ${issue.message}`;
}

/** The route as Config holds it. */
export function proxyRoute(input: Partial<RouteInput> & { prefix: string; target: string }, defaultTimeoutS: number) {
  const resource = input.resource === undefined ? [] : typeof input.resource === 'string' ? [input.resource] : input.resource;
  return {
    /** Path prefix, without a trailing slash ("/api/orders"). */
    prefix: input.prefix.replace(/\/+$/, '') || '/',
    target: input.target,
    stripPrefix: input.stripPrefix ?? false,
    /** Lets the upstream's Set-Cookie through (never for the gateway's own cookie names). */
    passCookies: input.passCookies ?? false,
    /** Undefined: every method but TRACE and CONNECT. */
    methods: input.methods,
    timeoutS: input.timeoutS ?? defaultTimeoutS,
    token: input.token ?? 'user',
    /** No session needed (only with token `none`). */
    anonymous: input.anonymous ?? false,
    audience: input.audience,
    /** RFC 8707 resource indicators; empty: none. */
    resource,
    scope: input.scope,
    exchange: input.exchange ?? false,
  };
}

export type ProxyRouteValue = ReturnType<typeof proxyRoute>;

/** True when the route's token is not the session's own access token but one obtained for it. */
export function hasOwnUserToken(route: {
  readonly token: RouteTokenKind;
  readonly audience: string | undefined;
  readonly resource: readonly string[];
  readonly scope: string | undefined;
  readonly exchange: boolean;
}): boolean {
  if (route.token !== 'user' && route.token !== 'user-or-none') return false;
  return route.exchange || route.audience !== undefined || route.resource.length > 0 || route.scope !== undefined;
}

/**
 * True when the route's token comes from the session's refresh token with the route's target:
 * login must ask for its resource and scopes (an exchanged token does not need them granted).
 */
export function refreshesForRoute(route: Parameters<typeof hasOwnUserToken>[0]): boolean {
  return hasOwnUserToken(route) && !route.exchange;
}

/** Rules that span keys, one line each. */
function crossKeyProblems(base: string, index: number, r: RouteInput): string[] {
  const at = (key: string): string => pathName(base, [index, key]);
  const problems: string[] = [];
  if (r.anonymous && r.token !== 'none') {
    problems.push(`${at('anonymous')}: only a route with "token": "none" may be anonymous (a public route carrying a token would be an open relay)`);
  }
  const targeted = r.audience !== undefined || r.resource !== undefined || r.scope !== undefined;
  if (r.token === 'none' && (targeted || r.exchange)) problems.push(`${at('token')}: "none" carries no token, so audience, resource, scope and exchange do not apply`);
  if (r.exchange && r.token !== 'user' && r.token !== 'user-or-none') problems.push(`${at('exchange')}: token exchange needs a user token ("token": "user" or "user-or-none")`);
  if (r.exchange && !targeted) problems.push(`${at('exchange')}: say what to exchange for: audience, resource or scope`);
  return problems;
}

/**
 * A parsed list of routes (from JSON or YAML) through the one schema; `base` names the list in
 * problems (`PROXY_ROUTES` or `routes`).
 */
export function parseRoutes(value: unknown, base: string, defaultTimeoutS: number, problems: string[]): ProxyRouteValue[] {
  const list = RoutesSchema.safeParse(value);
  if (!list.success) {
    problems.push(...list.error.issues.filter((issue) => issue.path.length === 0).map((issue) => issueLine(base, issue, value)));
    if (!Array.isArray(value) || value.length === 0) return [];
  }
  // route by route: every route's problems are named at once, those between keys too
  const before = problems.length;
  const routes: ProxyRouteValue[] = [];
  (Array.isArray(value) ? value : []).forEach((item: unknown, i) => {
    const result = RouteSchema.safeParse(item);
    if (!result.success) {
      problems.push(...result.error.issues.map((issue) => issueLine(base, { ...issue, path: [i, ...issue.path] }, value)));
      return;
    }
    problems.push(...crossKeyProblems(base, i, result.data));
    const route = proxyRoute(result.data, defaultTimeoutS);
    if (route.prefix !== '/api' && !route.prefix.startsWith('/api/')) problems.push(`${pathName(base, [i, 'prefix'])}: "${route.prefix}" must be /api or below it`);
    if (routes.some((other) => other.prefix === route.prefix)) problems.push(`${pathName(base, [i, 'prefix'])}: "${route.prefix}" is listed twice`);
    routes.push(route);
  });
  return problems.length === before && list.success ? routes : [];
}

/**
 * The authorization request's RFC 8707 `resource` parameters (one per resource; url.format repeats
 * a list): providers grant a resource at the token endpoint only if it was granted here.
 */
export function loginResourceParams(resources: readonly string[]): Record<string, readonly string[]> {
  return resources.length === 0 ? {} : { resource: resources };
}
