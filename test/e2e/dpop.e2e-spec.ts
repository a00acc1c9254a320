import { Redis } from 'ioredis';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { startSampleApi, type ReceivedRequest, type RunningSampleApi } from '../../demo/sample-api.js';
import { DpopKey, jwkThumbprint } from '../../src/oidc/dpop.js';
import { BrowserClient } from '../support/browser.js';
import { startBehaviourUpstream, type TestUpstream } from '../support/fault-upstreams.js';
import { startGateway, type RunningGateway } from '../support/gateway.js';
import { sessionOf } from '../support/gateway-state.js';
import { startOp, type RunningOp } from '../support/op.js';
import { freePort } from '../support/ports.js';
import { cookieHeader, upgradeAndEcho } from '../support/raw-http.js';
import { startRedis, type RunningRedis } from '../support/redis.js';
import { startStack, type Stack } from '../support/stack.js';
import { waitUntilReady } from '../support/wait.js';
import { refreshGrantAsClient } from '../support/client-grants.js';

const api = (browser: BrowserClient, url: string, init: { method?: string; body?: string } = {}): Promise<Response> =>
  browser.request(url, { ...init, headers: { 'x-csrf': '1', ...(init.body === undefined ? {} : { 'content-type': 'text/plain' }) } });

function header(request: ReceivedRequest | undefined, name: string): string {
  const value = request?.headers[name];
  return typeof value === 'string' ? value : '';
}

/** The access token a forwarded request carried under the DPoP scheme. */
const dpopToken = (request: ReceivedRequest | undefined): string => header(request, 'authorization').replace(/^DPoP /, '');

