import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runGatewayToExit, startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import { testEnvironment } from '../support/test-env.js';

describe('start-up configuration (node dist/main.js)', () => {
  it('exits 78 with one line each for a missing OIDC_ISSUER and a 12-character SESSION_SECRET, no stack trace', async () => {
    const env = { ...testEnvironment(), OIDC_ISSUER: undefined, SESSION_SECRET: 'twelve-chars' };
    const result = await runGatewayToExit(env);
    expect(result.code).toBe(78);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^config error: OIDC_ISSUER: required/);
    expect(lines[1]).toBe('config error: SESSION_SECRET: must be at least 32 characters');
    expect(result.stderr).not.toContain('twelve-chars');
    expect(result.stderr).not.toMatch(/\bat .*\.js:\d+/);
  });

  it('exits 78 naming each bad route key and file setting by its path, from CONFIG_FILE and PROXY_ROUTES alike', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bff-config-e2e-'));
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, ['UPSTREAM_TIMEOUT_S: 5', 'routes:', '  - prefix: /api', '    target: http://127.0.0.1:9', '  - prefix: /api/x', '    target: http://127.0.0.1:9', '    audience: 42', '    anonymous: true', ''].join('\n'));
    const fromFile = await runGatewayToExit({ ...testEnvironment(), UPSTREAM_URL: undefined, CONFIG_FILE: file });
    expect(fromFile.code).toBe(78);
    expect(fromFile.stderr.trim().split('\n')).toEqual(['config error: routes[1].audience: expected a string']);
    const fromEnv = await runGatewayToExit({ ...testEnvironment(), PROXY_ROUTES: JSON.stringify([{ prefix: '/api', target: 'http://127.0.0.1:9', token: 'client', anonymous: true }]) });
    expect(fromEnv.code).toBe(78);
    expect(fromEnv.stderr.trim().split('\n')).toEqual([
      'config error: PROXY_ROUTES[0].anonymous: only a route with "token": "none" may be anonymous (a public route carrying a token would be an open relay)',
    ]);
  });

  it('exits 78 with one line per setting that contradicts OIDC_PROFILE=fapi2, the private key never echoed', async () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const env = {
      ...testEnvironment(),
      OIDC_PROFILE: 'fapi2',
      OIDC_CLIENT_PRIVATE_KEY: key,
      OIDC_PAR: 'never',
      OIDC_TOKEN_ENDPOINT_AUTH_METHOD: 'client_secret_post',
      OIDC_DPOP: 'false',
      OIDC_ID_TOKEN_ALGS: 'RS256,PS256',
      OIDC_CLIENT_ASSERTION_AUDIENCE: 'token_endpoint',
    };
    const result = await runGatewayToExit(env);
    expect(result.code).toBe(78);
    expect(result.stderr.trim().split('\n')).toEqual([
      'config error: OIDC_PAR: must be always under OIDC_PROFILE=fapi2 (got never)',
      'config error: OIDC_TOKEN_ENDPOINT_AUTH_METHOD: must be private_key_jwt under OIDC_PROFILE=fapi2 (got client_secret_post)',
      'config error: OIDC_DPOP: must be true under OIDC_PROFILE=fapi2 (got false)',
      'config error: OIDC_CLIENT_ASSERTION_AUDIENCE: must be issuer under OIDC_PROFILE=fapi2 (got token_endpoint)',
      'config error: OIDC_ID_TOKEN_ALGS: must be among PS256, ES256, EdDSA under OIDC_PROFILE=fapi2 (got RS256)',
    ]);
    expect(result.stderr).not.toContain(key.split('\n')[1] ?? 'unreachable');
  });

  describe('with a valid environment', () => {
    let gateway: GatewayProcess;
    beforeAll(async () => {
      gateway = await startGatewayProcess({});
    });
    afterAll(async () => {
      await gateway.stop();
    });

    it('serves /healthz 200', async () => {
      expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
    });

    it('serves /readyz 503 naming what is missing', async () => {
      const res = await fetch(`${gateway.url}/readyz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ status: 'not_ready', missing: ['oidc_discovery'] });
    });
  });
});
