import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { isLoopbackHost } from '../common/loopback.js';
import { variables, type VariableName, type VariableSpec } from './config.schema.js';

export interface ProxyRoute {
  /** Path prefix, without a trailing slash ("/api/orders"). */
  readonly prefix: string;
  readonly target: string;
  readonly stripPrefix: boolean;
  /** Lets the upstream's Set-Cookie through (never for the gateway's own cookie names). */
  readonly passCookies: boolean;
}

export interface Config {
  readonly server: { readonly port: number; readonly host: string; readonly publicUrl: string; readonly publicOrigin: string };
  readonly log: { readonly level: string; readonly format: 'json' | 'pretty' };
  readonly oidc: {
    readonly issuer: string;
    readonly clientId: string;
    readonly clientSecret: string;
    readonly tokenEndpointAuthMethod: 'client_secret_basic' | 'client_secret_post';
    /** Scopes besides `openid`, which is always sent. */
    readonly scopes: readonly string[];
    readonly extraAuthParams: Readonly<Record<string, string>>;
    readonly clockSkewS: number;
    readonly idTokenAlgs: readonly string[];
    readonly redirectUri: string;
    readonly postLogoutRedirectUri: string;
    readonly httpTimeoutS: number;
    /** GET /auth/frontchannel-logout is served (OpenID Connect Front-Channel Logout 1.0). */
    readonly frontchannelLogout: boolean;
  };
  readonly proxy: {
    readonly routes: readonly ProxyRoute[];
    readonly timeoutS: number;
    /** Connections per route's upstream (its agent's pool). */
    readonly maxSockets: number;
    readonly maxBodyBytes: number | undefined;
    /** Lower-case header name. */
    readonly csrfHeader: string;
  };
  readonly session: {
    readonly secrets: readonly string[];
    readonly store: 'memory' | 'redis';
    readonly idleTimeoutS: number;
    readonly absoluteTimeoutS: number;
    readonly maxEntries: number;
    readonly refreshSkewS: number;
    /** How often open WebSockets are checked against their session. */
    readonly websocketCheckS: number;
    readonly cookie: { readonly name: string; readonly secure: boolean };
  };
  readonly redis: { readonly url: string | undefined; readonly password: string | undefined; readonly keyPrefix: string };
  readonly spa: { readonly dir: string | undefined; readonly upstreamUrl: string | undefined };
  readonly ops: {
    readonly metricsPort: number | undefined;
    readonly authRateLimitPerMinute: number;
    readonly trustProxy: readonly string[];
    readonly shutdownGraceS: number;
  };
  /** Limits of the main port's HTTP server (slowloris, connection floods). */
  readonly connections: {
    readonly headersTimeoutS: number;
    /** 0: off. Never applied to /api. */
    readonly requestTimeoutS: number;
    readonly keepAliveTimeoutS: number;
    readonly max: number;
    readonly maxPerClient: number;
  };
  /** Start-up warnings to log once the logger exists (never secrets). */
  readonly warnings: readonly string[];
}

