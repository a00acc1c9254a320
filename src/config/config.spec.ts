import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, loadServerAddress, type Environment } from './config.js';
import { variables, type VariableSpec } from './config.schema.js';

/** What a route holds when it sets nothing but prefix and target. */
const ROUTE_DEFAULTS = {
  stripPrefix: false,
  passCookies: false,
  methods: undefined,
  timeoutS: 30,
  token: 'user',
  anonymous: false,
  audience: undefined,
  resource: [],
  scope: undefined,
  exchange: false,
};

const valid: Environment = {
  OIDC_ISSUER: 'https://op.example.com',
  OIDC_CLIENT_ID: 'client',
  OIDC_CLIENT_SECRET: 'secret',
  SESSION_SECRET: 'a'.repeat(32),
  UPSTREAM_URL: 'http://api:8080',
};

function problemsOf(env: Environment): readonly string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies the documented defaults to a minimal environment', () => {
    const config = loadConfig(valid);
    expect(config.server).toEqual({ port: 3000, host: '0.0.0.0', publicUrl: 'http://localhost:3000', publicOrigin: 'http://localhost:3000', workers: 1 });
    expect(config.oidc.redirectUri).toBe('http://localhost:3000/auth/callback');
    expect(config.oidc.clientAuth.method).toBe('client_secret_basic');
    expect(config.oidc).toMatchObject({ profile: 'none', par: 'auto', dpop: false, requireIssParameter: false });
    expect(config.oidc.scopes).toEqual(['profile', 'email', 'offline_access']);
    expect(config.session.cookie).toEqual({ name: '__Host-bff-session', secure: true });
    expect(config.proxy.routes).toEqual([{ ...ROUTE_DEFAULTS, prefix: '/api', target: 'http://api:8080' }]);
    expect(config.proxy.csrfHeader).toBe('x-csrf');
  });

  it('keeps front-channel logout off and checks WebSockets every 10 s unless told otherwise', () => {
    expect(loadConfig(valid).oidc.frontchannelLogout).toBe(false);
    expect(loadConfig(valid).session.websocketCheckS).toBe(10);
    const config = loadConfig({ ...valid, OIDC_FRONTCHANNEL_LOGOUT: 'true', SESSION_WEBSOCKET_CHECK_S: '1' });
    expect(config.oidc.frontchannelLogout).toBe(true);
    expect(config.session.websocketCheckS).toBe(1);
  });

  it('refuses a WebSocket check interval beyond 30 s and a front-channel switch that is not a boolean', () => {
    expect(problemsOf({ ...valid, SESSION_WEBSOCKET_CHECK_S: '31', OIDC_FRONTCHANNEL_LOGOUT: 'yes' })).toEqual([
      'OIDC_FRONTCHANNEL_LOGOUT: must be true or false',
      'SESSION_WEBSOCKET_CHECK_S: must be at most 30 seconds',
    ]);
  });

  it('reads WORKERS as a number, or as the container\'s CPUs for auto', () => {
    const shared = { ...valid, SESSION_STORE: 'redis', REDIS_URL: 'redis://redis:6379', METRICS_PORT: '9464' };
    expect(loadConfig({ ...shared, WORKERS: '3' }).server.workers).toBe(3);
    expect(loadConfig({ ...shared, WORKERS: 'auto' }, () => 4).server.workers).toBe(4);
    expect(loadConfig({ ...valid, WORKERS: 'auto' }, () => 1).server.workers).toBe(1);
  });

  it('refuses WORKERS that is neither auto nor a whole number of at least 1', () => {
    for (const bad of ['0', '-2', '1.5', 'all', '1000']) {
      expect(problemsOf({ ...valid, WORKERS: bad })).toEqual(['WORKERS: must be auto or a whole number from 1 to 999']);
    }
  });

  it('requires the Redis store and METRICS_PORT for more than one worker, one line each', () => {
    expect(problemsOf({ ...valid, WORKERS: '2' })).toEqual([
      'WORKERS: WORKERS=2 requires SESSION_STORE=redis, which the workers share',
      'WORKERS: WORKERS=2 requires METRICS_PORT, where the primary serves /metrics, /healthz and /readyz for all workers',
    ]);
    expect(() => loadConfig({ ...valid, WORKERS: 'auto', SESSION_STORE: 'redis', REDIS_URL: 'redis://redis:6379' }, () => 2)).toThrow(
      'WORKERS: WORKERS=auto (2 CPUs) requires METRICS_PORT, where the primary serves /metrics, /healthz and /readyz for all workers',
    );
  });

  it('applies the connection limits\' documented defaults and reads overrides', () => {
    expect(loadConfig(valid).connections).toEqual({ headersTimeoutS: 10, requestTimeoutS: 30, keepAliveTimeoutS: 5, max: 10000, maxPerClient: 256 });
    const custom = loadConfig({ ...valid, SERVER_HEADERS_TIMEOUT_S: '2', SERVER_REQUEST_TIMEOUT_S: '0', SERVER_KEEP_ALIVE_TIMEOUT_S: '65', SERVER_MAX_CONNECTIONS: '500', SERVER_MAX_CONNECTIONS_PER_CLIENT: '20' });
    expect(custom.connections).toEqual({ headersTimeoutS: 2, requestTimeoutS: 0, keepAliveTimeoutS: 65, max: 500, maxPerClient: 20 });
  });

  it('names bad connection limits, one line each', () => {
    const problems = problemsOf({ ...valid, SERVER_HEADERS_TIMEOUT_S: '0', SERVER_MAX_CONNECTIONS: 'many', SERVER_MAX_CONNECTIONS_PER_CLIENT: '0' });
    expect(problems.map((p) => p.split(':')[0])).toEqual(['SERVER_HEADERS_TIMEOUT_S', 'SERVER_MAX_CONNECTIONS', 'SERVER_MAX_CONNECTIONS_PER_CLIENT']);
  });

  it('returns a frozen object', () => {
    const config = loadConfig(valid);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.oidc.scopes)).toBe(true);
  });

  it('reports a missing issuer and a short secret at once, one line each, without echoing the secret', () => {
    const problems = problemsOf({ ...valid, OIDC_ISSUER: undefined, SESSION_SECRET: 'twelve-chars' });
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^OIDC_ISSUER: required/);
    expect(problems[1]).toBe('SESSION_SECRET: must be at least 32 characters');
    expect(problems.join('\n')).not.toContain('twelve-chars');
  });

  it('reads secrets from *_FILE, trimmed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bff-config-'));
    writeFileSync(join(dir, 'secret'), `${'s'.repeat(40)}\n`);
    const config = loadConfig({ ...valid, SESSION_SECRET: undefined, SESSION_SECRET_FILE: join(dir, 'secret') });
    expect(config.session.secrets).toEqual(['s'.repeat(40)]);
  });

  it('names an unreadable *_FILE', () => {
    expect(problemsOf({ ...valid, OIDC_CLIENT_SECRET: undefined, OIDC_CLIENT_SECRET_FILE: '/nonexistent/secret' })).toEqual([
      'OIDC_CLIENT_SECRET_FILE: cannot read the file /nonexistent/secret',
    ]);
  });

  it('splits SESSION_SECRET into rotation keys, each at least 32 characters', () => {
    expect(loadConfig({ ...valid, SESSION_SECRET: `${'a'.repeat(32)},${'b'.repeat(32)}` }).session.secrets).toHaveLength(2);
    expect(problemsOf({ ...valid, SESSION_SECRET: `${'a'.repeat(32)},short` })).toEqual(['SESSION_SECRET: must be at least 32 characters']);
  });

  it('refuses a plain-http public origin that is not loopback unless SESSION_COOKIE_INSECURE=true', () => {
    expect(problemsOf({ ...valid, PUBLIC_URL: 'http://gateway.internal' })[0]).toMatch(/^PUBLIC_URL: must be https or a loopback host/);
    const config = loadConfig({ ...valid, PUBLIC_URL: 'http://gateway.internal', SESSION_COOKIE_INSECURE: 'true' });
    expect(config.session.cookie).toEqual({ name: 'bff-session', secure: false });
    expect(config.warnings[0]).toMatch(/SESSION_COOKIE_INSECURE/);
  });

  it.each(['http://127.0.0.1:3000', 'http://[::1]:3000', 'https://app.example.com'])('gives %s the __Host- Secure cookie', (publicUrl) => {
    expect(loadConfig({ ...valid, PUBLIC_URL: publicUrl }).session.cookie).toEqual({ name: '__Host-bff-session', secure: true });
  });

  it('refuses a plain-http issuer unless it is loopback', () => {
    expect(problemsOf({ ...valid, OIDC_ISSUER: 'http://op.example.com' })).toEqual(['OIDC_ISSUER: must be https (plain http is allowed only for loopback hosts)']);
    expect(loadConfig({ ...valid, OIDC_ISSUER: 'http://127.0.0.1:4000' }).warnings).toHaveLength(1);
  });

  it('refuses HMAC and none in the algorithm allow-list', () => {
    expect(problemsOf({ ...valid, OIDC_ID_TOKEN_ALGS: 'RS256,HS256,none' })).toHaveLength(2);
  });

  it('requires UPSTREAM_URL unless PROXY_ROUTES is set, and orders routes longest prefix first', () => {
    expect(problemsOf({ ...valid, UPSTREAM_URL: undefined })[0]).toMatch(/^UPSTREAM_URL: required unless PROXY_ROUTES/);
    const config = loadConfig({
      ...valid,
      UPSTREAM_URL: undefined,
      PROXY_ROUTES: '[{"prefix":"/api","target":"http://api:8080"},{"prefix":"/api/orders/","target":"http://orders:8080","stripPrefix":true}]',
    });
    expect(config.proxy.routes).toEqual([
      { ...ROUTE_DEFAULTS, prefix: '/api/orders', target: 'http://orders:8080', stripPrefix: true },
      { ...ROUTE_DEFAULTS, prefix: '/api', target: 'http://api:8080' },
    ]);
  });

  it('names malformed PROXY_ROUTES', () => {
    expect(problemsOf({ ...valid, PROXY_ROUTES: 'not json' })).toEqual(['PROXY_ROUTES: must be a JSON array of route objects ({"prefix","target", ...})']);
    expect(problemsOf({ ...valid, PROXY_ROUTES: '[{"prefix":"/admin","target":"http://a:1"}]' })).toEqual(['PROXY_ROUTES[0].prefix: "/admin" must be /api or below it']);
  });

  it('parses OIDC_EXTRA_AUTH_PARAMS and refuses protocol parameters in it', () => {
    expect(loadConfig({ ...valid, OIDC_EXTRA_AUTH_PARAMS: 'audience=https://api.example.com&acr_values=mfa' }).oidc.extraAuthParams).toEqual({
      audience: 'https://api.example.com',
      acr_values: 'mfa',
    });
    expect(problemsOf({ ...valid, OIDC_EXTRA_AUTH_PARAMS: 'state=x' })).toEqual(['OIDC_EXTRA_AUTH_PARAMS: "state" is set by the gateway and cannot be overridden']);
  });

  it('refuses protocol parameters in OIDC_LOGIN_PARAMS_ALLOWED and a max_age that is not whole seconds', () => {
    expect(loadConfig({ ...valid, OIDC_LOGIN_PARAMS_ALLOWED: 'kc_idp_hint, ui_locales' }).oidc.loginParamsAllowed).toEqual(['kc_idp_hint', 'ui_locales']);
    expect(problemsOf({ ...valid, OIDC_LOGIN_PARAMS_ALLOWED: 'kc_idp_hint,redirect_uri,max_age' })).toEqual([
      'OIDC_LOGIN_PARAMS_ALLOWED: "redirect_uri" is a protocol parameter and cannot come from the browser',
      'OIDC_LOGIN_PARAMS_ALLOWED: "max_age" is a protocol parameter and cannot come from the browser',
    ]);
    expect(problemsOf({ ...valid, OIDC_EXTRA_AUTH_PARAMS: 'max_age=soon' })).toEqual(['OIDC_EXTRA_AUTH_PARAMS: max_age must be a whole number of seconds']);
    expect(loadConfig({ ...valid, OIDC_EXTRA_AUTH_PARAMS: 'max_age=300' }).oidc.maxAgeS).toBe(300);
    expect(problemsOf({ ...valid, OIDC_LOGIN_PARAMS_ALLOWED: 'acr_values' })).toEqual([
      'OIDC_LOGIN_PARAMS_ALLOWED: "acr_values" is checked, not forwarded: list the values /auth/login may ask for in OIDC_ACR_VALUES_ALLOWED',
    ]);
  });

  it('reads OIDC_ACR_VALUES_ALLOWED (empty by default) and refuses a value a header or query could not carry', () => {
    expect(loadConfig(valid).oidc.acrValuesAllowed).toEqual([]);
    expect(loadConfig({ ...valid, OIDC_ACR_VALUES_ALLOWED: 'urn:example:mfa, phrh' }).oidc.acrValuesAllowed).toEqual(['urn:example:mfa', 'phrh']);
    for (const bad of ['a b', 'a"b', 'a\\b', 'x'.repeat(129)]) {
      expect(problemsOf({ ...valid, OIDC_ACR_VALUES_ALLOWED: bad })).toEqual([expect.stringMatching(/^OIDC_ACR_VALUES_ALLOWED(\.0)?: must be ACR values/)]);
    }
  });

  it('requires OIDC_ALLOWED_TENANTS for Entra ID\'s multi-tenant issuers, and takes tenant ids only', () => {
    const common = { ...valid, OIDC_ISSUER: 'https://login.microsoftonline.com/common/v2.0' };
    expect(problemsOf(common)).toEqual([expect.stringMatching(/^OIDC_ALLOWED_TENANTS: required for a multi-tenant Entra ID issuer/)]);
    expect(loadConfig({ ...common, OIDC_ALLOWED_TENANTS: 'aaaa-1,bbbb-2' }).oidc.allowedTenants).toEqual(['aaaa-1', 'bbbb-2']);
    expect(problemsOf({ ...valid, OIDC_ALLOWED_TENANTS: 'a/b' })).toEqual([expect.stringMatching(/^OIDC_ALLOWED_TENANTS: must be tenant ids/)]);
  });

  it('reads the end-session overrides (Auth0\'s /v2/logout and returnTo)', () => {
    expect(loadConfig(valid).oidc).toMatchObject({ endSessionUrl: undefined, endSessionRedirectParam: 'post_logout_redirect_uri', userinfo: false });
    const auth0 = loadConfig({ ...valid, OIDC_END_SESSION_URL: 'https://t.auth0.com/v2/logout', OIDC_END_SESSION_REDIRECT_PARAM: 'returnTo' }).oidc;
    expect(auth0).toMatchObject({ endSessionUrl: 'https://t.auth0.com/v2/logout', endSessionRedirectParam: 'returnTo' });
    expect(problemsOf({ ...valid, OIDC_END_SESSION_REDIRECT_PARAM: 'a b' })).toEqual(['OIDC_END_SESSION_REDIRECT_PARAM: must be a query parameter name']);
  });

  it('names bad numbers and enums', () => {
    expect(problemsOf({ ...valid, PORT: 'eighty', SESSION_STORE: 'mongo' }).map((p) => p.split(':')[0])).toEqual(['PORT', 'SESSION_STORE']);
  });

  it('caps OIDC_DISCOVERY_TIMEOUT_S at 30 s (the refresh lock outlives two provider calls)', () => {
    expect(problemsOf({ ...valid, OIDC_DISCOVERY_TIMEOUT_S: '31' })).toEqual(['OIDC_DISCOVERY_TIMEOUT_S: must be at most 30 seconds']);
    expect(loadConfig({ ...valid, OIDC_DISCOVERY_TIMEOUT_S: '30' }).oidc.httpTimeoutS).toBe(30);
  });

  it('warns about the memory store and metrics on the public port in production only', () => {
    expect(loadConfig({ ...valid, NODE_ENV: 'production' }).warnings).toEqual([expect.stringMatching(/^memory session store/), expect.stringMatching(/^METRICS_PORT is unset/)]);
    expect(loadConfig({ ...valid, NODE_ENV: 'production', SESSION_STORE: 'redis', REDIS_URL: 'redis://r:6379', METRICS_PORT: '9464' }).warnings).toEqual([]);
    expect(loadConfig(valid).warnings).toEqual([]);
  });

  it('requires REDIS_URL, sentinels or cluster nodes for the redis store', () => {
    expect(problemsOf({ ...valid, SESSION_STORE: 'redis' })).toEqual(['REDIS_URL: required when SESSION_STORE=redis (or REDIS_SENTINELS with REDIS_SENTINEL_NAME, or REDIS_CLUSTER_NODES)']);
  });

  describe('Redis Sentinel and Cluster', () => {
    const redis = { ...valid, SESSION_STORE: 'redis' };

    it('reads sentinels and the primary name, IPv6 included', () => {
      const config = loadConfig({ ...redis, REDIS_SENTINELS: 'sentinel-a:26379, 10.0.0.2:26380,[::1]:26381', REDIS_SENTINEL_NAME: 'sessions' });
      expect(config.redis.connection).toEqual({
        sentinels: [
          { host: 'sentinel-a', port: 26379 },
          { host: '10.0.0.2', port: 26380 },
          { host: '::1', port: 26381 },
        ],
        sentinelName: 'sessions',
      });
    });

    it('reads cluster nodes', () => {
      expect(loadConfig({ ...redis, REDIS_CLUSTER_NODES: 'node-1:7000,node-2:7001' }).redis.connection).toEqual({ clusterNodes: [{ host: 'node-1', port: 7000 }, { host: 'node-2', port: 7001 }] });
    });

    it('keeps a REDIS_URL as the connection', () => {
      expect(loadConfig({ ...redis, REDIS_URL: 'redis://r:6379' }).redis.connection).toEqual({ url: 'redis://r:6379' });
    });

    it.each([
      [{ REDIS_URL: 'redis://r:6379', REDIS_CLUSTER_NODES: 'n:7000' }, 'REDIS_CLUSTER_NODES: set only one of REDIS_URL, REDIS_SENTINELS and REDIS_CLUSTER_NODES (got REDIS_URL and REDIS_CLUSTER_NODES)'],
      [{ REDIS_SENTINELS: 's:26379', REDIS_SENTINEL_NAME: 'm', REDIS_CLUSTER_NODES: 'n:7000' }, 'REDIS_CLUSTER_NODES: set only one of REDIS_URL, REDIS_SENTINELS and REDIS_CLUSTER_NODES (got REDIS_SENTINELS and REDIS_CLUSTER_NODES)'],
      [{ REDIS_SENTINELS: 's:26379' }, 'REDIS_SENTINEL_NAME: required with REDIS_SENTINELS (the name the sentinels monitor the primary under)'],
      [{ REDIS_URL: 'redis://r:6379', REDIS_SENTINEL_NAME: 'm' }, 'REDIS_SENTINEL_NAME: only used with REDIS_SENTINELS'],
      [{ REDIS_CLUSTER_NODES: 'n:7000', REDIS_KEY_PREFIX: '{bff}:' }, 'REDIS_KEY_PREFIX: must not contain { or } with REDIS_CLUSTER_NODES'],
      [{ REDIS_CLUSTER_NODES: 'node-without-port' }, 'REDIS_CLUSTER_NODES: must be a comma-separated list of host:port (IPv6 as [address]:port)'],
      [{ REDIS_SENTINELS: 's:70000', REDIS_SENTINEL_NAME: 'm' }, 'REDIS_SENTINELS: must be a comma-separated list of host:port (IPv6 as [address]:port)'],
      [{ REDIS_CLUSTER_NODES: ' , ' }, 'REDIS_CLUSTER_NODES: must name at least one host:port'],
    ])('refuses %j in one line', (env, problem) => {
      expect(problemsOf({ ...redis, ...env })).toEqual([problem]);
    });
  });

  it('reads the SPA\'s immutable folders (default /assets/) and its Content-Security-Policy', () => {
    expect(loadConfig(valid).spa).toMatchObject({ immutablePaths: ['/assets/'], csp: undefined });
    const custom = loadConfig({ ...valid, SPA_IMMUTABLE_PATHS: '/assets/, /static/js/', SPA_CSP: "default-src 'self'" });
    expect(custom.spa).toMatchObject({ immutablePaths: ['/assets/', '/static/js/'], csp: "default-src 'self'" });
  });

  it('names SPA folders that are not folder paths and a Content-Security-Policy that would break the header', () => {
    const problems = problemsOf({ ...valid, SPA_IMMUTABLE_PATHS: '/assets', SPA_CSP: "default-src 'self'\r\nSet-Cookie: x=1" });
    expect(problems.map((p) => p.split(':')[0])).toEqual(['SPA_IMMUTABLE_PATHS', 'SPA_CSP']);
    expect(problemsOf({ ...valid, SPA_IMMUTABLE_PATHS: '/' })).toHaveLength(1);
  });
});

