import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, type Environment } from './config.js';

const valid: Environment = {
  OIDC_ISSUER: 'https://op.example.com',
  OIDC_CLIENT_ID: 'client',
  OIDC_CLIENT_SECRET: 'secret',
  SESSION_SECRET: 'a'.repeat(32),
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

const routesEnv = (routes: unknown[]): Environment => ({ ...valid, PROXY_ROUTES: JSON.stringify(routes) });
const api = { prefix: '/api', target: 'http://api:8080' };

function configFile(text: string, name = 'gateway.yaml'): string {
  const path = join(mkdtempSync(join(tmpdir(), 'bff-config-file-')), name);
  writeFileSync(path, text);
  return path;
}

describe('route policy in PROXY_ROUTES', () => {
  it('reads every policy key', () => {
    const [route] = loadConfig(
      routesEnv([{ ...api, methods: ['GET', 'POST'], timeoutS: 5, token: 'user-or-none', audience: 'https://api.example', resource: ['https://a.example', 'urn:b'], scope: 'read write', exchange: true }]),
    ).proxy.routes;
    expect(route).toMatchObject({ methods: ['GET', 'POST'], timeoutS: 5, token: 'user-or-none', audience: 'https://api.example', resource: ['https://a.example', 'urn:b'], scope: 'read write', exchange: true });
  });

  it('accepts none + anonymous, and a single resource as a string', () => {
    const config = loadConfig(routesEnv([{ ...api, token: 'none', anonymous: true }, { prefix: '/api/b', target: 'http://b:1', resource: 'https://b.example' }]));
    expect(config.proxy.routes.map((r) => [r.prefix, r.token, r.anonymous, r.resource])).toEqual([
      ['/api/b', 'user', false, ['https://b.example']],
      ['/api', 'none', true, []],
    ]);
  });

  it.each([
    [{ ...api, tokn: 'user' }, 'PROXY_ROUTES[0]: unknown key "tokn" (a route takes prefix, target, stripPrefix, passCookies, methods, timeoutS, token, anonymous, audience, resource, scope, exchange)'],
    [{ ...api, token: 'service' }, 'PROXY_ROUTES[0].token: must be one of user, user-or-none, client, none'],
    [{ ...api, audience: 42 }, 'PROXY_ROUTES[0].audience: expected a string'],
    [{ ...api, audience: '' }, 'PROXY_ROUTES[0].audience: must not be empty'],
    [{ ...api, scope: ['a'] }, 'PROXY_ROUTES[0].scope: expected a string'],
    [{ ...api, resource: 'not a uri' }, 'PROXY_ROUTES[0].resource: must be an absolute URI without a fragment (RFC 8707)'],
    [{ ...api, resource: ['https://a.example#x'] }, 'PROXY_ROUTES[0].resource[0]: must be an absolute URI without a fragment (RFC 8707)'],
    [{ ...api, resource: 7 }, 'PROXY_ROUTES[0].resource: expected a string or a list of strings'],
    [{ ...api, methods: 'GET' }, 'PROXY_ROUTES[0].methods: expected a list of HTTP methods'],
    [{ ...api, methods: ['get'] }, 'PROXY_ROUTES[0].methods[0]: must be an upper-case HTTP method'],
    [{ ...api, methods: ['TRACE'] }, 'PROXY_ROUTES[0].methods[0]: TRACE and CONNECT are never forwarded'],
    [{ ...api, methods: [] }, 'PROXY_ROUTES[0].methods: must list at least one method'],
    [{ ...api, timeoutS: 0 }, 'PROXY_ROUTES[0].timeoutS: must be at least 1 second'],
    [{ ...api, timeoutS: '5' }, 'PROXY_ROUTES[0].timeoutS: expected a number of seconds'],
    [{ ...api, anonymous: 'yes' }, 'PROXY_ROUTES[0].anonymous: expected true or false'],
    [{ ...api, exchange: 1 }, 'PROXY_ROUTES[0].exchange: expected true or false'],
    [{ ...api, stripPrefix: 'true' }, 'PROXY_ROUTES[0].stripPrefix: expected true or false'],
    [{ ...api, passCookies: null }, 'PROXY_ROUTES[0].passCookies: expected true or false'],
    [{ target: 'http://a:1' }, 'PROXY_ROUTES[0].prefix: required'],
    [{ prefix: '/api' }, 'PROXY_ROUTES[0].target: required'],
    [{ prefix: 'api', target: 'http://a:1' }, 'PROXY_ROUTES[0].prefix: must start with "/"'],
    [{ prefix: '/api', target: 'ftp://a' }, 'PROXY_ROUTES[0].target: must be an absolute http(s) URL'],
    ['a string', 'PROXY_ROUTES[0]: expected a route object'],
  ])('names one bad key in one line, in PROXY_ROUTES and in the config file\'s routes alike: %j', (route, line) => {
    expect(problemsOf(routesEnv([route]))).toEqual([line]);
    const file = configFile(JSON.stringify({ ...valid, routes: [route] }), 'gateway.json');
    expect(problemsOf({ CONFIG_FILE: file })).toEqual([line.replace(/^PROXY_ROUTES/, 'routes')]);
  });

  it.each([
    [{ ...api, token: 'user', anonymous: true }, 'PROXY_ROUTES[0].anonymous: only a route with "token": "none" may be anonymous (a public route carrying a token would be an open relay)'],
    [{ ...api, token: 'client', anonymous: true }, 'PROXY_ROUTES[0].anonymous: only a route with "token": "none" may be anonymous (a public route carrying a token would be an open relay)'],
    [{ ...api, token: 'user-or-none', anonymous: true }, 'PROXY_ROUTES[0].anonymous: only a route with "token": "none" may be anonymous (a public route carrying a token would be an open relay)'],
    [{ ...api, token: 'none', scope: 'x' }, 'PROXY_ROUTES[0].token: "none" carries no token, so audience, resource, scope and exchange do not apply'],
    [{ ...api, token: 'client', exchange: true, audience: 'x' }, 'PROXY_ROUTES[0].exchange: token exchange needs a user token ("token": "user" or "user-or-none")'],
    [{ ...api, exchange: true }, 'PROXY_ROUTES[0].exchange: say what to exchange for: audience, resource or scope'],
  ])('refuses a combination that cannot work: %j', (route, line) => {
    expect(problemsOf(routesEnv([route]))).toEqual([line]);
  });

  it('names every bad route at once, each by its index, rules between keys included', () => {
    expect(problemsOf(routesEnv([api, { ...api, target: 'http://b:1' }, { prefix: '/api/x', target: 'http://x:1', audience: 1 }, { prefix: '/api/y', target: 'http://y:1', anonymous: true }]))).toEqual([
      'PROXY_ROUTES[1].prefix: "/api" is listed twice',
      'PROXY_ROUTES[2].audience: expected a string',
      'PROXY_ROUTES[3].anonymous: only a route with "token": "none" may be anonymous (a public route carrying a token would be an open relay)',
    ]);
    expect(problemsOf(routesEnv([api, { ...api, target: 'http://b:1' }]))).toEqual(['PROXY_ROUTES[1].prefix: "/api" is listed twice']);
  });

  it('asks at login for every user route\'s resources and the union of scopes, not for client or exchange routes\'', () => {
    const config = loadConfig(
      routesEnv([
        { prefix: '/api/a', target: 'http://a:1', resource: ['https://a.example'], scope: 'a.read offline_access' },
        { prefix: '/api/b', target: 'http://b:1', resource: 'https://b.example', scope: 'b.read' },
        { prefix: '/api/c', target: 'http://c:1', token: 'client', resource: 'https://c.example', scope: 'c.admin' },
        { prefix: '/api/d', target: 'http://d:1', exchange: true, resource: 'https://d.example', scope: 'd.read' },
        api,
      ]),
    );
    expect(config.oidc.scopes).toEqual(['profile', 'email', 'offline_access', 'a.read', 'b.read']);
    expect(config.oidc.loginResources).toEqual(['https://a.example', 'https://b.example']);
    expect(loadConfig({ ...valid, UPSTREAM_URL: 'http://api:1' }).oidc.loginResources).toEqual([]);
  });

  it('defaults a route\'s timeout to UPSTREAM_TIMEOUT_S', () => {
    expect(loadConfig({ ...routesEnv([api]), UPSTREAM_TIMEOUT_S: '7' }).proxy.routes[0]?.timeoutS).toBe(7);
  });
});

describe('CONFIG_FILE', () => {
  const yaml = `
# the gateway's settings
OIDC_ISSUER: https://op.example.com
OIDC_CLIENT_ID: client
OIDC_CLIENT_SECRET: from-the-file
SESSION_SECRET: ${'f'.repeat(32)}
PORT: 8080
OIDC_FRONTCHANNEL_LOGOUT: true
routes:
  - prefix: /api/orders
    target: http://orders:8080
    resource: https://orders.example
  - prefix: /api
    target: http://api:8080
    token: user-or-none
`;

  it('reads every setting from a YAML file, routes as a list', () => {
    const config = loadConfig({ CONFIG_FILE: configFile(yaml) });
    expect(config.server.port).toBe(8080);
    expect(config.oidc.frontchannelLogout).toBe(true);
    expect(config.oidc.clientAuth).toEqual({ method: 'client_secret_basic', secret: 'from-the-file' });
    expect(config.proxy.routes.map((r) => [r.prefix, r.token, r.resource])).toEqual([
      ['/api/orders', 'user', ['https://orders.example']],
      ['/api', 'user-or-none', []],
    ]);
  });

  it('reads JSON too', () => {
    const json = JSON.stringify({ ...valid, routes: [api] });
    expect(loadConfig({ CONFIG_FILE: configFile(json, 'gateway.json') }).proxy.routes).toHaveLength(1);
  });

  it('lets an environment variable replace the file\'s value whole, PROXY_ROUTES included', () => {
    const config = loadConfig({ CONFIG_FILE: configFile(yaml), PORT: '9090', PROXY_ROUTES: JSON.stringify([{ prefix: '/api', target: 'http://env:1' }]) });
    expect(config.server.port).toBe(9090);
    expect(config.proxy.routes.map((r) => r.target)).toEqual(['http://env:1']);
  });

  it('lets a secret\'s _FILE in the environment replace the file\'s secret without a conflict', () => {
    const secret = configFile('from-a-mounted-secret\n', 'secret');
    expect(loadConfig({ CONFIG_FILE: configFile(yaml), OIDC_CLIENT_SECRET_FILE: secret }).oidc.clientAuth).toEqual({ method: 'client_secret_basic', secret: 'from-a-mounted-secret' });
  });

  it('names file problems by their path, one line each, never echoing a value', () => {
    const bad = `${yaml}
  - prefix: /api/x
    target: http://x:1
    audience: 42
    colour: blue
PORTT: 1
UPSTREAM_TIMEOUT_S: [1, 2]
`;
    expect(problemsOf({ CONFIG_FILE: configFile(bad) })).toEqual([
      'PORTT: unknown setting in CONFIG_FILE (its keys are the variable names and routes)',
      'UPSTREAM_TIMEOUT_S: expected a string, number or boolean',
      'routes[2].audience: expected a string',
      'routes[2]: unknown key "colour" (a route takes prefix, target, stripPrefix, passCookies, methods, timeoutS, token, anonymous, audience, resource, scope, exchange)',
    ]);
  });

  it('validates the file\'s values with the same schema as the environment\'s', () => {
    expect(problemsOf({ CONFIG_FILE: configFile(`${yaml}\nPORT: 70000\n`.replace('PORT: 8080\n', '')) })).toEqual(['PORT: must be a port number (1-65535)']);
  });

  it('names an unreadable, unparsable or misshapen file', () => {
    expect(problemsOf({ ...valid, UPSTREAM_URL: 'http://a:1', CONFIG_FILE: '/nonexistent/gateway.yaml' })).toEqual(['CONFIG_FILE: cannot read the file /nonexistent/gateway.yaml']);
    const broken = configFile('PORT: [1\nSECRET: hunter2\n');
    const [line] = problemsOf({ ...valid, UPSTREAM_URL: 'http://a:1', CONFIG_FILE: broken });
    expect(line).toMatch(/^CONFIG_FILE: .* is not valid YAML or JSON \(.* at line \d+\)$/);
    expect(line).not.toContain('hunter2');
    expect(problemsOf({ ...valid, UPSTREAM_URL: 'http://a:1', CONFIG_FILE: configFile('- a\n- b\n') })).toEqual([
      expect.stringMatching(/^CONFIG_FILE: .* must be a mapping of variable names to values$/),
    ]);
    expect(problemsOf({ ...valid, CONFIG_FILE: configFile(`routes: []\nPROXY_ROUTES: '[]'\n`) })).toContain('routes: set either routes or PROXY_ROUTES in CONFIG_FILE, not both');
  });
});