/** Thrown with every configuration problem at once; each line names one variable. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

export type Environment = Readonly<Record<string, string | undefined>>;
type Parsed = { [K in VariableName]: z.output<(typeof variables)[K]['schema']> | undefined };

/** OAuth/OIDC parameters the gateway owns; OIDC_EXTRA_AUTH_PARAMS cannot set them. */
const RESERVED_AUTH_PARAMS = new Set([
  'client_id', 'redirect_uri', 'response_type', 'response_mode', 'scope', 'state', 'nonce', 'code_challenge', 'code_challenge_method', 'request', 'request_uri',
]);
const PROXY_ROUTES_SCHEMA = z
  .array(z.object({ prefix: z.string().regex(/^\/[^?#]*$/, 'prefix must start with "/"'), target: z.url({ protocol: /^https?$/ }), stripPrefix: z.boolean().default(false), passCookies: z.boolean().default(false) }).strict())
  .min(1);

/** The raw value, undefined when unset, or null when a *_FILE could not be read (already reported). */
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
  if (direct !== undefined && direct !== '') return direct;
  return spec.default;
}

function parseVariables(env: Environment, problems: string[]): Parsed {
  const parsed: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(variables) as [VariableName, VariableSpec][]) {
    const raw = rawValue(env, name, spec, problems);
    if (raw === null) continue;
    if (raw === undefined) {
      if (spec.required === true) problems.push(`${name}: required${spec.secret === true ? ` (or ${name}_FILE)` : ''}; ${spec.description}`);
      continue;
    }
    const result = spec.schema.safeParse(raw);
    if (result.success) parsed[name] = result.data;
    else problems.push(`${name}: ${result.error.issues[0]?.message ?? 'invalid value'}`);
  }
  return parsed as Parsed;
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
  return result.data.map((r) => ({ prefix: r.prefix.replace(/\/+$/, '') || '/', target: r.target, stripPrefix: r.stripPrefix, passCookies: r.passCookies }));
}

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

/**
 * Validates the environment once into one frozen, typed object.
 * Throws ConfigError listing every problem, one line per variable, never echoing a secret.
 */
export function loadConfig(env: Environment): Config {
  const problems: string[] = [];
  const warnings: string[] = [];
  const v = parseVariables(env, problems);

  const port = v.PORT ?? 3000;
  const publicUrl = withoutTrailingSlash(v.PUBLIC_URL ?? `http://localhost:${port}`);
  const publicParsed = new URL(publicUrl);
  const publicIsLoopback = isLoopbackHost(publicParsed.hostname);
  const secureCookie = publicParsed.protocol === 'https:' || publicIsLoopback;
  if (!secureCookie) {
    if (v.SESSION_COOKIE_INSECURE === true) warnings.push('SESSION_COOKIE_INSECURE=true: the session cookie is sent without Secure over plain http; use https in production');
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
  const algs = v.OIDC_ID_TOKEN_ALGS ?? [];
  for (const alg of algs) {
    if (alg === 'none' || alg.startsWith('HS')) problems.push(`OIDC_ID_TOKEN_ALGS: "${alg}" is not allowed (no "none", no HMAC)`);
  }

  let routes: ProxyRoute[] = [];
  if (v.PROXY_ROUTES !== undefined) routes = parseProxyRoutes(v.PROXY_ROUTES, problems);
  else if (v.UPSTREAM_URL !== undefined) routes = [{ prefix: '/api', target: withoutTrailingSlash(v.UPSTREAM_URL), stripPrefix: false, passCookies: false }];
  else problems.push('UPSTREAM_URL: required unless PROXY_ROUTES is set; the resource server that /api/* is forwarded to');
  for (const route of routes) {
    if (route.prefix !== '/api' && !route.prefix.startsWith('/api/')) problems.push(`PROXY_ROUTES: prefix "${route.prefix}" must be /api or below it`);
  }

  if (v.SESSION_STORE === 'redis' && v.REDIS_URL === undefined) problems.push('REDIS_URL: required when SESSION_STORE=redis');
  if (v.NODE_ENV === 'production' && (v.SESSION_STORE ?? 'memory') === 'memory') {
    warnings.push('memory session store: sessions are lost on restart and are not shared between replicas; set SESSION_STORE=redis for more than one replica');
  }
  if (v.SPA_DIR !== undefined && v.SPA_UPSTREAM_URL !== undefined) problems.push('SPA_UPSTREAM_URL: set either SPA_DIR or SPA_UPSTREAM_URL, not both');
  if (v.METRICS_PORT !== undefined && v.METRICS_PORT === port) problems.push('METRICS_PORT: must differ from PORT');
  if (v.NODE_ENV === 'production' && v.METRICS_PORT === undefined) {
    // session counts and login failure codes are for operators, not for anyone who can reach the app
    warnings.push('METRICS_PORT is unset: /metrics is served on the public port; set METRICS_PORT (the image uses 9464) and keep that port internal');
  }
  const extraAuthParams = parseExtraAuthParams(v.OIDC_EXTRA_AUTH_PARAMS ?? '', problems);

  if (problems.length > 0) throw new ConfigError(problems);

  const config: Config = {
    server: { port, host: v.HOST ?? '0.0.0.0', publicUrl, publicOrigin: publicParsed.origin },
    log: { level: v.LOG_LEVEL ?? 'info', format: v.LOG_FORMAT ?? 'json' },
    oidc: {
      issuer: v.OIDC_ISSUER ?? '',
      clientId: v.OIDC_CLIENT_ID ?? '',
      clientSecret: v.OIDC_CLIENT_SECRET ?? '',
      tokenEndpointAuthMethod: v.OIDC_TOKEN_ENDPOINT_AUTH_METHOD ?? 'client_secret_basic',
      scopes: (v.OIDC_SCOPES ?? '').split(/\s+/).filter((s) => s !== '' && s !== 'openid'),
      extraAuthParams,
      clockSkewS: v.OIDC_CLOCK_SKEW_S ?? 60,
      idTokenAlgs: algs,
      redirectUri: `${publicUrl}/auth/callback`,
      postLogoutRedirectUri: v.OIDC_POST_LOGOUT_REDIRECT_URI ?? `${publicUrl}/`,
      httpTimeoutS: v.OIDC_DISCOVERY_TIMEOUT_S ?? 10,
      frontchannelLogout: v.OIDC_FRONTCHANNEL_LOGOUT ?? false,
    },
    proxy: {
      routes: [...routes].sort((a, b) => b.prefix.length - a.prefix.length),
      timeoutS: v.UPSTREAM_TIMEOUT_S ?? 30,
      maxSockets: v.UPSTREAM_MAX_SOCKETS ?? 256,
      maxBodyBytes: v.API_MAX_BODY_MB === undefined ? undefined : Math.floor(v.API_MAX_BODY_MB * 1024 * 1024),
      csrfHeader: (v.API_CSRF_HEADER ?? 'X-CSRF').toLowerCase(),
    },
    session: {
      secrets: v.SESSION_SECRET ?? [],
      store: v.SESSION_STORE ?? 'memory',
      idleTimeoutS: v.SESSION_IDLE_TIMEOUT_S ?? 1800,
      absoluteTimeoutS: v.SESSION_ABSOLUTE_TIMEOUT_S ?? 28800,
      maxEntries: v.SESSION_MAX_ENTRIES ?? 100000,
      refreshSkewS: v.TOKEN_REFRESH_SKEW_S ?? 30,
      websocketCheckS: v.SESSION_WEBSOCKET_CHECK_S ?? 10,
      cookie: { name: secureCookie ? '__Host-bff-session' : 'bff-session', secure: secureCookie },
    },
    redis: { url: v.REDIS_URL, password: v.REDIS_PASSWORD, keyPrefix: v.REDIS_KEY_PREFIX ?? 'bff:' },
    spa: { dir: v.SPA_DIR, upstreamUrl: v.SPA_UPSTREAM_URL === undefined ? undefined : withoutTrailingSlash(v.SPA_UPSTREAM_URL) },
    ops: {
      metricsPort: v.METRICS_PORT,
      authRateLimitPerMinute: v.AUTH_RATE_LIMIT_PER_MINUTE ?? 300,
      trustProxy: (v.TRUST_PROXY ?? '').split(',').map((s) => s.trim()).filter((s) => s !== ''),
      shutdownGraceS: v.SHUTDOWN_GRACE_S ?? 10,
    },
    connections: {
      headersTimeoutS: v.SERVER_HEADERS_TIMEOUT_S ?? 10,
      requestTimeoutS: v.SERVER_REQUEST_TIMEOUT_S ?? 30,
      keepAliveTimeoutS: v.SERVER_KEEP_ALIVE_TIMEOUT_S ?? 5,
      max: v.SERVER_MAX_CONNECTIONS ?? 10000,
      maxPerClient: v.SERVER_MAX_CONNECTIONS_PER_CLIENT ?? 256,
    },
    warnings,
  };
  return deepFreeze(config);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