describe('client authentication and OIDC_PROFILE', () => {
  const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const keyed: Environment = { ...valid, OIDC_CLIENT_SECRET: undefined, OIDC_TOKEN_ENDPOINT_AUTH_METHOD: 'private_key_jwt', OIDC_CLIENT_PRIVATE_KEY: pem };
  const fapi2: Environment = { ...valid, OIDC_CLIENT_SECRET: undefined, OIDC_PROFILE: 'fapi2', OIDC_CLIENT_PRIVATE_KEY: pem };

  it('requires OIDC_CLIENT_SECRET only for the secret methods, and the key for private_key_jwt', () => {
    expect(problemsOf({ ...valid, OIDC_CLIENT_SECRET: undefined })).toEqual(['OIDC_CLIENT_SECRET: required with OIDC_TOKEN_ENDPOINT_AUTH_METHOD=client_secret_basic (or OIDC_CLIENT_SECRET_FILE)']);
    expect(problemsOf({ ...keyed, OIDC_CLIENT_PRIVATE_KEY: undefined })).toEqual(['OIDC_CLIENT_PRIVATE_KEY: required with OIDC_TOKEN_ENDPOINT_AUTH_METHOD=private_key_jwt (or OIDC_CLIENT_PRIVATE_KEY_FILE)']);
    const auth = loadConfig(keyed).oidc.clientAuth;
    expect(auth.method === 'private_key_jwt' ? [auth.assertionAudience, auth.keys.map((k) => k.alg)] : undefined).toEqual(['issuer', ['ES256']]);
  });

  it('warns about a credential that is set but unused by the method', () => {
    expect(loadConfig({ ...keyed, OIDC_CLIENT_SECRET: 'left-over' }).warnings).toContain('OIDC_CLIENT_SECRET is set but unused: the gateway authenticates with private_key_jwt');
    expect(loadConfig({ ...valid, OIDC_CLIENT_PRIVATE_KEY: pem }).warnings).toContain('OIDC_CLIENT_PRIVATE_KEY is set but unused: OIDC_TOKEN_ENDPOINT_AUTH_METHOD is client_secret_basic');
    expect(loadConfig(keyed).warnings).toEqual(loadConfig(valid).warnings);
  });

  it('reads the key from OIDC_CLIENT_PRIVATE_KEY_FILE and names a bad one without echoing it', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'bff-key-')), 'key.pem');
    writeFileSync(file, pem);
    expect(loadConfig({ ...keyed, OIDC_CLIENT_PRIVATE_KEY: undefined, OIDC_CLIENT_PRIVATE_KEY_FILE: file }).oidc.clientAuth.method).toBe('private_key_jwt');
    const garbled = pem.replace(/\n[A-Za-z0-9+/]{10}/, '\nAAAAAAAAAA');
    const problems = problemsOf({ ...keyed, OIDC_CLIENT_PRIVATE_KEY: garbled });
    expect(problems).toEqual(['OIDC_CLIENT_PRIVATE_KEY: key 1 cannot be read as a private key']);
    expect(problems.join('')).not.toContain(garbled.split('\n')[2] ?? 'unreachable');
  });

  it('OIDC_PROFILE=fapi2 sets PAR always, private_key_jwt, DPoP, the iss parameter and FAPI ID-token algorithms', () => {
    const { oidc } = loadConfig(fapi2);
    expect(oidc).toMatchObject({ profile: 'fapi2', par: 'always', dpop: true, requireIssParameter: true, idTokenAlgs: ['PS256', 'ES256', 'EdDSA'] });
    expect(oidc.clientAuth.method).toBe('private_key_jwt');
    expect(problemsOf({ ...fapi2, OIDC_CLIENT_PRIVATE_KEY: undefined })).toEqual(['OIDC_CLIENT_PRIVATE_KEY: required with OIDC_PROFILE=fapi2 (private_key_jwt) (or OIDC_CLIENT_PRIVATE_KEY_FILE)']);
  });

  it('accepts settings that agree with OIDC_PROFILE=fapi2', () => {
    const config = loadConfig({ ...fapi2, OIDC_PAR: 'always', OIDC_TOKEN_ENDPOINT_AUTH_METHOD: 'private_key_jwt', OIDC_DPOP: 'true', OIDC_ID_TOKEN_ALGS: 'ES256', OIDC_CLIENT_SIGNING_ALG: 'ES256', OIDC_CLIENT_ASSERTION_AUDIENCE: 'issuer' });
    expect(config.oidc.idTokenAlgs).toEqual(['ES256']);
  });

  it.each([
    [{ OIDC_PAR: 'never' }, 'OIDC_PAR: must be always under OIDC_PROFILE=fapi2 (got never)'],
    [{ OIDC_PAR: 'auto' }, 'OIDC_PAR: must be always under OIDC_PROFILE=fapi2 (got auto)'],
    [{ OIDC_TOKEN_ENDPOINT_AUTH_METHOD: 'client_secret_basic', OIDC_CLIENT_SECRET: 's' }, 'OIDC_TOKEN_ENDPOINT_AUTH_METHOD: must be private_key_jwt under OIDC_PROFILE=fapi2 (got client_secret_basic)'],
    [{ OIDC_DPOP: 'false' }, 'OIDC_DPOP: must be true under OIDC_PROFILE=fapi2 (got false)'],
    [{ OIDC_ID_TOKEN_ALGS: 'RS256,ES256' }, 'OIDC_ID_TOKEN_ALGS: must be among PS256, ES256, EdDSA under OIDC_PROFILE=fapi2 (got RS256)'],
    [{ OIDC_CLIENT_ASSERTION_AUDIENCE: 'token_endpoint' }, 'OIDC_CLIENT_ASSERTION_AUDIENCE: must be issuer under OIDC_PROFILE=fapi2 (got token_endpoint)'],
    [{ OIDC_CLIENT_SIGNING_ALG: 'RS256', OIDC_CLIENT_PRIVATE_KEY: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() }, 'OIDC_CLIENT_SIGNING_ALG: must be PS256, ES256 or EdDSA under OIDC_PROFILE=fapi2 (got RS256)'],
    [
      { OIDC_CLIENT_PRIVATE_KEY: generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() },
      'OIDC_CLIENT_PRIVATE_KEY: the signing key\'s algorithm ES384 is not allowed under OIDC_PROFILE=fapi2 (PS256, ES256 or EdDSA: an RSA, P-256 or Ed25519 key)',
    ],
  ])('refuses %j under OIDC_PROFILE=fapi2 in one line', (setting, line) => {
    expect(problemsOf({ ...fapi2, ...setting })).toEqual([line]);
  });

  it('names every contradicting setting at once, one line each', () => {
    expect(problemsOf({ ...fapi2, OIDC_PAR: 'never', OIDC_DPOP: 'false', OIDC_ID_TOKEN_ALGS: 'RS256' })).toHaveLength(3);
  });
});

