import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startSampleApi, type RunningSampleApi } from '../../demo/sample-api.js';
import { SESSION_STORE, type SessionStore } from '../../src/session/session-store.js';
import type { BrowserClient } from '../support/browser.js';
import { sessionOf } from '../support/gateway-state.js';
import { freePort } from '../support/ports.js';
import { startStack, type Stack } from '../support/stack.js';

const PASSWORD = 'urn:bff-demo:pwd';
const MFA = 'urn:bff-demo:mfa';
/** Allowed at the gateway, unknown to the demo provider: it answers with the session's own level. */
const HARDWARE_KEY = 'urn:bff-demo:hwk';
/** Asked for by an upstream, listed nowhere at the gateway. */
const NOT_ALLOWED = 'urn:example:not-allowed';

/** What the challenge upstream answers on /api/challenges/<name>: 401 with these WWW-Authenticate fields. */
const CHALLENGES: Readonly<Record<string, readonly string[]>> = {
  unterminated: [`Bearer error="insufficient_user_authentication", acr_values="${MFA}`],
  duplicated: [`Bearer error="insufficient_user_authentication", acr_values="${MFA}", acr_values="${PASSWORD}"`],
  dpop: ['DPoP algs="ES256", error="insufficient_user_authentication", max_age="0"'],
  'two-fields': ['Basic realm="api"', `Bearer error="insufficient_user_authentication", acr_values="${MFA}"`],
};

/** A real upstream that answers every request with one of CHALLENGES, whatever the token. */
async function startChallengeUpstream(): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const name = (req.url ?? '').split('/').pop() ?? '';
    res.setHeader('www-authenticate', [...(CHALLENGES[name] ?? ['Bearer error="invalid_token"'])]);
    res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"challenge"}');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

interface Me {
  readonly sub: string;
  readonly acr?: string;
  readonly amr?: string[];
  readonly auth_time?: number;
}

