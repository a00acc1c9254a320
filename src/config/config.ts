// a `?? literal` after a variable the schema defaults is a second copy of its default: refuse it
/* eslint @typescript-eslint/no-unnecessary-condition: "error" */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { availableCpus } from '../cluster/cpu-quota.js';
import { isLoopbackHost } from '../common/loopback.js';
import { readConfigFile } from './config-file.js';
import { variables, type VariableName, type VariableSpec } from './config.schema.js';
import { parseRoutes, proxyRoute, refreshesForRoute, type ProxyRouteValue } from './route-policy.js';

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
/**
 * Parameters a browser must never choose (OIDC_LOGIN_PARAMS_ALLOWED refuses them): the reserved ones,
 * and those that change what the tokens prove (max_age, claims, resource) or whose they are.
 */
const PROTOCOL_AUTH_PARAMS = new Set([
  ...RESERVED_AUTH_PARAMS, 'max_age', 'claims', 'id_token_hint', 'resource', 'code', 'iss', 'client_secret', 'client_assertion', 'client_assertion_type', 'grant_type', 'dpop_jkt',
]);
/** Entra ID's multi-tenant endpoints: their discovery issuer is a `{tenantid}` template. */
const ENTRA_MULTI_TENANT = /^https:\/\/login\.microsoftonline\.com\/(common|organizations)(\/|$)/;
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

function parseProxyRoutes(value: string, defaultTimeoutS: number, problems: string[]): ProxyRoute[] {
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    problems.push('PROXY_ROUTES: must be a JSON array of route objects ({"prefix","target", ...})');
    return [];
  }
  return parseRoutes(json, 'PROXY_ROUTES', defaultTimeoutS, problems);
}

/** One `/api` route of Config.proxy.routes. */
export type ProxyRoute = DeepReadonly<ProxyRouteValue>;

function parseExtraAuthParams(value: string, problems: string[]): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [key, val] of new URLSearchParams(value)) {
    if (RESERVED_AUTH_PARAMS.has(key)) problems.push(`OIDC_EXTRA_AUTH_PARAMS: "${key}" is set by the gateway and cannot be overridden`);
    else params[key] = val;
  }
  return params;
}

/** OpenTelemetry's `key=value,key=value` lists (W3C Baggage syntax, values percent-encoded). */
function parseKeyValueList(name: string, value: string, problems: string[]): Record<string, string> {
  const pairs: Record<string, string> = {};
  for (const item of value.split(',')) {
    if (item.trim() === '') continue;
    const eq = item.indexOf('=');
    const key = item.slice(0, eq).trim();
    let decoded: string | undefined;
    try {
      decoded = eq > 0 ? decodeURIComponent(item.slice(eq + 1).trim()) : undefined;
    } catch {
      decoded = undefined;
    }
    if (key === '' || decoded === undefined) {
      problems.push(`${name}: expected key=value pairs separated by commas`);
      return {};
    }
    pairs[key] = decoded;
  }
  return pairs;
}

function loginScopes(scopes: string, routes: readonly ProxyRoute[]): string[] {
  const routeScopes = routes.filter(refreshesForRoute).flatMap((r) => r.scope?.split(/\s+/) ?? []);
  return [...new Set([...scopes.split(/\s+/), ...routeScopes])].filter((s) => s !== '' && s !== 'openid');
}

function withoutTrailingSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

