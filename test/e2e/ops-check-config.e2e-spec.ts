import { runGatewayToExit } from '../support/gateway-process.js';
import { startOp, type RunningOp } from '../support/op.js';
import { freePort } from '../support/ports.js';
import { startRedis, type RunningRedis } from '../support/redis.js';
import { testEnvironment } from '../support/test-env.js';

const CLIENT_SECRET = 'check-config-client-secret-value';
const SESSION_SECRET = 'check-config-session-secret-0123456789';
const REDIS_PASSWORD = 'check-config-redis-password';

describe('node dist/main.js --check-config', () => {
  let op: RunningOp;
  let redis: RunningRedis;

  beforeAll(async () => {
    op = await startOp({ gatewayUrl: `http://127.0.0.1:${await freePort()}`, clientSecret: CLIENT_SECRET });
    redis = await startRedis({ requirePass: REDIS_PASSWORD });
  });
  afterAll(async () => {
    await redis.close();
    await op.stop();
  });

  const environment = (overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> => ({
    ...testEnvironment(),
    OIDC_ISSUER: op.issuer,
    OIDC_CLIENT_ID: op.clientId,
    OIDC_CLIENT_SECRET: CLIENT_SECRET,
    SESSION_SECRET,
    SESSION_STORE: 'redis',
    REDIS_URL: redis.url,
    REDIS_PASSWORD,
    ...overrides,
  });
  const check = (overrides: Record<string, string | undefined> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    runGatewayToExit(environment(overrides), ['--check-config']);

  it('exits 0 after loading discovery and JWKS and a round trip through Redis, with a one-screen summary without secrets', async () => {
    const result = await check();
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^ {2}ok {4}provider +discovery document and JWKS loaded/m);
    expect(result.stdout).toMatch(/^ {2}ok {4}session store +redis store: write, read and delete of a probe session succeeded$/m);
    expect(result.stdout).toContain('result: ok, ready to deploy');
    expect(result.stdout).toContain(`provider   ${op.issuer}/, client ${op.clientId} (client_secret_basic, client secret set)`);
    expect(result.stdout).toContain('REDIS_PASSWORD set');
    expect(result.stdout.trimEnd().split('\n').length).toBeLessThanOrEqual(24);
    for (const secret of [CLIENT_SECRET, SESSION_SECRET, REDIS_PASSWORD]) expect(result.stdout + result.stderr).not.toContain(secret);
  });

  it('obtains each client route\'s token once and reports per route, failing on a refused one', async () => {
    const routes = [
      { prefix: '/api/jobs', target: 'http://127.0.0.1:9', token: 'client', resource: op.audience, scope: 'api' },
      { prefix: '/api/broken', target: 'http://127.0.0.1:9', token: 'client', resource: 'urn:bff-test:unregistered' },
      { prefix: '/api', target: 'http://127.0.0.1:9' },
    ];
    const result = await check({ UPSTREAM_URL: undefined, PROXY_ROUTES: JSON.stringify(routes) });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^ {2}FAIL {2}client routes +\/api\/broken: The provider refused the client_credentials grant \(invalid_target\)\.$/m);
    expect(result.stdout).toMatch(/^ +\/api\/jobs: client-credentials token obtained \(expires in \d+ s\)$/m);
    expect(result.stdout).toContain('result: 1 check(s) failed');
    const good = await check({ UPSTREAM_URL: undefined, PROXY_ROUTES: JSON.stringify([routes[0], routes[2]]) });
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(/^ {2}ok {4}client routes +\/api\/jobs: client-credentials token obtained/m);
  });

  it('hides credentials carried in REDIS_URL and upstream URLs', async () => {
    const url = new URL(redis.url);
    url.password = REDIS_PASSWORD;
    const result = await check({ REDIS_URL: url.href, REDIS_PASSWORD: undefined, UPSTREAM_URL: 'http://api-user:api-password-value@127.0.0.1:9' });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('(credentials hidden)');
    expect(result.stdout).not.toContain(REDIS_PASSWORD);
    expect(result.stdout).not.toContain('api-password-value');
  });

  it('checks the memory store too', async () => {
    const result = await check({ SESSION_STORE: 'memory', REDIS_URL: undefined, REDIS_PASSWORD: undefined });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^ {2}ok {4}session store +memory store: write, read and delete/m);
  });

  it('exits 1 naming the provider when discovery cannot be loaded', async () => {
    const result = await check({ OIDC_ISSUER: `http://127.0.0.1:${await freePort()}` });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^ {2}FAIL {2}provider +cannot load discovery and JWKS: The identity provider did not answer at http:\/\/127\.0\.0\.1:\d+\/\.well-known\/openid-configuration\. \(fetch failed: .*ECONNREFUSED/m);
    expect(result.stdout).toMatch(/^ {2}ok {4}session store/m);
    expect(result.stdout).toContain('result: 1 check(s) failed');
  });

  it('exits 1 when the discovery document names another issuer', async () => {
    const result = await check({ OIDC_ISSUER: op.issuer.replace('127.0.0.1', 'localhost') });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`The discovery document names issuer ${op.issuer}, not ${op.issuer.replace('127.0.0.1', 'localhost')}.`);
  });

  it('exits 1 naming the session store when Redis refuses the password or does not answer', async () => {
    const refused = await check({ REDIS_PASSWORD: 'wrong-password' });
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/^ {2}FAIL {2}session store +redis store: /m);
    expect(refused.stdout).not.toContain('wrong-password');

    const down = await check({ REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
    expect(down.code).toBe(1);
    expect(down.stdout).toMatch(/^ {2}FAIL {2}session store +redis store: .*ECONNREFUSED/m);
  });

  it('exits 78 with one line per problem when the configuration is invalid, before reaching anything', async () => {
    const result = await check({ SESSION_SECRET: 'short', OIDC_ISSUER: undefined });
    expect(result.code).toBe(78);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^config error: OIDC_ISSUER: required/), 'config error: SESSION_SECRET: must be at least 32 characters']);
  });

  it('refuses an unknown option with exit 64 instead of starting the gateway', async () => {
    const result = await runGatewayToExit(environment(), ['--check-conifg']);
    expect(result.code).toBe(64);
    expect(result.stderr).toContain('unknown arguments: --check-conifg');
    expect(result.stderr).toContain('usage: node dist/main.js [--check-config]');
  });
});
