import { decodeJwt } from 'jose';
import { startSampleApi, type RunningSampleApi } from '../../demo/sample-api.js';
import type { BrowserClient } from '../support/browser.js';
import { freePort } from '../support/ports.js';
import { startStack, type Stack } from '../support/stack.js';

const ORDERS = 'urn:bff-test:orders';
const BILLING = 'urn:bff-test:billing';
const JOBS = 'urn:bff-test:jobs';
const API = 'urn:bff-demo:api';

interface Grant {
  grantType: string;
  resource: string | undefined;
  scope: string | undefined;
}

/**
 * Per-route tokens against the real oidc-provider with resource indicators (RFC 8707) and client
 * credentials: each API gets a JWT access token whose `aud` is its own.
 */
describe('per-route tokens', () => {
  let stack: Stack;
  let orders: RunningSampleApi;
  let billing: RunningSampleApi;
  let jobs: RunningSampleApi;

  beforeAll(async () => {
    // the upstreams verify tokens against the provider, which starts with the stack: their ports come first
    const [ordersPort, billingPort, jobsPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const at = (port: number): string => `http://127.0.0.1:${port}`;
    stack = await startStack(
      (api) => ({
        PROXY_ROUTES: JSON.stringify([
          { prefix: '/api/orders', target: at(ordersPort), resource: ORDERS, scope: 'orders.read' },
          { prefix: '/api/billing', target: at(billingPort), resource: [BILLING], scope: 'billing.read' },
          // the provider refuses a scope the user's grant does not hold
          { prefix: '/api/orders-admin', target: at(ordersPort), resource: ORDERS, scope: 'orders.admin' },
          { prefix: '/api/jobs', target: at(jobsPort), token: 'client', resource: JOBS, scope: 'jobs.run' },
          { prefix: '/api', target: api, resource: API, scope: 'api' },
        ]),
        TOKEN_REFRESH_SKEW_S: '0',
      }),
      { resources: { [ORDERS]: 'orders.read', [BILLING]: 'billing.read', [JOBS]: 'jobs.run' } },
    );
    const start = (audience: string, port: number): Promise<RunningSampleApi> => startSampleApi({ issuer: stack.op.issuer, audience, port, host: '127.0.0.1' });
    [orders, billing, jobs] = await Promise.all([start(ORDERS, ordersPort), start(BILLING, billingPort), start(JOBS, jobsPort)]);
  }, 60_000);
  afterAll(async () => {
    await stack.stop();
    await Promise.all([orders, billing, jobs].map((api) => api.close()));
  });
  afterEach(() => stack.gateway.clock.reset());

  function grants(): Grant[] {
    return stack.op.child
      .output()
      .split('\n')
      .filter((line) => line.includes('"event":"grant.success"'))
      .map((line) => JSON.parse(line) as Grant);
  }
  const count = (list: readonly Grant[], grantType: string, resource?: string): number => list.filter((g) => g.grantType === grantType && g.resource === resource).length;
  const reuses = (): number => stack.op.child.output().split('\n').filter((line) => line.includes('refresh token already used')).length;

  async function call(browser: BrowserClient | undefined, path: string): Promise<{ status: number; code: string | undefined }> {
    const init = { headers: { 'x-csrf': '1' } };
    const response = browser === undefined ? await fetch(`${stack.gateway.url}${path}`, init) : await browser.request(`${stack.gateway.url}${path}`, init);
    const body = await response.text();
    return { status: response.status, code: /"code":"([a-z_]+)"/.exec(body)?.[1] };
  }

  function audiencesSeen(api: RunningSampleApi, since: number): unknown[] {
    return api.received.slice(since).map((r) => decodeJwt((r.headers.authorization ?? '').replace(/^Bearer /, '')).aud);
  }

  it('gives each upstream only a token for its own audience, obtained once per session and reused', async () => {
    const before = grants();
    const [o, b, a] = [orders.received.length, billing.received.length, stack.upstream.received.length];
    const alice = await stack.signedIn('alice');
    for (let i = 0; i < 3; i++) {
      expect(await call(alice, '/api/orders/1')).toEqual({ status: 200, code: undefined });
      expect(await call(alice, '/api/billing/1')).toEqual({ status: 200, code: undefined });
      expect(await call(alice, '/api/whoami')).toEqual({ status: 200, code: undefined });
    }
    expect(audiencesSeen(orders, o)).toEqual([ORDERS, ORDERS, ORDERS]);
    expect(audiencesSeen(billing, b)).toEqual([BILLING, BILLING, BILLING]);
    expect(audiencesSeen(stack.upstream, a)).toEqual([API, API, API]);
    expect(orders.received.slice(o).map((r) => r.sub)).toEqual(['alice', 'alice', 'alice']);
    const made = grants().slice(before.length);
    expect(count(made, 'refresh_token', ORDERS)).toBe(1);
    expect(count(made, 'refresh_token', BILLING)).toBe(1);
    expect(count(made, 'refresh_token', API)).toBe(1);
  });

  it('asks once per route however many calls arrive together, and once more per route after expiry, never reusing a refresh token', async () => {
    const bob = await stack.signedIn('bob');
    const before = grants().length;
    const burst = (): Promise<Array<{ status: number; code: string | undefined }>> =>
      Promise.all(Array.from({ length: 6 }, (_, i) => call(bob, i % 2 === 0 ? '/api/orders/x' : '/api/billing/x')));
    expect(new Set((await burst()).map((r) => r.status))).toEqual(new Set([200]));
    let made = grants().slice(before);
    expect([count(made, 'refresh_token', ORDERS), count(made, 'refresh_token', BILLING)]).toEqual([1, 1]);

    // past the tokens' expiry by the gateway's clock: each route renews once
    stack.gateway.clock.advance(301_000);
    expect(new Set((await burst()).map((r) => r.status))).toEqual(new Set([200]));
    made = grants().slice(before);
    expect([count(made, 'refresh_token', ORDERS), count(made, 'refresh_token', BILLING)]).toEqual([2, 2]);
    expect(reuses()).toBe(0);
  });

  it('answers 403 route_token_rejected on a route whose token the provider refuses, keeping the session and the other routes', async () => {
    const carol = await stack.signedIn('carol');
    expect((await call(carol, '/api/billing/1')).status).toBe(200);
    expect(await call(carol, '/api/orders-admin/1')).toEqual({ status: 403, code: 'route_token_rejected' });
    expect((await call(carol, '/api/billing/1')).status).toBe(200);
    // the session's refresh token still works: a route renews after expiry
    stack.gateway.clock.advance(301_000);
    expect((await call(carol, '/api/orders/1')).status).toBe(200);
    expect((await call(carol, '/api/billing/1')).status).toBe(200);
    expect(reuses()).toBe(0);
  });

  it('sends the gateway\'s client-credentials token on a client route, to signed-in callers only, asking once', async () => {
    expect(await call(undefined, '/api/jobs/1')).toEqual({ status: 401, code: 'session_required' });
    const before = grants().length;
    const since = jobs.received.length;
    const [dave, erin] = [await stack.signedIn('dave'), await stack.signedIn('erin')];
    const answers = await Promise.all([call(dave, '/api/jobs/1'), call(erin, '/api/jobs/2'), call(dave, '/api/jobs/3')]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(count(grants().slice(before), 'client_credentials', JOBS)).toBe(1);
    const tokens = jobs.received.slice(since).map((r) => decodeJwt((r.headers.authorization ?? '').replace(/^Bearer /, '')));
    expect(tokens.map((t) => [t.aud, t.sub])).toEqual([
      [JOBS, stack.op.clientId],
      [JOBS, stack.op.clientId],
      [JOBS, stack.op.clientId],
    ]);
  });

  it('never writes a route token to the log', () => {
    for (const api of [orders, billing, jobs]) {
      for (const request of api.received) {
        const token = (request.headers.authorization ?? '').replace(/^Bearer /, '');
        if (token !== '') expect(stack.gateway.logText()).not.toContain(token);
      }
    }
  });
});