/** What loadConfig makes of an environment: the config, or the problems it names. */
function outcome(env: Environment): unknown {
  try {
    return loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return { problems: error.problems };
    throw error;
  }
}

/**
 * Values to try as a stand-in default, in environments where a variable can show its effect (the cookie
 * switch matters only on a plain-http origin): the first pair the schema accepts and that changes the outcome is used.
 */
const CANDIDATES = ['1', '2', 'true', 'production', 'debug', 'pretty', 'client_secret_post', 'redis', '/static/', 'always_off', '0', 'svc', 'token_endpoint', 'never', 'fapi2'];
const PRIVATE_KEY_PEM = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
const BASES: readonly Environment[] = [
  valid,
  { ...valid, PUBLIC_URL: 'http://gateway.internal' },
  { ...valid, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector.internal:4318' },
  { ...valid, OIDC_TOKEN_ENDPOINT_AUTH_METHOD: 'private_key_jwt', OIDC_CLIENT_PRIVATE_KEY: PRIVATE_KEY_PEM },
];

/** Runs `body` while the schema's default of `spec` is `value`. */
function withSchemaDefault<T>(spec: VariableSpec, value: string, body: () => T): T {
  const original = Object.getOwnPropertyDescriptor(spec, 'default');
  Object.defineProperty(spec, 'default', { value, configurable: true, enumerable: true, writable: true });
  try {
    return body();
  } finally {
    if (original !== undefined) Object.defineProperty(spec, 'default', original);
  }
}

const defaulted = Object.entries(variables).flatMap(([name, entry]) => {
  const spec: VariableSpec = entry;
  return spec.default === undefined ? [] : [{ name, spec }];
});

describe('schema defaults, written once', () => {
  it.each(defaulted)('$name: unset, empty and set to its schema default mean the same', ({ name, spec }) => {
    const unset = outcome({ ...valid, [name]: undefined });
    expect(outcome({ ...valid, [name]: '' })).toEqual(unset);
    expect(outcome({ ...valid, [name]: spec.default })).toEqual(unset);
  });

  // A copy of a default anywhere in loadConfig (a `?? literal`, a hard-coded value) would not follow the schema.
  it.each(defaulted)('$name: changing the schema default changes what an unset variable means', ({ name, spec }) => {
    const pairs = BASES.flatMap((base) => CANDIDATES.map((value) => ({ base, value })));
    const found = pairs.find(({ base, value }) => spec.schema.safeParse(value).success && !isEqual(outcome({ ...base, [name]: value }), outcome({ ...base, [name]: undefined })));
    if (found === undefined) throw new Error(`${name}: no candidate value changes the config; add one to CANDIDATES or BASES`);
    const { base, value } = found;
    expect(withSchemaDefault(spec, value, () => outcome({ ...base, [name]: undefined }))).toEqual(outcome({ ...base, [name]: value }));
  });
});

describe('loadServerAddress', () => {
  it('gives the address loadConfig gives, from the same schema defaults', () => {
    const { port, host } = loadConfig(valid).server;
    expect(loadServerAddress({})).toEqual({ port, host });
    expect(withSchemaDefault(variables.PORT, '8081', () => loadServerAddress({}))).toEqual({ port: 8081, host });
  });

  it('reads PORT and HOST and ignores every other variable, required ones included', () => {
    expect(loadServerAddress({ PORT: '8080', HOST: '::', OIDC_ISSUER: 'not a url' })).toEqual({ port: 8080, host: '::' });
  });

  it('names a bad PORT as loadConfig does', () => {
    expect(() => loadServerAddress({ PORT: '70000' })).toThrow(new ConfigError(['PORT: must be a port number (1-65535)']));
  });
});

function isEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
