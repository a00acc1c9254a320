import { z } from 'zod';

/**
 * Every environment variable the gateway reads: name, schema, default and description.
 * This is the single source of truth: `loadConfig()` validates against it and
 * `scripts/config-table.ts` renders the README's configuration table and gateway.example.yaml from it.
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
// a host name, an IPv4 address or a bracketed IPv6 address, then a port
const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/;
const hostPortList = csv.pipe(
  z
    .array(
      z.string().transform((entry, ctx) => {
        const match = HOST_PORT.exec(entry);
        const port = Number(match?.[3]);
        if (match === null || port < 1 || port > 65535) {
          ctx.addIssue({ code: 'custom', message: 'must be a comma-separated list of host:port (IPv6 as [address]:port)' });
          return z.NEVER;
        }
        return { host: match[1] ?? match[2] ?? '', port };
      }),
    )
    .min(1, 'must name at least one host:port'),
);

export const variables = {
  CONFIG_FILE: {
    schema: z.string().min(1),
    description:
      'A YAML or JSON file holding any of these settings: its keys are the variable names, plus `routes:` (a list, in place of `PROXY_ROUTES`). A variable set in the environment replaces the file\'s value whole. See `gateway.example.yaml`.',
  },
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
  OIDC_LOGIN_PARAMS_ALLOWED: {
    schema: csv,
    default: '',
    description:
      'Authorization request parameters that `/auth/login` forwards from its own query, comma separated, e.g. `kc_idp_hint,ui_locales,login_hint` (at most 256 characters each, overriding `OIDC_EXTRA_AUTH_PARAMS`). Protocol parameters (state, nonce, PKCE, redirect_uri, scope, max_age, ...) are refused. `prompt` and `login_hint` are always forwarded.',
  },
  OIDC_USERINFO: {
    schema: bool,
    default: 'false',
    description:
      'At login, merge the userinfo endpoint\'s claims into the session\'s (the ID token\'s win where both have one); its `sub` must equal the ID token\'s, else 502 `userinfo_invalid`. For providers whose ID tokens carry few claims (Google, Entra ID).',
  },
  OIDC_DPOP: { schema: bool, default: 'false', description: 'Sender-constrain tokens with DPoP (RFC 9449): one key pair per session.' },
  OIDC_ALLOWED_TENANTS: {
    schema: csv.pipe(z.array(z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be tenant ids separated by commas'))),
    default: '',
    description:
      'Entra ID multi-tenant apps (`/common`, `/organizations`), whose discovery `issuer` holds the `{tenantid}` placeholder: the tenant ids whose users may sign in. Required when the issuer is such a template; ID tokens, logout tokens and the callback\'s `iss` must then name one of them (and `tid` must agree).',
  },
  OIDC_CLOCK_SKEW_S: { schema: seconds, default: '60', description: 'Clock tolerance for ID token `exp`/`iat` and logout token `iat`.' },
  OIDC_ID_TOKEN_ALGS: {
    schema: csv,
    default: 'RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,ES512,EdDSA',
    description: 'Allowed ID token signature algorithms (asymmetric only; `none` and HMAC are refused).',
  },
  OIDC_POST_LOGOUT_REDIRECT_URI: { schema: httpUrl, description: 'Where the provider sends the browser after logout (default `PUBLIC_URL/`).' },
  OIDC_END_SESSION_URL: {
    schema: httpUrl,
    description:
      'The provider\'s logout page, replacing discovery\'s `end_session_endpoint` (or standing in for a missing one), e.g. Auth0\'s `https://{tenant}/v2/logout`. The gateway adds `id_token_hint`, `client_id`, `state` and the return parameter.',
  },
  OIDC_END_SESSION_REDIRECT_PARAM: {
    schema: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be a query parameter name'),
    default: 'post_logout_redirect_uri',
    description: 'The logout page\'s parameter for where to return afterwards: `post_logout_redirect_uri` (RP-Initiated Logout 1.0), or `returnTo` for Auth0\'s `/v2/logout`.',
  },
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
      'JSON array of routes for several upstreams, e.g. `[{"prefix":"/api/orders","target":"http://orders:8080","stripPrefix":true},{"prefix":"/api","target":"http://api:8080"}]`; the longest matching prefix wins. Each route may also set `passCookies`, `methods`, `timeoutS`, `token`, `anonymous`, `audience`, `resource`, `scope` and `exchange` (see Route policy); unknown keys are refused.',
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
  SESSION_STORE: {
    schema: z.enum(['memory', 'redis']),
    default: 'memory',
    description: '`memory` (one process) or `redis` (several replicas; needs exactly one of `REDIS_URL`, `REDIS_SENTINELS` or `REDIS_CLUSTER_NODES`).',
  },
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
  REDIS_SENTINELS: {
    schema: hostPortList,
    description:
      'Redis Sentinel instead of `REDIS_URL`: the sentinels\' `host:port` list, comma-separated. The gateway asks them for the current primary of `REDIS_SENTINEL_NAME` and follows a failover; `REDIS_PASSWORD` is the data nodes\' password.',
  },
  REDIS_SENTINEL_NAME: { schema: z.string().min(1), description: 'The name the sentinels monitor the primary under (`sentinel monitor <name> …`); required with `REDIS_SENTINELS`.' },
  REDIS_CLUSTER_NODES: {
    schema: hostPortList,
    description:
      'Redis Cluster instead of `REDIS_URL`: some of its nodes as a `host:port` list, comma-separated (the rest is discovered). A session\'s keys share one hash slot, tagged by a keyed hash of the user\'s `sub`; `REDIS_PASSWORD` is the nodes\' password.',
  },
  REDIS_KEY_PREFIX: { schema: z.string(), default: 'bff:', description: 'Prefix of every Redis key the gateway writes (no `{` or `}` with `REDIS_CLUSTER_NODES`).' },

  SPA_DIR: { schema: z.string().min(1), description: 'Folder of the single-page app\'s static files, served at `/` (default: the bundled sample SPA).' },
  SPA_UPSTREAM_URL: { schema: httpUrl, description: 'A frontend dev server to proxy the SPA to instead of `SPA_DIR` (hot-reload WebSocket included).' },
  SPA_IMMUTABLE_PATHS: {
    schema: csv.pipe(z.array(z.string().regex(/^\/[^?#\\]+\/$/, 'each entry must be a folder path such as /assets/ (starting and ending with "/")'))),
    default: '/assets/',
    description:
      'Comma-separated folders of `SPA_DIR` that hold only content-hashed build output (Vite\'s `/assets/`): their files are cached for a year as immutable, and a missing file there is a 404 even for a navigation. Elsewhere a file is immutable when its name carries a Vite/Rollup, webpack, esbuild or Angular CLI content hash; `index.html` and anything else is `no-cache`.',
  },
  SPA_CSP: {
    schema: z.string().regex(/^[\x20-\x7e]+$/, 'must be one line of printable ASCII (a Content-Security-Policy header value)'),
    description:
      'Content-Security-Policy for the SPA\'s responses from `SPA_DIR` or the bundled sample (default: `frame-ancestors \'none\'` for `SPA_DIR`, a strict policy for the sample). A Vite build runs under `default-src \'self\'; script-src \'self\'; style-src \'self\'; img-src \'self\' data:; connect-src \'self\'; base-uri \'none\'; form-action \'self\'; frame-ancestors \'none\'`. Not applied to `SPA_UPSTREAM_URL` (dev servers inject inline scripts).',
  },

  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: {
    schema: httpUrl,
    description:
      'OpenTelemetry: where spans are sent (OTLP over HTTP, JSON encoding), e.g. `http://collector:4318/v1/traces`. Tracing is off unless this or `OTEL_EXPORTER_OTLP_ENDPOINT` is set.',
  },
  OTEL_EXPORTER_OTLP_ENDPOINT: { schema: httpUrl, description: 'OpenTelemetry: the collector\'s base URL; spans go to `{it}/v1/traces` unless `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set.' },
  OTEL_EXPORTER_OTLP_HEADERS: {
    schema: z.string(),
    secret: true,
    description: 'OpenTelemetry: headers for the collector, `key=value` pairs separated by commas, values percent-encoded (an API key, say; or `OTEL_EXPORTER_OTLP_HEADERS_FILE`).',
  },
  OTEL_EXPORTER_OTLP_PROTOCOL: {
    schema: z.enum(['http/json'], { error: 'only http/json is supported (OTLP over HTTP with the JSON encoding; collectors accept it on the same port as http/protobuf)' }),
    description: 'OpenTelemetry: the OTLP transport; only `http/json` is supported (what the gateway always sends), and any other value stops start-up.',
  },
  OTEL_SERVICE_NAME: { schema: z.string().min(1), default: 'bff-gateway', description: 'OpenTelemetry: `service.name` of the gateway\'s spans.' },
  OTEL_RESOURCE_ATTRIBUTES: { schema: z.string(), default: '', description: 'OpenTelemetry: more resource attributes, `key=value` pairs separated by commas (`deployment.environment=prod`).' },
  OTEL_TRACES_SAMPLER: {
    schema: z.enum(['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio']),
    default: 'parentbased_always_on',
    description: 'OpenTelemetry sampler: `always_on`, `always_off`, `traceidratio`, or the `parentbased_` form of each (the parent is only ever a trusted one: see `TRACING_TRUST_INCOMING`).',
  },
  OTEL_TRACES_SAMPLER_ARG: { schema: z.coerce.number().min(0, 'must be between 0 and 1').max(1, 'must be between 0 and 1'), default: '1', description: 'OpenTelemetry: the ratio for the `traceidratio` samplers, 0 to 1.' },
  OTEL_SDK_DISABLED: { schema: bool, default: 'false', description: 'OpenTelemetry: `true` turns tracing off whatever else is set.' },
  TRACING_TRUST_INCOMING: {
    schema: bool,
    default: 'false',
    description:
      'An incoming `traceparent` (and `tracestate`) becomes the parent of the gateway\'s request span. By default it is only linked, since any browser can send one; it is never forwarded to upstreams either way (the gateway sends its own).',
  },

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