describe('DPoP (RFC 9449): one key per session, against oidc-provider with DPoP on', () => {
  let stack: Stack;
  let behaviour: TestUpstream;
  beforeAll(async () => {
    behaviour = await startBehaviourUpstream();
    // tokens live 60 s and are refreshed 30 s before expiry; the gateway's clock ages them; /api/b
    // is a WebSocket echo server that records what it received
    // /api/own gets a token of its own (refresh-token grant with a resource), /api/b/client the gateway's client-credentials token
    const routes = (sampleApi: string): string =>
      JSON.stringify([
        { prefix: '/api/b/client', target: behaviour.url, token: 'client', resource: 'urn:bff-demo:api' },
        { prefix: '/api/b', target: behaviour.url },
        { prefix: '/api/own', target: sampleApi, resource: 'urn:bff-demo:api', scope: 'api' },
        { prefix: '/api', target: sampleApi },
      ]);
    stack = await startStack((sampleApi) => ({ OIDC_DPOP: 'true', TOKEN_REFRESH_SKEW_S: '30', PROXY_ROUTES: routes(sampleApi) }), { accessTokenTtlS: 60 });
  });
  afterEach(() => {
    stack.gateway.clock.reset();
  });
  afterAll(async () => {
    await stack.stop();
    await behaviour.close();
  });

  async function signIn(login = 'alice'): Promise<{ browser: BrowserClient; authorizationUrl: URL }> {
    const browser = new BrowserClient();
    const { visited } = await browser.signIn(stack.gateway.url, { login });
    const authorization = visited.find((url) => url.startsWith(`${stack.op.issuer}/auth?`));
    if (authorization === undefined) throw new Error(`no authorization request among ${visited.join(', ')}`);
    return { browser, authorizationUrl: new URL(authorization) };
  }

  it('binds the code to the login\'s key (dpop_jkt), keeps the key in the session, and forwards Authorization: DPoP with a proof the sample API verifies', async () => {
    const { browser, authorizationUrl } = await signIn();
    const { record } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    const key = record.dpopKey;
    if (key === undefined) throw new Error('the session holds no DPoP key');
    expect(authorizationUrl.searchParams.get('dpop_jkt')).toBe(jwkThumbprint(key));
    // the provider bound the access token to that key
    expect(decodeJwt(record.tokens.accessToken)['cnf']).toEqual({ jkt: jwkThumbprint(key) });

    const res = await api(browser, `${stack.gateway.url}/api/orders/7?x=1`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ sub: 'alice', dpopBound: true });
    const received = stack.upstream.received.at(-1);
    expect(received).toMatchObject({ sub: 'alice', jkt: jwkThumbprint(key), refusal: undefined });
    expect(header(received, 'authorization')).toBe(`DPoP ${record.tokens.accessToken}`);
    expect(decodeJwt(header(received, 'dpop'))).toMatchObject({ htm: 'GET', htu: `${stack.upstream.url}/api/orders/7` });
  });

  it('sends a WebSocket handshake to /api with Authorization: DPoP and a proof for GET on the route target', async () => {
    const { browser } = await signIn();
    const { record } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    const cookie = await cookieHeader(browser, stack.gateway.url);
    const { statusLine, echoed } = await upgradeAndEcho(stack.gateway.url, '/api/b/socket?x=1', { cookie, origin: new URL(stack.gateway.url).origin }, 'ping');
    expect(statusLine).toContain(' 101 ');
    expect(echoed).toBe('ping');
    const seen = behaviour.seen.at(-1)?.headers;
    expect(seen?.authorization).toBe(`DPoP ${record.tokens.accessToken}`);
    expect(decodeJwt(String(seen?.['dpop']))).toMatchObject({ htm: 'GET', htu: `${behaviour.url}/api/b/socket` });
  });

  it('binds a route\'s own token to the session\'s key, and client tokens to one key of the process', async () => {
    const alice = await signIn('alice');
    const bob = await signIn('bob');
    const { record } = await sessionOf(stack.gateway.app, alice.browser, stack.gateway.url);
    expect((await api(alice.browser, `${stack.gateway.url}/api/own/x`)).status).toBe(200);
    const own = stack.upstream.received.at(-1);
    expect(dpopToken(own)).not.toBe(record.tokens.accessToken);
    expect(own?.jkt).toBe(jwkThumbprint(record.dpopKey ?? { crv: 'P-256', kty: 'EC', x: '', y: '' }));

    const clientJkt = async (browser: BrowserClient): Promise<unknown> => {
      expect((await api(browser, `${stack.gateway.url}/api/b/client/x`)).status).toBe(200);
      const seen = behaviour.seen.at(-1)?.headers;
      const token = String(seen?.authorization).replace(/^DPoP /, '');
      const proofKey = decodeProtectedHeader(String(seen?.['dpop'])).jwk;
      const jkt = decodeJwt(token)['cnf'];
      expect(jkt).toEqual({ jkt: jwkThumbprint({ crv: 'P-256', kty: 'EC', x: String(proofKey?.x), y: String(proofKey?.y) }) });
      return jkt;
    };
    const forAlice = await clientJkt(alice.browser);
    expect(await clientJkt(bob.browser)).toEqual(forAlice);
    expect(forAlice).not.toEqual({ jkt: own?.jkt });
  });

  it('gives two sessions two keys: their tokens carry different cnf.jkt', async () => {
    const first = await signIn('alice');
    const second = await signIn('bob');
    expect((await api(first.browser, `${stack.gateway.url}/api/first`)).status).toBe(200);
    const firstJkt = stack.upstream.received.at(-1)?.jkt;
    expect((await api(second.browser, `${stack.gateway.url}/api/second`)).status).toBe(200);
    const secondJkt = stack.upstream.received.at(-1)?.jkt;
    expect(firstJkt).toEqual(expect.any(String));
    expect(secondJkt).toEqual(expect.any(String));
    expect(secondJkt).not.toBe(firstJkt);
  });

  it('refreshes with a proof of the session\'s key: the new token is bound to the same key', async () => {
    const { browser } = await signIn();
    const before = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    stack.gateway.clock.advance(55_000);
    const res = await api(browser, `${stack.gateway.url}/api/after-refresh`);
    expect(res.status).toBe(200);
    const received = stack.upstream.received.at(-1);
    expect(dpopToken(received)).not.toBe(before.record.tokens.accessToken);
    expect(received?.jkt).toBe(jwkThumbprint(before.record.dpopKey ?? { crv: 'P-256', kty: 'EC', x: '', y: '' }));
    expect(decodeJwt(dpopToken(received))['cnf']).toEqual({ jkt: received?.jkt });
  });

  it('logs out and revokes the refresh token at the provider', async () => {
    const { browser } = await signIn();
    const { record } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    const me = (await (await browser.request(`${stack.gateway.url}/auth/me`)).json()) as { logoutUrl: string };
    expect((await browser.request(`${stack.gateway.url}${me.logoutUrl}`)).status).toBe(302);
    const res = await refreshGrantAsClient(`${stack.op.issuer}/token`, record.tokens.refreshToken, { clientId: stack.op.clientId, secret: stack.op.clientSecret });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_grant');
  });

  describe('the sample API refuses what is not a valid proof for the bound token (driven directly)', () => {
    let forwarded: ReceivedRequest;
    let record: Awaited<ReturnType<typeof sessionOf>>['record'];
    beforeAll(async () => {
      const { browser } = await signIn();
      ({ record } = await sessionOf(stack.gateway.app, browser, stack.gateway.url));
      expect((await api(browser, `${stack.gateway.url}/api/direct`)).status).toBe(200);
      const last = stack.upstream.received.at(-1);
      if (last === undefined) throw new Error('nothing forwarded');
      forwarded = last;
    });

    async function direct(headers: Record<string, string>): Promise<{ status: number; reason: string | undefined }> {
      const res = await fetch(`${stack.upstream.url}/api/direct`, { headers });
      return { status: res.status, reason: stack.upstream.received.at(-1)?.refusal };
    }

    it('refuses the gateway\'s proof replayed (same jti)', async () => {
      expect(await direct({ authorization: header(forwarded, 'authorization'), dpop: header(forwarded, 'dpop') })).toEqual({ status: 401, reason: 'jti replayed' });
    });

    it('refuses a proof signed with another key than the token\'s cnf.jkt', async () => {
      const proof = DpopKey.generate().proof({ htm: 'GET', htu: `${stack.upstream.url}/api/direct`, accessToken: record.tokens.accessToken }, Date.now());
      expect(await direct({ authorization: `DPoP ${record.tokens.accessToken}`, dpop: proof })).toEqual({ status: 401, reason: 'proof key is not the token\'s cnf.jkt' });
    });

    it('refuses a proof of the right key for another URI, and the bound token presented as Bearer', async () => {
      const key = DpopKey.fromJwk(record.dpopKey ?? DpopKey.generate().jwk);
      const proof = key.proof({ htm: 'GET', htu: `${stack.upstream.url}/api/elsewhere`, accessToken: record.tokens.accessToken }, Date.now());
      expect(await direct({ authorization: `DPoP ${record.tokens.accessToken}`, dpop: proof })).toEqual({ status: 401, reason: 'htu mismatch' });
      expect(await direct({ authorization: `Bearer ${record.tokens.accessToken}` })).toEqual({ status: 401, reason: 'DPoP-bound token presented as Bearer' });
      // the same key and URI pass: what failed above was the URI and the scheme
      const good = key.proof({ htm: 'GET', htu: `${stack.upstream.url}/api/direct`, accessToken: record.tokens.accessToken }, Date.now());
      expect(await direct({ authorization: `DPoP ${record.tokens.accessToken}`, dpop: good })).toEqual({ status: 200, reason: undefined });
    });
  });

  it('never lets the private key reach the browser\'s cookies or the logs, and drops a DPoP header the browser sends', async () => {
    const browser = new BrowserClient();
    // the login transaction cookie is what the browser holds between /auth/login and the callback
    const started = await browser.navigate(`${stack.gateway.url}/auth/login`, { stopAt: (url) => url.origin === new URL(stack.op.issuer).origin });
    expect(started.stoppedAt).toBeDefined();
    const transactionCookies = (await browser.cookies(stack.gateway.url)).map((c) => c.value).join(';');
    await browser.signIn(stack.gateway.url);
    const { record } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    const d = record.dpopKey?.d ?? '';
    expect(d).not.toBe('');
    const res = await browser.request(`${stack.gateway.url}/api/spoof`, { headers: { 'x-csrf': '1', dpop: 'browser-made-proof' } });
    expect(res.status).toBe(200);
    expect(header(stack.upstream.received.at(-1), 'dpop')).not.toBe('browser-made-proof');
    const cookies = (await browser.cookies(stack.gateway.url)).map((c) => c.value).join(';');
    for (const text of [transactionCookies, cookies, stack.gateway.logText()]) {
      expect(text).not.toContain(d);
      expect(text).not.toContain('"d":');
    }
  });
});

