// a `?? literal` after a variable the schema defaults is a second copy of its default: refuse it
/* eslint @typescript-eslint/no-unnecessary-condition: "error" */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { availableCpus } from '../cluster/cpu-quota.js';
import { isLoopbackHost } from '../common/loopback.js';
import { variables, type VariableName, type VariableSpec } from './config.schema.js';

/** Thrown with every configuration problem at once; each line names one variable. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

export type Environment = Readonly<Record<string, string | undefined>>;

type Spec<K extends VariableName> = (typeof variables)[K];
type Value<K extends VariableName> = z.output<Spec<K>['schema']>;
type DefaultedName = { [K in VariableName]: Spec<K> extends { readonly default: string } ? K : never }[VariableName];
type RequiredName = { [K in VariableName]: Spec<K> extends { readonly required: true } ? K : never }[VariableName];
/** Every variable parsed by its schema; one with a schema default always has a value, so no caller supplies it again. */
type Parsed = { readonly [K in VariableName]: K extends DefaultedName ? Value<K> : Value<K> | undefined };
/** Parsed with every required variable present: what is left once no problem was found. */
type Complete = Parsed & { readonly [K in RequiredName]: Value<K> };

/** Nested readonly view of what loadConfig builds (and freezes). */
type DeepReadonly<T> = T extends readonly (infer U)[] ? readonly DeepReadonly<U>[] : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

