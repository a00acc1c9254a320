import { createPrivateKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, decodeJwt, SignJWT } from 'jose';
import { DpopKey, jwkThumbprint } from '../../src/oidc/dpop.js';
import { sessionOf } from '../support/gateway-state.js';
import { startGateway, type RunningGateway } from '../support/gateway.js';
import { runGatewayToExit } from '../support/gateway-process.js';
import { freePort } from '../support/ports.js';
import { testEnvironment } from '../support/test-env.js';
import { startStack, type Stack } from '../support/stack.js';
import { startRogueOp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type RogueOp } from '../support/rogue-op.js';
import { eventually, waitUntilReady } from '../support/wait.js';
import { refreshGrantAsClient } from '../support/client-grants.js';

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'];

function pkcs8(type: 'ec' | 'ed25519'): string {
  const { privateKey } = type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  return privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** The client's own assertion, made by the test (not the gateway's code), to ask the provider things as the client. */
async function assertion(pem: string, clientId: string, issuer: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setIssuer(clientId).setSubject(clientId).setAudience(issuer).setJti(randomUUID()).setIssuedAt(now).setExpirationTime(now + 60).sign(createPrivateKey(pem));
}

/** The provider's error for a refresh-token grant the test sends as the client (its own assertion, and a DPoP proof when given). */
async function refreshGrantError(op: { issuer: string; clientId: string }, pem: string, refreshToken: string | undefined, dpop?: DpopKey): Promise<string | undefined> {
  const form = { client_id: op.clientId, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: await assertion(pem, op.clientId, op.issuer) };
  const res = await refreshGrantAsClient(`${op.issuer}/token`, refreshToken, { form }, dpop);
  return ((await res.json()) as { error?: string }).error;
}

const problemOf = async (res: Response): Promise<{ code?: string }> => (await res.json()) as { code?: string };