describe('DPoP: nonces (RFC 9449 §8, §9), a provider issuing Bearer tokens, and the record at rest', () => {
  let op: RunningOp;
  let nonceApi: RunningSampleApi;
  let gateway: RunningGateway;
  let redis: RunningRedis;
  let inspect: Redis;
  beforeAll(async () => {
    redis = await startRedis();
    const port = await freePort();
    op = await startOp({ gatewayUrl: `http://127.0.0.1:${port}`, dpop: 'nonce' });
    nonceApi = await startSampleApi({ issuer: op.issuer, audience: op.audience, requireDpopNonce: true });
    gateway = await startGateway({
      PORT: String(port),
      OIDC_ISSUER: op.issuer,
      OIDC_CLIENT_ID: op.clientId,
      OIDC_CLIENT_SECRET: op.clientSecret,
      UPSTREAM_URL: nonceApi.url,
      OIDC_DPOP: 'true',
      SESSION_STORE: 'redis',
      REDIS_URL: redis.url,
    });
    await waitUntilReady(gateway.url);
    inspect = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    inspect.disconnect();
    await gateway.close();
    await nonceApi.close();
    await op.stop();
    await redis.close();
  });

  it('signs in at a provider that requires a DPoP nonce: the token request is sent again once with the provider\'s nonce', async () => {
    const browser = new BrowserClient();
    const { final } = await browser.signIn(gateway.url);
    expect(final.status).toBe(200);
    expect((await browser.request(`${gateway.url}/auth/me`)).status).toBe(200);
  });

  it('answers an upstream\'s use_dpop_nonce challenge to a request without a body once, with the nonce, and uses it from then on', async () => {
    const browser = new BrowserClient();
    await browser.signIn(gateway.url);
    nonceApi.rotateDpopNonce();
    const before = nonceApi.received.length;
    const res = await api(browser, `${gateway.url}/api/nonce-get`);
    expect(res.status).toBe(200);
    expect(nonceApi.received.slice(before).map((r) => r.refusal ?? 'served')).toEqual(['nonce required', 'served']);
    const again = await api(browser, `${gateway.url}/api/nonce-get-again`);
    expect(again.status).toBe(200);
    expect(nonceApi.received.length).toBe(before + 3);
  });

  it('passes the challenge to a request whose body is streaming through as the upstream\'s 401, and takes the nonce for the next request', async () => {
    const browser = new BrowserClient();
    await browser.signIn(gateway.url);
    nonceApi.rotateDpopNonce();
    const before = nonceApi.received.length;
    const res = await api(browser, `${gateway.url}/api/upload`, { method: 'POST', body: 'a body that cannot be sent twice' });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^DPoP error="use_dpop_nonce"/);
    expect(nonceApi.received.length).toBe(before + 1);
    const retried = await api(browser, `${gateway.url}/api/upload`, { method: 'POST', body: 'sent by the app again' });
    expect(retried.status).toBe(200);
  });

  it('keeps the session\'s private key sealed in Redis: no "d": member and no key material in any key or value', async () => {
    const browser = new BrowserClient();
    await browser.signIn(gateway.url);
    const { record } = await sessionOf(gateway.app, browser, gateway.url);
    const d = record.dpopKey?.d ?? '';
    expect(d).not.toBe('');
    const keys = await inspect.keys('*');
    const values = await Promise.all(keys.map(async (key) => ((await inspect.type(key)) === 'hash' ? Object.entries(await inspect.hgetall(key)).flat().join('\n') : '')));
    const dump = [...keys, ...values].join('\n');
    expect(dump).toContain('ident');
    expect(dump).not.toContain(d);
    expect(dump).not.toContain('"d":');
  });
});

describe('DPoP: a provider that answers with Bearer tokens', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ OIDC_DPOP: 'true' }, { dpop: 'off' });
  });
  afterAll(async () => {
    await stack.stop();
  });

  it('refuses the login with 502 token_type_invalid and starts no session', async () => {
    const browser = new BrowserClient();
    const { final } = await browser.signIn(stack.gateway.url);
    expect(final.status).toBe(502);
    expect(stack.gateway.logText()).toContain('token_type_invalid');
    expect((await browser.request(`${stack.gateway.url}/auth/me`)).status).toBe(401);
  });
});