describe('step-up authentication through the real provider (acr_values, max_age, RFC 9470)', () => {
  let stack: Stack;
  let vault: RunningSampleApi;
  let challenges: { url: string; server: Server };

  beforeAll(async () => {
    const vaultPort = await freePort();
    challenges = await startChallengeUpstream();
    stack = await startStack((api) => ({
      OIDC_ACR_VALUES_ALLOWED: `${PASSWORD},${MFA},${HARDWARE_KEY}`,
      PROXY_ROUTES: JSON.stringify([
        { prefix: '/api/vault', target: `http://127.0.0.1:${vaultPort}` },
        { prefix: '/api/challenges', target: challenges.url },
        // the gateway's own client-credentials token: a challenge there is not about the user
        { prefix: '/api/machine', target: challenges.url, token: 'client', resource: 'urn:bff-demo:api', scope: 'api' },
        { prefix: '/api', target: api },
      ]),
    }));
    vault = await startSampleApi({ issuer: stack.op.issuer, audience: stack.op.audience, port: vaultPort, stepUp: [{ pathPrefix: '/api/vault', acr: NOT_ALLOWED }] });
  });
  afterEach(() => stack.gateway.clock.reset());
  afterAll(async () => {
    await vault?.close();
    challenges?.server.closeAllConnections();
    challenges?.server.close();
    await stack?.stop();
  });

  async function me(browser: BrowserClient): Promise<Me> {
    const response = await browser.request(`${stack.gateway.url}/auth/me`);
    expect(response.status).toBe(200);
    return (await response.json()) as Me;
  }

  function api(browser: BrowserClient, path: string): Promise<Response> {
    return browser.request(`${stack.gateway.url}${path}`, { headers: { 'x-csrf': '1' } });
  }

  it('signs in at the level acr_values asks for, and /auth/me shows acr, amr and auth_time', async () => {
    const before = Math.floor(Date.now() / 1000);
    const plain = await stack.signedIn();
    expect(await me(plain)).toMatchObject({ sub: 'alice', acr: PASSWORD, amr: ['pwd'], auth_time: expect.any(Number) });

    const browser = stack.browser();
    const { final } = await browser.signIn(stack.gateway.url, { loginParams: { acr_values: `${MFA} ${PASSWORD}` } });
    expect(final.status).toBe(200);
    const body = await me(browser);
    expect(body).toMatchObject({ sub: 'alice', acr: MFA, amr: ['pwd', 'otp'] });
    expect(body.auth_time).toBeGreaterThanOrEqual(before);
    expect(body.auth_time).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
  });

  it('sends max_age to the provider and accepts an auth_time within it', async () => {
    const browser = await stack.signedIn();
    const { record: before } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    const start = await browser.navigate(`${stack.gateway.url}/auth/login?max_age=0&returnTo=%2Fadmin`);
    const authorization = start.visited.map((url) => new URL(url)).find((url) => url.origin === new URL(stack.op.issuer).origin);
    expect(authorization?.searchParams.get('max_age')).toBe('0');
    // (whether oidc-provider asks to sign in again depends on the second the last sign-in fell in)
    const back = await browser.completeProviderInteraction(start);
    expect(back.visited.at(-1)).toBe(`${stack.gateway.url}/admin`);
    const { record: after } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    expect(after.id).not.toBe(before.id);
    expect((await me(browser)).auth_time).toBeGreaterThanOrEqual(Math.floor(before.createdAt / 1000));
  });

  it('refuses acr_values that OIDC_ACR_VALUES_ALLOWED does not list, and a bad max_age, before going to the provider', async () => {
    for (const query of [`acr_values=${encodeURIComponent(NOT_ALLOWED)}`, 'max_age=-1', 'max_age=1&max_age=2']) {
      const response = await stack.browser().request(`${stack.gateway.url}/auth/login?${query}`, { headers: { accept: 'application/json' } });
      expect([query, response.status]).toEqual([query, 400]);
      expect(((await response.json()) as { code: string }).code).toBe('bad_request');
    }
  });

  it('answers an upstream\'s step-up challenge with step_up_required, and after the step-up the call succeeds on a new session that replaced the old one', async () => {
    const browser = await stack.signedIn();
    const { record: old } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);

    const challenged = await api(browser, '/api/transfers');
    expect(challenged.status).toBe(401);
    expect(challenged.headers.get('content-type')).toBe('application/problem+json');
    expect(challenged.headers.get('www-authenticate')).toBeNull();
    expect(await challenged.json()).toEqual({
      type: '/problems/step_up_required',
      title: 'Stronger authentication required',
      status: 401,
      code: 'step_up_required',
      detail: expect.any(String),
      instance: expect.any(String),
      loginUrl: '/auth/login?acr_values=urn%3Abff-demo%3Amfa&max_age=300',
    });
    const upstreamSaw = stack.upstream.received.filter((r) => r.url === '/api/transfers');
    expect(upstreamSaw).toHaveLength(1);

    // what the SPA does: its own returnTo appended to loginUrl; the provider asks to sign in again
    const { loginUrl } = (await (await api(browser, '/api/transfers')).json()) as { loginUrl: string };
    const start = await browser.navigate(`${stack.gateway.url}${loginUrl}&returnTo=${encodeURIComponent('/transfers')}`);
    expect(new URL(start.response.url).pathname).toMatch(/^\/interaction\//);
    const back = await browser.completeProviderInteraction(start);
    expect(back.visited.at(-1)).toBe(`${stack.gateway.url}/transfers`);

    expect(await me(browser)).toMatchObject({ sub: 'alice', acr: MFA, amr: ['pwd', 'otp'] });
    const allowed = await api(browser, '/api/transfers');
    expect(allowed.status).toBe(200);
    expect(await allowed.json()).toMatchObject({ sub: 'alice', path: '/api/transfers', acr: MFA });
    // the session the step-up replaced is gone from the store, not merely forgotten by the cookie
    expect(await stack.gateway.app.get<SessionStore>(SESSION_STORE).get(old.id)).toBeUndefined();
  });

  it('passes through unchanged a challenge for an ACR value OIDC_ACR_VALUES_ALLOWED does not list', async () => {
    const browser = await stack.signedIn();
    const response = await api(browser, '/api/vault/open');
    expect(response.status).toBe(401);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.headers.get('www-authenticate')).toBe(
      `Bearer error="insufficient_user_authentication", error_description="A stronger or more recent authentication is required", acr_values="${NOT_ALLOWED}"`,
    );
    expect(await response.json()).toEqual({ error: 'insufficient_user_authentication' });
    expect(vault.received.filter((r) => r.url === '/api/vault/open' && r.sub === 'alice')).toHaveLength(1);
  });

  it('reads the challenge among several fields and in the DPoP scheme, and passes a malformed one, or one on a client-token route, through unchanged', async () => {
    const browser = await stack.signedIn();
    for (const [name, loginUrl] of [
      ['two-fields', '/auth/login?acr_values=urn%3Abff-demo%3Amfa'],
      ['dpop', '/auth/login?max_age=0'],
    ] as const) {
      const response = await api(browser, `/api/challenges/${name}`);
      expect([name, response.status]).toEqual([name, 401]);
      expect(await response.json()).toMatchObject({ code: 'step_up_required', loginUrl });
    }
    for (const path of ['/api/challenges/unterminated', '/api/challenges/duplicated', '/api/machine/two-fields']) {
      const name = path.split('/').pop() ?? '';
      const response = await api(browser, path);
      expect([name, response.status, response.headers.get('www-authenticate')]).toEqual([name, 401, CHALLENGES[name]?.join(', ')]);
      expect(await response.text()).toBe('{"error":"challenge"}');
    }
  });

  it('keeps the existing session when the provider answers with another acr than the step-up asked for (401 id_token_invalid)', async () => {
    const browser = await stack.signedIn();
    const { record: before } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    // the demo provider cannot reach HARDWARE_KEY: acr_values are voluntary, it answers with the session's level
    const { final } = await browser.signIn(stack.gateway.url, { loginParams: { acr_values: HARDWARE_KEY } });
    expect(final.status).toBe(401);
    expect(final.headers.get('content-type')).toMatch(/^text\/html/);
    const page = await final.text();
    expect(page).toContain('id_token_invalid');
    expect(page).toContain(HARDWARE_KEY);

    expect(await me(browser)).toMatchObject({ sub: 'alice', acr: PASSWORD });
    const { record: after } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    expect(after.id).toBe(before.id);
    expect((await api(browser, '/api/whoami')).status).toBe(200);
  });

  it('keeps the existing session when the provider\'s auth_time is older than the step-up\'s max_age allows', async () => {
    const browser = await stack.signedIn();
    const { record: before } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    // the provider's session is seconds old by its clock; ten minutes later by the gateway's, it is too old for max_age=60
    stack.gateway.clock.advance(600_000);
    const { final } = await browser.signIn(stack.gateway.url, { loginParams: { max_age: '60' } });
    expect(final.status).toBe(401);
    expect(await final.text()).toContain('auth_time');

    const { record: after } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    expect(after.id).toBe(before.id);
    expect(await me(browser)).toMatchObject({ sub: 'alice', acr: PASSWORD });
  });

  it('keeps the existing session when the user declines the step-up at the provider (401 login_denied)', async () => {
    const browser = await stack.signedIn();
    const { record: before } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    const start = await browser.navigate(`${stack.gateway.url}/auth/login?acr_values=${encodeURIComponent(MFA)}`);
    expect(new URL(start.response.url).pathname).toMatch(/^\/interaction\//);
    const { response } = await browser.abortProviderInteraction(start.response);
    expect(response.status).toBe(401);
    expect(await response.text()).toContain('login_denied');

    const { record: after } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    expect(after.id).toBe(before.id);
    expect(await me(browser)).toMatchObject({ acr: PASSWORD });
    expect((await api(browser, '/api/transfers')).status).toBe(401);
  });
});