describe('private_key_jwt with pushed authorization requests, against oidc-provider requiring PAR', () => {
  // the signing key (ES256), then one kept published for rotation (EdDSA)
  const signingKey = pkcs8('ec');
  const retiredKey = pkcs8('ed25519');
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(
      // OIDC_PAR is left at auto: discovery's require_pushed_authorization_requests turns it on
      { OIDC_TOKEN_ENDPOINT_AUTH_METHOD: 'private_key_jwt', OIDC_CLIENT_PRIVATE_KEY: `${signingKey},${retiredKey}`, OIDC_CLIENT_SECRET: undefined, TOKEN_REFRESH_SKEW_S: '30' },
      (gatewayUrl) => ({ clientKeys: { jwksUri: `${gatewayUrl}/auth/jwks.json` }, requirePar: true, accessTokenTtlS: 60 }),
    );
  });
  afterEach(() => {
    stack.gateway.clock.reset();
  });
  afterAll(async () => {
    await stack.stop();
  });

  it('publishes both public keys at /auth/jwks.json with kid, alg and use, no private member, cacheable briefly', async () => {
    const res = await fetch(`${stack.gateway.url}/auth/jwks.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/jwk-set\+json/);
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
    const { keys } = (await res.json()) as { keys: Array<Record<string, string>> };
    expect(keys.map((k) => [k['kty'], k['crv'], k['alg'], k['use']])).toEqual([
      ['EC', 'P-256', 'ES256', 'sig'],
      ['OKP', 'Ed25519', 'EdDSA', 'sig'],
    ]);
    for (const key of keys) {
      for (const member of PRIVATE_MEMBERS) expect(key).not.toHaveProperty(member);
      const { kid, alg: _alg, use: _use, ...jwk } = key;
      expect(kid).toBe(await calculateJwkThumbprint(jwk));
    }
  });

  it('sends the browser to the provider with only client_id and request_uri (OIDC_PAR=auto from discovery)', async () => {
    const res = await stack.browser().request(`${stack.gateway.url}/auth/login?login_hint=bob&prompt=login`);
    expect(res.status).toBe(302);
    const location = new URL(res.headers.get('location') ?? '');
    expect(location.origin + location.pathname).toBe(`${stack.op.issuer}/auth`);
    expect([...location.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
    expect(location.searchParams.get('client_id')).toBe(stack.op.clientId);
    expect(location.searchParams.get('request_uri')).toMatch(/^urn:ietf:params:oauth:request_uri:/);
  });

  it('signs in, refreshes and calls the API with tokens obtained by private_key_jwt', async () => {
    const browser = stack.browser();
    const { visited } = await browser.signIn(stack.gateway.url, { returnTo: '/orders' });
    expect(visited.at(-1)).toBe(`${stack.gateway.url}/orders`);
    expect((await browser.request(`${stack.gateway.url}/auth/me`)).status).toBe(200);
    const before = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    // the access token now expires within the refresh skew, for the gateway
    stack.gateway.clock.advance(55_000);
    const api = await browser.request(`${stack.gateway.url}/api/whoami`, { headers: { 'x-csrf': '1' } });
    expect(api.status).toBe(200);
    const after = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    expect(after.record.tokens.accessToken).not.toBe(before.record.tokens.accessToken);
    expect(stack.upstream.received.at(-1)?.headers['authorization']).toBe(`Bearer ${after.record.tokens.accessToken}`);
  });

  it('revokes the refresh token at logout, authenticating with the key', async () => {
    const browser = await stack.signedIn();
    const { record } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    const logout = await browser.request(`${stack.gateway.url}/auth/logout`, { method: 'POST', headers: { 'x-csrf': '1' } });
    expect(logout.status).toBe(200);
    expect(await refreshGrantError(stack.op, signingKey, record.tokens.refreshToken)).toBe('invalid_grant');
  });

  describe('a second gateway whose redirect_uri the provider does not know', () => {
    let other: RunningGateway;
    beforeAll(async () => {
      const port = await freePort();
      other = await startGateway({
        PORT: String(port),
        OIDC_ISSUER: stack.op.issuer,
        OIDC_CLIENT_ID: stack.op.clientId,
        OIDC_TOKEN_ENDPOINT_AUTH_METHOD: 'private_key_jwt',
        OIDC_CLIENT_PRIVATE_KEY: signingKey,
        OIDC_CLIENT_SECRET: undefined,
        UPSTREAM_URL: stack.upstream.url,
      });
      await waitUntilReady(other.url);
    });
    afterAll(async () => {
      await other.close();
    });

    it('answers the refused pushed request with 502 authorization_request_rejected, as an HTML page for a navigation', async () => {
      const json = await fetch(`${other.url}/auth/login`, { redirect: 'manual', headers: { accept: 'application/json' } });
      expect(json.status).toBe(502);
      expect(await problemOf(json)).toMatchObject({ code: 'authorization_request_rejected' });
      const page = await fetch(`${other.url}/auth/login`, { redirect: 'manual', headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } });
      expect(page.status).toBe(502);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    });
  });
});

describe('private_key_jwt refused by the provider (it has another key for the client)', () => {
  const gatewayKey = pkcs8('ec');
  let stack: Stack;
  beforeAll(async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const registered = { ...publicKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig' };
    stack = await startStack(
      { OIDC_TOKEN_ENDPOINT_AUTH_METHOD: 'private_key_jwt', OIDC_CLIENT_PRIVATE_KEY: gatewayKey, OIDC_CLIENT_SECRET: undefined, OIDC_PAR: 'never' },
      { clientKeys: { jwks: { keys: [registered] } } },
    );
  });
  afterAll(async () => {
    await stack.stop();
  });

  it('answers the callback 502 client_authentication_failed and logs it at error with the key to check', async () => {
    const browser = stack.browser();
    const start = await browser.navigate(`${stack.gateway.url}/auth/login`);
    const end = await browser.completeProviderInteraction(start);
    expect(end.response.url).toMatch(new RegExp(`^${stack.gateway.url}/auth/callback\\?`));
    expect(end.response.status).toBe(502);
    const logged = stack.gateway.logLines().filter((line) => line['code'] === 'client_authentication_failed' && line['level'] === 50);
    expect(logged.length).toBe(1);
    expect(JSON.stringify(logged)).toContain('OIDC_CLIENT_PRIVATE_KEY');
    expect(stack.gateway.logText()).not.toContain(gatewayKey.split('\n')[1] ?? 'unreachable');
  });

  it('answers a pushed request 502 client_authentication_failed when OIDC_PAR=always', async () => {
    const port = await freePort();
    const gateway = await startGateway({
      PORT: String(port),
      OIDC_ISSUER: stack.op.issuer,
      OIDC_CLIENT_ID: stack.op.clientId,
      OIDC_TOKEN_ENDPOINT_AUTH_METHOD: 'private_key_jwt',
      OIDC_CLIENT_PRIVATE_KEY: gatewayKey,
      OIDC_CLIENT_SECRET: undefined,
      OIDC_PAR: 'always',
      UPSTREAM_URL: stack.upstream.url,
    });
    try {
      await waitUntilReady(gateway.url);
      const res = await fetch(`${gateway.url}/auth/login`, { redirect: 'manual', headers: { accept: 'application/json' } });
      expect(res.status).toBe(502);
      expect(await problemOf(res)).toMatchObject({ code: 'client_authentication_failed' });
      expect(gateway.logLines().some((line) => line['code'] === 'client_authentication_failed' && line['level'] === 50)).toBe(true);
    } finally {
      await gateway.close();
    }
  });
});

describe('/auth/jwks.json without private_key_jwt', () => {
  it('is not served (404): a gateway with a client secret has no keys to publish', async () => {
    const gateway = await startGateway();
    try {
      const res = await fetch(`${gateway.url}/auth/jwks.json`);
      expect(res.status).toBe(404);
    } finally {
      await gateway.close();
    }
  });
});

describe('OIDC_PROFILE=fapi2 against oidc-provider in its FAPI 2.0 mode (PAR, private_key_jwt only, DPoP-bound tokens)', () => {
  const key = pkcs8('ec');
  let stack: Stack;
  beforeAll(async () => {
    // the access tokens live 60 s and are refreshed 30 s before they expire, on the gateway's clock
    stack = await startStack({ OIDC_PROFILE: 'fapi2', OIDC_CLIENT_PRIVATE_KEY: key, OIDC_CLIENT_SECRET: undefined, TOKEN_REFRESH_SKEW_S: '30' }, (gatewayUrl) => ({
      clientKeys: { jwksUri: `${gatewayUrl}/auth/jwks.json` },
      fapi2: true,
      accessTokenTtlS: 60,
    }));
  });
  afterEach(() => {
    stack.gateway.clock.reset();
  });
  afterAll(async () => {
    await stack.stop();
  });

  it('pushes the authorization request with an assertion whose aud is the issuer, and redirects with client_id and request_uri only', async () => {
    const discovery = (await (await fetch(`${stack.op.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery).toMatchObject({ require_pushed_authorization_requests: true, token_endpoint_auth_methods_supported: ['private_key_jwt'] });
    const res = await stack.browser().request(`${stack.gateway.url}/auth/login`);
    expect(res.status).toBe(302);
    const location = new URL(res.headers.get('location') ?? '');
    expect([...location.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
  });

  it('signs in, calls the API with a DPoP-bound token and a proof the sample API verifies, refreshes, and gives two sessions two keys', async () => {
    const first = await stack.signedIn('alice');
    const { record } = await sessionOf(stack.gateway.app, first, stack.gateway.url);
    const jkt = jwkThumbprint(record.dpopKey ?? { crv: 'P-256', kty: 'EC', x: '', y: '' });
    expect(decodeJwt(record.tokens.accessToken)['cnf']).toEqual({ jkt });
    expect((await first.request(`${stack.gateway.url}/api/orders`, { headers: { 'x-csrf': '1' } })).status).toBe(200);
    const served = stack.upstream.received.at(-1);
    expect(served).toMatchObject({ sub: 'alice', jkt, refusal: undefined });
    expect(served?.headers['authorization']).toBe(`DPoP ${record.tokens.accessToken}`);
    // the refresh: a proof of the same key and a fresh assertion; the new token is bound to the same key
    stack.gateway.clock.advance(35_000);
    expect((await first.request(`${stack.gateway.url}/api/after-refresh`, { headers: { 'x-csrf': '1' } })).status).toBe(200);
    const refreshed = await sessionOf(stack.gateway.app, first, stack.gateway.url);
    expect(refreshed.record.tokens.accessToken).not.toBe(record.tokens.accessToken);
    expect(stack.upstream.received.at(-1)).toMatchObject({ jkt, refusal: undefined });
    stack.gateway.clock.reset();
    const second = await stack.signedIn('bob');
    expect((await second.request(`${stack.gateway.url}/api/orders`, { headers: { 'x-csrf': '1' } })).status).toBe(200);
    const other = stack.upstream.received.at(-1);
    expect(other).toMatchObject({ sub: 'bob', refusal: undefined });
    expect(other?.jkt).not.toBe(jkt);
  });

  it('--check-config obtains a client route\'s token with a DPoP proof, as the provider requires under the profile', async () => {
    const routes = [
      { prefix: '/api/jobs', target: 'http://127.0.0.1:9', token: 'client', resource: stack.op.audience, scope: 'api' },
      { prefix: '/api', target: 'http://127.0.0.1:9' },
    ];
    const result = await runGatewayToExit(
      { ...testEnvironment(), OIDC_ISSUER: stack.op.issuer, OIDC_CLIENT_ID: stack.op.clientId, OIDC_CLIENT_SECRET: undefined, OIDC_PROFILE: 'fapi2', OIDC_CLIENT_PRIVATE_KEY: key, PROXY_ROUTES: JSON.stringify(routes) },
      ['--check-config'],
    );
    expect(result.stdout).toMatch(/^ {2}ok {4}client routes +\/api\/jobs: client-credentials token obtained/m);
  });

  it('revokes the refresh token at logout: the provider then refuses it to the client with a valid assertion and proof', async () => {
    const browser = await stack.signedIn();
    const { record } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    const logout = await browser.request(`${stack.gateway.url}/auth/logout`, { method: 'POST', headers: { 'x-csrf': '1' } });
    expect(logout.status).toBe(200);
    const proofKey = DpopKey.fromJwk(record.dpopKey ?? { crv: 'P-256', kty: 'EC', x: '', y: '', d: '' });
    expect(await refreshGrantError(stack.op, key, record.tokens.refreshToken, proofKey)).toBe('invalid_grant');
  });
});

describe('a pushed authorization request to a provider that has gone away', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ OIDC_TOKEN_ENDPOINT_AUTH_METHOD: 'private_key_jwt', OIDC_CLIENT_PRIVATE_KEY: pkcs8('ec'), OIDC_CLIENT_SECRET: undefined, OIDC_PAR: 'always' }, (gatewayUrl) => ({ clientKeys: { jwksUri: `${gatewayUrl}/auth/jwks.json` } }));
    // discovery has loaded; now the provider stops answering
    await stack.op.stop();
  });
  afterAll(async () => {
    await stack.gateway.close();
    await stack.upstream.close();
  });

  it('answers /auth/login 503 provider_unavailable with Retry-After', async () => {
    const res = await fetch(`${stack.gateway.url}/auth/login`, { redirect: 'manual', headers: { accept: 'application/json' } });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(await problemOf(res)).toMatchObject({ code: 'provider_unavailable' });
  });
});

