import { z } from 'zod';

/**
 * Every environment variable the gateway reads: name, schema, default and description.
 * This is the single source of truth: `loadConfig()` validates against it and
 * `scripts/config-table.ts` renders the README's configuration table from it.
 */
export interface VariableSpec {
  readonly schema: z.ZodType;
  /** Raw default as it would appear in the environment; absent means required or optional. */
  readonly default?: string;
  readonly required?: boolean;
  /** May also be read from `<NAME>_FILE` (container secrets); the value is never echoed. */
  readonly secret?: boolean;
  readonly description: string;
}

const port = z.coerce.number().int().min(1, 'must be a port number (1-65535)').max(65535, 'must be a port number (1-65535)');
const seconds = z.coerce.number().int('must be a whole number of seconds').min(0, 'must be 0 or more seconds');
const positiveSeconds = z.coerce.number().int('must be a whole number of seconds').min(1, 'must be at least 1 second');
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an absolute http(s) URL' });
const bool = z.enum(['true', 'false'], { error: 'must be true or false' }).transform((v) => v === 'true');
const csv = z.string().transform((v) => v.split(',').map((s) => s.trim()).filter((s) => s.length > 0));

export const variables = {
  PORT: { schema: port, default: '3000', description: 'Port the gateway listens on.' },
  HOST: { schema: z.string().min(1), default: '0.0.0.0', description: 'Interface the gateway binds to.' },
  WORKERS: {
    schema: z
      .string()
      .regex(/^(auto|[1-9]\d{0,2})$/, 'must be auto or a whole number from 1 to 999')
      .transform((v) => (v === 'auto' ? 'auto' : Number(v))),
    default: '1',
    description:
      'Processes serving `PORT` (`node:cluster` workers behind one primary); `auto`: the CPUs the container may use (its cgroup `cpu.max` quota, rounded down). More than one needs `SESSION_STORE=redis` and `METRICS_PORT`, where the primary serves `/metrics` summed over the workers and `/readyz` for all of them.',
  },
  PUBLIC_URL: {
    schema: httpUrl,
    description:
      'The gateway\'s external origin as browsers see it (default `http://localhost:$PORT`). `redirect_uri` is `PUBLIC_URL/auth/callback`. https, or a loopback host, gives the `__Host-` Secure cookie.',
  },
  LOG_LEVEL: {
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    default: 'info',
    description: 'pino log level: `fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`.',
  },
  LOG_FORMAT: { schema: z.enum(['json', 'pretty']), default: 'json', description: '`json` (one line per event) or `pretty` for humans.' },
  NODE_ENV: {
    schema: z.string().min(1),
    default: 'development',
    description: '`production` (the image sets it) warns at start-up about development-only defaults, such as the memory session store.',
  },

  OIDC_ISSUER: {
    schema: httpUrl,
    required: true,
    description:
      'Issuer URL of the OpenID provider; discovery reads `{issuer}/.well-known/openid-configuration`. Must be https, except for loopback hosts (warning).',
  },
  OIDC_CLIENT_ID: { schema: z.string().min(1), required: true, description: 'Client id registered at the provider.' },
  OIDC_CLIENT_SECRET: {
    schema: z.string().min(1),
    required: true,
    secret: true,
    description: 'Client secret (or `OIDC_CLIENT_SECRET_FILE`, a file holding it).',
  },
  OIDC_TOKEN_ENDPOINT_AUTH_METHOD: {
    schema: z.enum(['client_secret_basic', 'client_secret_post']),
    default: 'client_secret_basic',
    description: 'How the gateway authenticates at the token endpoint: HTTP Basic (`client_secret_basic`) or form fields (`client_secret_post`).',
  },
  OIDC_SCOPES: { schema: z.string().min(1), default: 'openid profile email offline_access', description: 'Scopes requested at login, space separated (`openid` is always sent).' },
  OIDC_EXTRA_AUTH_PARAMS: {
    schema: z.string(),
    default: '',
    description: 'Extra authorization request parameters in query-string form, e.g. `audience=https://api.example.com`. Protocol parameters (state, nonce, PKCE, redirect_uri, ...) cannot be overridden.',
  },
  OIDC_CLOCK_SKEW_S: { schema: seconds, default: '60', description: 'Clock tolerance for ID token `exp`/`iat` and logout token `iat`.' },
  OIDC_ID_TOKEN_ALGS: {
    schema: csv,
    default: 'RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,ES512,EdDSA',
    description: 'Allowed ID token signature algorithms (asymmetric only; `none` and HMAC are refused).',
  },
  OIDC_POST_LOGOUT_REDIRECT_URI: { schema: httpUrl, description: 'Where the provider sends the browser after logout (default `PUBLIC_URL/`).' },
  OIDC_FRONTCHANNEL_LOGOUT: {
    schema: bool,
    default: 'false',
    description:
      'Serve `GET /auth/frontchannel-logout?iss=…&sid=…` (OpenID Connect Front-Channel Logout 1.0): it ends the sessions of that provider `sid` without a cookie, so anyone who learns a provider `sid` could sign that user out. Off unless the provider cannot do back-channel logout.',
  },
  OIDC_DISCOVERY_TIMEOUT_S: {
    schema: positiveSeconds.max(30, 'must be at most 30 seconds'),
    default: '10',
    description: 'Timeout for each discovery, JWKS, token and revocation request to the provider (1-30). A refresh holds its lock for twice this plus 5 s.',
  },

  UPSTREAM_URL: { schema: httpUrl, description: 'The resource server that `/api/*` is forwarded to, path unchanged. Required unless `PROXY_ROUTES` is set.' },
  PROXY_ROUTES: {
    schema: z.string(),
    description:
      'JSON array of routes for several upstreams, e.g. `[{"prefix":"/api/orders","target":"http://orders:8080","stripPrefix":true},{"prefix":"/api","target":"http://api:8080"}]`; the longest matching prefix wins. `"passCookies": true` lets a route\'s `Set-Cookie` reach the browser (never for the gateway\'s own cookie names); by default upstream cookies are dropped.',
  },
  UPSTREAM_TIMEOUT_S: { schema: positiveSeconds, default: '30', description: 'Time allowed for the upstream\'s response headers (streams are not cut afterwards); then 504.' },
  UPSTREAM_MAX_SOCKETS: {
    schema: z.coerce.number().int('must be a whole number').min(1, 'must be at least 1'),
    default: '256',
    description: 'Connections each route (and the SPA dev server) may hold open to its upstream, streams included (an established WebSocket leaves the pool). When all are busy, requests wait for one to free up, at most `UPSTREAM_TIMEOUT_S` (then 504).',
  },
  API_MAX_BODY_MB: { schema: z.coerce.number().positive('must be a positive number of megabytes'), description: 'Largest request body accepted on `/api/*` (413 beyond). Unset: no limit.' },
  API_CSRF_HEADER: { schema: z.string().regex(/^[A-Za-z0-9-]+$/, 'must be a header name'), default: 'X-CSRF', description: 'Header that `/api/*` requests must carry with the value `1`.' },

  SESSION_SECRET: {
    schema: csv.pipe(z.array(z.string().min(32, 'must be at least 32 characters')).min(1, 'must be at least 32 characters')),
    required: true,
    secret: true,
    description: 'Keys the session cookie and the Redis store\'s sealed records: at least 32 characters. A comma-separated list rotates secrets: the first seals new cookies and records, all open existing ones (keep a retired secret listed for `SESSION_ABSOLUTE_TIMEOUT_S`). Or `SESSION_SECRET_FILE`.',
  },
  SESSION_STORE: { schema: z.enum(['memory', 'redis']), default: 'memory', description: '`memory` (one process) or `redis` (several replicas; needs `REDIS_URL`).' },
  SESSION_IDLE_TIMEOUT_S: { schema: positiveSeconds, default: '1800', description: 'A session ends after this long without activity.' },
  SESSION_ABSOLUTE_TIMEOUT_S: { schema: positiveSeconds, default: '28800', description: 'A session ends this long after sign-in, whatever the activity.' },
  SESSION_MAX_ENTRIES: { schema: z.coerce.number().int().min(1), default: '100000', description: 'Memory store bound: the least recently used session is evicted beyond it.' },
  SESSION_COOKIE_INSECURE: {
    schema: bool,
    default: 'false',
    description: 'Allow a plain-http, non-loopback `PUBLIC_URL`: the cookie loses `Secure` and the `__Host-` prefix (a warning at start-up). Never in production.',
  },
  SESSION_WEBSOCKET_CHECK_S: {
    schema: positiveSeconds.max(30, 'must be at most 30 seconds'),
    default: '10',
    description:
      'How often open `/api` WebSockets are checked against their session (one store read per session with open sockets): a socket closes at most this long after its session ends elsewhere (another replica, back-channel logout, expiry).',
  },
  TOKEN_REFRESH_SKEW_S: { schema: seconds, default: '30', description: 'Refresh the access token when it expires within this many seconds.' },

  REDIS_URL: { schema: z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' }), description: 'Redis for `SESSION_STORE=redis`; `rediss://` for TLS, password in the URL or `REDIS_PASSWORD`.' },
  REDIS_PASSWORD: { schema: z.string().min(1), secret: true, description: 'Redis password (or `REDIS_PASSWORD_FILE`), if not in `REDIS_URL`.' },
  REDIS_KEY_PREFIX: { schema: z.string(), default: 'bff:', description: 'Prefix of every Redis key the gateway writes.' },

  SPA_DIR: { schema: z.string().min(1), description: 'Folder of the single-page app\'s static files, served at `/` (default: the bundled sample SPA).' },
  SPA_UPSTREAM_URL: { schema: httpUrl, description: 'A frontend dev server to proxy the SPA to instead of `SPA_DIR` (hot-reload WebSocket included).' },

  METRICS_PORT: { schema: port, description: 'Serve `/metrics` on this port instead of the main one; `/healthz` and `/readyz` are served there too (liveness probes that the connection caps never starve).' },
  AUTH_RATE_LIMIT_PER_MINUTE: { schema: z.coerce.number().int().min(0), default: '300', description: '`/auth/login` requests per client address per minute (429 beyond); `0` turns it off.' },
  TRUST_PROXY: {
    schema: z.string(),
    default: '',
    description: 'Comma-separated addresses or CIDRs of proxies whose `X-Forwarded-For` is trusted. Empty: the socket address is the client.',
  },
  SERVER_HEADERS_TIMEOUT_S: {
    schema: positiveSeconds,
    default: '10',
    description: 'Time a client gets to send a request\'s headers, however slowly it trickles them (slowloris); then 408 and the connection closes.',
  },
  SERVER_REQUEST_TIMEOUT_S: {
    schema: seconds,
    default: '30',
    description:
      'Time a client gets to send a whole request, body included, outside `/api` (408 beyond); `0` turns it off. `/api` bodies and streams are not cut by it: `UPSTREAM_TIMEOUT_S` and the upstream govern them.',
  },
  SERVER_KEEP_ALIVE_TIMEOUT_S: { schema: positiveSeconds, default: '5', description: 'An idle keep-alive connection is closed after this long.' },
  SERVER_MAX_CONNECTIONS: {
    schema: z.coerce.number().int().min(1, 'must be at least 1'),
    default: '10000',
    description: 'Open connections the main port accepts in all; a connection beyond it is closed at once, not queued.',
  },
  SERVER_MAX_CONNECTIONS_PER_CLIENT: {
    schema: z.coerce.number().int().min(1, 'must be at least 1'),
    default: '256',
    description:
      'Open connections per client address (per /64 for IPv6) on the main port; one beyond it is closed at once. Peers listed in `TRUST_PROXY` are exempt (a load balancer carries many clients). `/healthz` and `/readyz` on `METRICS_PORT` are not capped.',
  },
  SHUTDOWN_GRACE_S: { schema: seconds, default: '10', description: 'On SIGTERM, time in-flight requests get to finish.' },
} satisfies Record<string, VariableSpec>;

export type VariableName = keyof typeof variables;