/** SESSION_STORE=redis names exactly one way to reach Redis: one URL, sentinels, or cluster nodes. */
function checkRedisTopology(env: Environment, v: Parsed, problems: string[]): void {
  // set at all, valid or not (an invalid value is reported on its own line already)
  const isSet = (name: VariableName): boolean => (env[name] ?? '') !== '';
  const given = (['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'] as const).filter(isSet);
  const [, second] = given;
  if (given.length === 0) problems.push('REDIS_URL: required when SESSION_STORE=redis (or REDIS_SENTINELS with REDIS_SENTINEL_NAME, or REDIS_CLUSTER_NODES)');
  if (second !== undefined) problems.push(`${second}: set only one of REDIS_URL, REDIS_SENTINELS and REDIS_CLUSTER_NODES (got ${given.join(' and ')})`);
  if (isSet('REDIS_SENTINELS') && !isSet('REDIS_SENTINEL_NAME')) problems.push('REDIS_SENTINEL_NAME: required with REDIS_SENTINELS (the name the sentinels monitor the primary under)');
  if (!isSet('REDIS_SENTINELS') && isSet('REDIS_SENTINEL_NAME')) problems.push('REDIS_SENTINEL_NAME: only used with REDIS_SENTINELS');
  // a hash tag in the prefix would pin every key of every session to one slot (one node)
  if (isSet('REDIS_CLUSTER_NODES') && /[{}]/.test(v.REDIS_KEY_PREFIX)) problems.push('REDIS_KEY_PREFIX: must not contain { or } with REDIS_CLUSTER_NODES');
}

/** How the Redis store reaches Redis; undefined when none is configured (memory store). */
function redisConnection(v: Complete) {
  if (v.REDIS_CLUSTER_NODES !== undefined) return { clusterNodes: v.REDIS_CLUSTER_NODES };
  if (v.REDIS_SENTINELS !== undefined && v.REDIS_SENTINEL_NAME !== undefined) return { sentinels: v.REDIS_SENTINELS, sentinelName: v.REDIS_SENTINEL_NAME };
  if (v.REDIS_URL !== undefined) return { url: v.REDIS_URL };
  return undefined;
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
  // the file's values first; a variable set in the environment replaces the file's value whole
  const file = readConfigFile(env, NAMES, variables, problems);
  const v = parseVariables(file.env, NAMES, problems);

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
  // PROXY_ROUTES from the environment replaces the file's routes whole, as every variable does
  if (v.PROXY_ROUTES !== undefined) routes = parseProxyRoutes(v.PROXY_ROUTES, v.UPSTREAM_TIMEOUT_S, problems);
  else if (file.routes !== undefined) routes = parseRoutes(file.routes, 'routes', v.UPSTREAM_TIMEOUT_S, problems);
  else if (v.UPSTREAM_URL !== undefined) routes = [proxyRoute({ prefix: '/api', target: withoutTrailingSlash(v.UPSTREAM_URL) }, v.UPSTREAM_TIMEOUT_S)];
  else problems.push('UPSTREAM_URL: required unless PROXY_ROUTES (or the config file\'s routes) is set; the resource server that /api/* is forwarded to');

  if (v.SESSION_STORE === 'redis') checkRedisTopology(env, v, problems);
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
  const otlpHeaders = parseKeyValueList('OTEL_EXPORTER_OTLP_HEADERS', v.OTEL_EXPORTER_OTLP_HEADERS ?? '', problems);
  const resourceAttributes = parseKeyValueList('OTEL_RESOURCE_ATTRIBUTES', v.OTEL_RESOURCE_ATTRIBUTES, problems);
  const maxAge = extraAuthParams['max_age'];
  if (maxAge !== undefined && !/^\d{1,9}$/.test(maxAge)) problems.push('OIDC_EXTRA_AUTH_PARAMS: max_age must be a whole number of seconds');
  for (const name of v.OIDC_LOGIN_PARAMS_ALLOWED) {
    if (PROTOCOL_AUTH_PARAMS.has(name)) problems.push(`OIDC_LOGIN_PARAMS_ALLOWED: "${name}" is a protocol parameter and cannot come from the browser`);
  }
  if (v.OIDC_ISSUER !== undefined && ENTRA_MULTI_TENANT.test(v.OIDC_ISSUER) && v.OIDC_ALLOWED_TENANTS.length === 0) {
    problems.push('OIDC_ALLOWED_TENANTS: required for a multi-tenant Entra ID issuer (/common, /organizations): list the tenant ids whose users may sign in');
  }

  if (problems.length > 0 || !isComplete(v)) throw new ConfigError(problems);

  const config: Config = buildConfig(v, { publicUrl, publicOrigin: publicParsed.origin, secureCookie, workers, routes, extraAuthParams, otlpHeaders, resourceAttributes, warnings });
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
  readonly otlpHeaders: Record<string, string>;
  readonly resourceAttributes: Record<string, string>;
  readonly warnings: string[];
}