describe('OIDC_PAR=always with a provider whose discovery names no PAR endpoint', () => {
  let rogue: RogueOp;
  let gateway: RunningGateway;
  beforeAll(async () => {
    rogue = await startRogueOp({ clientId: TEST_CLIENT_ID, clientSecret: TEST_CLIENT_SECRET });
    gateway = await startGateway({ OIDC_ISSUER: rogue.issuer, OIDC_CLIENT_ID: TEST_CLIENT_ID, OIDC_CLIENT_SECRET: TEST_CLIENT_SECRET, OIDC_PAR: 'always' });
  });
  afterAll(async () => {
    await gateway.close();
    await rogue.close();
  });

  it('stays unready, naming pushed_authorization_request_endpoint, and answers /auth/login 503', async () => {
    await eventually(async () => Promise.resolve(gateway.logText().includes('OIDC_PAR=always, but the discovery document advertises no pushed_authorization_request_endpoint') ? true : undefined));
    const ready = await fetch(`${gateway.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ status: 'not_ready', missing: ['oidc_discovery'] });
    const login = await fetch(`${gateway.url}/auth/login`, { redirect: 'manual', headers: { accept: 'application/json' } });
    expect(login.status).toBe(503);
  });
});

describe('OIDC_PROFILE=fapi2 and the RFC 9207 iss parameter, with a provider that does not promise it', () => {
  let rogue: RogueOp;
  beforeAll(async () => {
    rogue = await startRogueOp({ clientId: TEST_CLIENT_ID, clientSecret: TEST_CLIENT_SECRET });
    rogue.discoveryOverrides = { authorization_response_iss_parameter_supported: false, pushed_authorization_request_endpoint: `${rogue.issuer}/par` };
  });
  afterAll(async () => {
    await rogue.close();
  });

  async function callbackWithoutIss(env: Record<string, string | undefined>): Promise<string | undefined> {
    const gateway = await startGateway({ OIDC_ISSUER: rogue.issuer, OIDC_CLIENT_ID: TEST_CLIENT_ID, OIDC_CLIENT_SECRET: TEST_CLIENT_SECRET, ...env });
    try {
      await waitUntilReady(gateway.url);
      const res = await fetch(`${gateway.url}/auth/callback?code=c&state=s`, { redirect: 'manual', headers: { accept: 'application/json' } });
      return (await problemOf(res)).code;
    } finally {
      await gateway.close();
    }
  }

  it('refuses an authorization response without iss under the profile (login_issuer_mismatch), not without it', async () => {
    expect(await callbackWithoutIss({ OIDC_PROFILE: 'fapi2', OIDC_CLIENT_SECRET: undefined, OIDC_CLIENT_PRIVATE_KEY: pkcs8('ec') })).toBe('login_issuer_mismatch');
    expect(await callbackWithoutIss({})).toBe('login_state_mismatch');
  });
});