/** OAuth/OIDC parameters the gateway owns; OIDC_EXTRA_AUTH_PARAMS cannot set them. */
const RESERVED_AUTH_PARAMS = new Set([
  'client_id', 'redirect_uri', 'response_type', 'response_mode', 'scope', 'state', 'nonce', 'code_challenge', 'code_challenge_method', 'request', 'request_uri',
]);
const PROXY_ROUTES_SCHEMA = z
  .array(z.object({ prefix: z.string().regex(/^\/[^?#]*$/, 'prefix must start with "/"'), target: z.url({ protocol: /^https?$/ }), stripPrefix: z.boolean().default(false), passCookies: z.boolean().default(false) }).strict())
  .min(1);

const NAMES = Object.keys(variables) as VariableName[];

/** The value as given, undefined when unset (or empty), or null when a *_FILE could not be read (already reported). */
function rawValue(env: Environment, name: string, spec: VariableSpec, problems: string[]): string | undefined | null {
  const direct = env[name];
  const file = spec.secret === true ? env[`${name}_FILE`] : undefined;
  if (file !== undefined && file !== '') {
    if (direct !== undefined && direct !== '') problems.push(`${name}: set either ${name} or ${name}_FILE, not both`);
    try {
      return readFileSync(file, 'utf8').trim();
    } catch {
      problems.push(`${name}_FILE: cannot read the file ${file}`);
      return null;
    }
  }
  return direct === '' ? undefined : direct;
}

/**
 * One variable through its schema. An unset variable gets the schema's default, parsed by the same
 * schema; so does a bad value (already reported), so that the cross-variable checks still see a typed value.
 */
function parseVariable(env: Environment, name: VariableName, problems: string[]): unknown {
  const spec: VariableSpec = variables[name];
  const raw = rawValue(env, name, spec, problems);
  if (raw === undefined && spec.required === true) problems.push(`${name}: required${spec.secret === true ? ` (or ${name}_FILE)` : ''}; ${spec.description}`);
  if (raw !== undefined && raw !== null) {
    const result = spec.schema.safeParse(raw);
    if (result.success) return result.data;
    problems.push(`${name}: ${result.error.issues[0]?.message ?? 'invalid value'}`);
  }
  if (spec.default === undefined) return undefined;
  const fallback = spec.schema.safeParse(spec.default);
  if (!fallback.success) throw new Error(`config.schema.ts: the default of ${name} fails its own schema`);
  return fallback.data;
}

function parseVariables<N extends VariableName>(env: Environment, names: readonly N[], problems: string[]): Pick<Parsed, N> {
  const parsed: Partial<Record<VariableName, unknown>> = {};
  for (const name of names) parsed[name] = parseVariable(env, name, problems);
  // the one cast: a loop over differently typed schemas; parseVariable gives each name its schema's output (or the default's)
  return parsed as Pick<Parsed, N>;
}

function isComplete(v: Parsed): v is Complete {
  return NAMES.every((name) => {
    const spec: VariableSpec = variables[name];
    return spec.required !== true || v[name] !== undefined;
  });
}

function parseProxyRoutes(value: string, problems: string[]): ProxyRoute[] {
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    problems.push('PROXY_ROUTES: must be a JSON array of {"prefix","target","stripPrefix"?} objects');
    return [];
  }
  const result = PROXY_ROUTES_SCHEMA.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    problems.push(`PROXY_ROUTES: ${issue === undefined ? 'invalid' : `${issue.path.join('.')} ${issue.message}`}`);
    return [];
  }
  return result.data.map((r) => proxyRoute(r.prefix, r.target, r.stripPrefix, r.passCookies));
}

function proxyRoute(prefix: string, target: string, stripPrefix: boolean, passCookies: boolean) {
  return {
    /** Path prefix, without a trailing slash ("/api/orders"). */
    prefix: prefix.replace(/\/+$/, '') || '/',
    target,
    stripPrefix,
    /** Lets the upstream's Set-Cookie through (never for the gateway's own cookie names). */
    passCookies,
  };
}

/** One `/api` route of Config.proxy.routes. */
export type ProxyRoute = DeepReadonly<ReturnType<typeof proxyRoute>>;

function parseExtraAuthParams(value: string, problems: string[]): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [key, val] of new URLSearchParams(value)) {
    if (RESERVED_AUTH_PARAMS.has(key)) problems.push(`OIDC_EXTRA_AUTH_PARAMS: "${key}" is set by the gateway and cannot be overridden`);
    else params[key] = val;
  }
  return params;
}

function withoutTrailingSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

/** The address the gateway binds to (the image's HEALTHCHECK probes it), without the rest of the configuration. */
export function loadServerAddress(env: Environment): { readonly port: number; readonly host: string } {
  const problems: string[] = [];
  const { PORT, HOST } = parseVariables(env, ['PORT', 'HOST'], problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return { port: PORT, host: HOST };
}

/**
 * Validates the environment once into one frozen, typed object.
 * Throws ConfigError listing every problem, one line per variable, never echoing a secret.
 * `cpus` resolves `WORKERS=auto` (the container's CPUs; tests pass their own).
 */
export function loadConfig(env: Environment, cpus: () => number = availableCpus): Config {
  const problems: string[] = [];
  const warnings: string[] = [];
  const v = parseVariables(env, NAMES, problems);

  // derived defaults (they depend on other variables; the schema's descriptions state them)
  const publicUrl = withoutTrailingSlash(v.PUBLIC_URL ?? `http://localhost:${v.PORT}`);
  const publicParsed = new URL(publicUrl);
  const publicIsLoopback = isLoopbackHost(publicParsed.hostname);
  const secureCookie = publicParsed.protocol === 'https:' || publicIsLoopback;
  if (!secureCookie) {
    if (v.SESSION_COOKIE_INSECURE) warnings.push('SESSION_COOKIE_INSECURE=true: the session cookie is sent without Secure over plain http; use https in production');
    else problems.push('PUBLIC_URL: must be https or a loopback host (or set SESSION_COOKIE_INSECURE=true for a plain-http test setup)');
  }
  if (publicParsed.pathname !== '/' || publicParsed.search !== '') problems.push('PUBLIC_URL: must be an origin without a path or query (the gateway serves at the root)');

  if (v.OIDC_ISSUER !== undefined) {
    const issuer = new URL(v.OIDC_ISSUER);
    if (issuer.protocol !== 'https:') {
      if (isLoopbackHost(issuer.hostname)) warnings.push('OIDC_ISSUER is plain http on a loopback host: acceptable for a demo or tests only');
      else problems.push('OIDC_ISSUER: must be https (plain http is allowed only for loopback hosts)');
    }
  }
  for (const alg of v.OIDC_ID_TOKEN_ALGS) {
    if (alg === 'none' || alg.startsWith('HS')) problems.push(`OIDC_ID_TOKEN_ALGS: "${alg}" is not allowed (no "none", no HMAC)`);
  }

  let routes: ProxyRoute[] = [];
  if (v.PROXY_ROUTES !== undefined) routes = parseProxyRoutes(v.PROXY_ROUTES, problems);
  else if (v.UPSTREAM_URL !== undefined) routes = [proxyRoute('/api', withoutTrailingSlash(v.UPSTREAM_URL), false, false)];
  else problems.push('UPSTREAM_URL: required unless PROXY_ROUTES is set; the resource server that /api/* is forwarded to');
  for (const route of routes) {
    if (route.prefix !== '/api' && !route.prefix.startsWith('/api/')) problems.push(`PROXY_ROUTES: prefix "${route.prefix}" must be /api or below it`);
  }

  if (v.SESSION_STORE === 'redis' && v.REDIS_URL === undefined) problems.push('REDIS_URL: required when SESSION_STORE=redis');
  if (v.NODE_ENV === 'production' && v.SESSION_STORE === 'memory') {
    warnings.push('memory session store: sessions are lost on restart and are not shared between replicas; set SESSION_STORE=redis for more than one replica');
  }
  if (v.SPA_DIR !== undefined && v.SPA_UPSTREAM_URL !== undefined) problems.push('SPA_UPSTREAM_URL: set either SPA_DIR or SPA_UPSTREAM_URL, not both');
  if (v.METRICS_PORT !== undefined && v.METRICS_PORT === v.PORT) problems.push('METRICS_PORT: must differ from PORT');
  if (v.NODE_ENV === 'production' && v.METRICS_PORT === undefined) {
    // session counts and login failure codes are for operators, not for anyone who can reach the app
    warnings.push('METRICS_PORT is unset: /metrics is served on the public port; set METRICS_PORT (the image uses 9464) and keep that port internal');
  }
  const workers = v.WORKERS === 'auto' ? cpus() : v.WORKERS;
  if (workers > 1) {
    const counted = v.WORKERS === 'auto' ? `WORKERS=auto (${workers} CPUs)` : `WORKERS=${workers}`;
    // each worker has its own memory: a session created by one would be unknown to the others
    if (v.SESSION_STORE !== 'redis') problems.push(`WORKERS: ${counted} requires SESSION_STORE=redis, which the workers share`);
    if (v.METRICS_PORT === undefined) problems.push(`WORKERS: ${counted} requires METRICS_PORT, where the primary serves /metrics, /healthz and /readyz for all workers`);
  }
  const extraAuthParams = parseExtraAuthParams(v.OIDC_EXTRA_AUTH_PARAMS, problems);

  if (problems.length > 0 || !isComplete(v)) throw new ConfigError(problems);

  const config: Config = buildConfig(v, { publicUrl, publicOrigin: publicParsed.origin, secureCookie, workers, routes, extraAuthParams, warnings });
  deepFreeze(config);
  return config;
}

interface Derived {
  readonly publicUrl: string;
  readonly publicOrigin: string;
  readonly secureCookie: boolean;
  /** WORKERS with `auto` resolved. */
  readonly workers: number;
  readonly routes: ProxyRoute[];
  readonly extraAuthParams: Record<string, string>;
  readonly warnings: string[];
}

/** The nested Config from validated values; its return type is the Config type. */
function buildConfig(v: Complete, d: Derived) {
  return {
    server: {
      port: v.PORT,
      host: v.HOST,
      publicUrl: d.publicUrl,
      publicOrigin: d.publicOrigin,
      /** Processes serving the port; 1: no cluster. */
      workers: d.workers,
    },
    log: { level: v.LOG_LEVEL, format: v.LOG_FORMAT },
    oidc: {
      issuer: v.OIDC_ISSUER,
      clientId: v.OIDC_CLIENT_ID,
      clientSecret: v.OIDC_CLIENT_SECRET,
      tokenEndpointAuthMethod: v.OIDC_TOKEN_ENDPOINT_AUTH_METHOD,
      /** Scopes besides `openid`, which is always sent. */
      scopes: v.OIDC_SCOPES.split(/\s+/).filter((s) => s !== '' && s !== 'openid'),
      extraAuthParams: d.extraAuthParams,
      clockSkewS: v.OIDC_CLOCK_SKEW_S,
      idTokenAlgs: v.OIDC_ID_TOKEN_ALGS,
      redirectUri: `${d.publicUrl}/auth/callback`,
      postLogoutRedirectUri: v.OIDC_POST_LOGOUT_REDIRECT_URI ?? `${d.publicUrl}/`,
      httpTimeoutS: v.OIDC_DISCOVERY_TIMEOUT_S,
      /** GET /auth/frontchannel-logout is served (OpenID Connect Front-Channel Logout 1.0). */
      frontchannelLogout: v.OIDC_FRONTCHANNEL_LOGOUT,
    },
    proxy: {
      routes: [...d.routes].sort((a, b) => b.prefix.length - a.prefix.length),
      timeoutS: v.UPSTREAM_TIMEOUT_S,
      /** Connections per route's upstream (its agent's pool). */
      maxSockets: v.UPSTREAM_MAX_SOCKETS,
      /** Undefined: no limit. */
      maxBodyBytes: v.API_MAX_BODY_MB === undefined ? undefined : Math.floor(v.API_MAX_BODY_MB * 1024 * 1024),
      /** Lower-case header name. */
      csrfHeader: v.API_CSRF_HEADER.toLowerCase(),
    },
    session: {
      secrets: v.SESSION_SECRET,
      store: v.SESSION_STORE,
      idleTimeoutS: v.SESSION_IDLE_TIMEOUT_S,
      absoluteTimeoutS: v.SESSION_ABSOLUTE_TIMEOUT_S,
      maxEntries: v.SESSION_MAX_ENTRIES,
      refreshSkewS: v.TOKEN_REFRESH_SKEW_S,
      /** How often open WebSockets are checked against their session. */
      websocketCheckS: v.SESSION_WEBSOCKET_CHECK_S,
      cookie: { name: d.secureCookie ? '__Host-bff-session' : 'bff-session', secure: d.secureCookie },
    },
    redis: { url: v.REDIS_URL, password: v.REDIS_PASSWORD, keyPrefix: v.REDIS_KEY_PREFIX },
    spa: { dir: v.SPA_DIR, upstreamUrl: v.SPA_UPSTREAM_URL === undefined ? undefined : withoutTrailingSlash(v.SPA_UPSTREAM_URL) },
    ops: {
      metricsPort: v.METRICS_PORT,
      authRateLimitPerMinute: v.AUTH_RATE_LIMIT_PER_MINUTE,
      trustProxy: v.TRUST_PROXY.split(',').map((s) => s.trim()).filter((s) => s !== ''),
      shutdownGraceS: v.SHUTDOWN_GRACE_S,
    },
    /** Limits of the main port's HTTP server (slowloris, connection floods). */
    connections: {
      headersTimeoutS: v.SERVER_HEADERS_TIMEOUT_S,
      /** 0: off. Never applied to /api. */
      requestTimeoutS: v.SERVER_REQUEST_TIMEOUT_S,
      keepAliveTimeoutS: v.SERVER_KEEP_ALIVE_TIMEOUT_S,
      max: v.SERVER_MAX_CONNECTIONS,
      maxPerClient: v.SERVER_MAX_CONNECTIONS_PER_CLIENT,
    },
    /** Start-up warnings to log once the logger exists (never secrets). */
    warnings: d.warnings,
  };
}

/** The validated configuration: the type of what buildConfig() returns, frozen. */
export type Config = DeepReadonly<ReturnType<typeof buildConfig>>;

function deepFreeze(value: unknown): void {
  if (value !== null && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
}