function tracingConfig(v: Complete, d: Derived) {
  const endpoint = v.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? (v.OTEL_EXPORTER_OTLP_ENDPOINT === undefined ? undefined : `${withoutTrailingSlash(v.OTEL_EXPORTER_OTLP_ENDPOINT)}/v1/traces`);
  if (endpoint === undefined || v.OTEL_SDK_DISABLED) return undefined;
  return {
    endpoint,
    headers: d.otlpHeaders,
    serviceName: v.OTEL_SERVICE_NAME,
    resourceAttributes: d.resourceAttributes,
    sampler: v.OTEL_TRACES_SAMPLER,
    samplerRatio: v.OTEL_TRACES_SAMPLER_ARG,
    trustIncoming: v.TRACING_TRUST_INCOMING,
  };
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
      /** Scopes besides `openid`, which is always sent: OIDC_SCOPES and every user route's. */
      scopes: loginScopes(v.OIDC_SCOPES, d.routes),
      /**
       * RFC 8707 resources requested at login: every user route's, since providers grant a resource
       * at the token endpoint only if it was granted at authorization.
       */
      loginResources: [...new Set(d.routes.filter(refreshesForRoute).flatMap((r) => r.resource))],
      extraAuthParams: d.extraAuthParams,
      clockSkewS: v.OIDC_CLOCK_SKEW_S,
      idTokenAlgs: v.OIDC_ID_TOKEN_ALGS,
      redirectUri: `${d.publicUrl}/auth/callback`,
      postLogoutRedirectUri: v.OIDC_POST_LOGOUT_REDIRECT_URI ?? `${d.publicUrl}/`,
      /** Replaces discovery's end_session_endpoint when set. */
      endSessionUrl: v.OIDC_END_SESSION_URL,
      endSessionRedirectParam: v.OIDC_END_SESSION_REDIRECT_PARAM,
      /** Query parameters /auth/login forwards to the authorization request. */
      loginParamsAllowed: v.OIDC_LOGIN_PARAMS_ALLOWED,
      /** Tenants accepted when discovery's issuer is a `{tenantid}` template. */
      allowedTenants: v.OIDC_ALLOWED_TENANTS,
      userinfo: v.OIDC_USERINFO,
      /** RFC 9449: each session's tokens are bound to its own key pair; upstream calls carry a DPoP proof. */
      dpop: v.OIDC_DPOP,
      /** From OIDC_EXTRA_AUTH_PARAMS: when set, ID tokens must carry a recent enough auth_time. */
      maxAgeS: d.extraAuthParams['max_age'] === undefined ? undefined : Number(d.extraAuthParams['max_age']),
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
    /** `connection`: exactly one of { url }, { sentinels, sentinelName } or { clusterNodes } with the redis store. */
    redis: { connection: redisConnection(v), password: v.REDIS_PASSWORD, keyPrefix: v.REDIS_KEY_PREFIX },
    spa: {
      dir: v.SPA_DIR,
      upstreamUrl: v.SPA_UPSTREAM_URL === undefined ? undefined : withoutTrailingSlash(v.SPA_UPSTREAM_URL),
      immutablePaths: v.SPA_IMMUTABLE_PATHS,
      csp: v.SPA_CSP,
    },
    /** OpenTelemetry; undefined when off (no endpoint, or OTEL_SDK_DISABLED). */
    tracing: tracingConfig(v, d),
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
