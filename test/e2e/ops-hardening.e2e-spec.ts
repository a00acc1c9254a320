import { startGateway, type RunningGateway } from '../support/gateway.js';
import { startStack, type Stack } from '../support/stack.js';

const JSON_ACCEPT = { accept: 'application/json' };

function expectGatewaySecurityHeaders(res: Response): void {
  expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  expect(res.headers.get('x-frame-options')).toBe('DENY');
  expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
  expect(res.headers.get('referrer-policy')).toBe('no-referrer');
}

describe('security headers on the gateway\'s own responses', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack.stop();
  });

  it('sends nosniff, frame-ancestors none, X-Frame-Options DENY and no-referrer on JSON, problems, redirects and pages', async () => {
    const browser = await stack.signedIn();
    const responses = [
      await browser.request(`${stack.gateway.url}/auth/me`),
      await fetch(`${stack.gateway.url}/auth/me`, { headers: JSON_ACCEPT }),
      (await browser.navigate(`${stack.gateway.url}/auth/login`, { stopAt: () => true })).response,
      await fetch(`${stack.gateway.url}/auth/callback?state=forged&code=forged`, { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } }),
      await fetch(`${stack.gateway.url}/healthz`),
      await fetch(`${stack.gateway.url}/`, { headers: { accept: 'text/html' } }),
      await fetch(`${stack.gateway.url}/no/such/file.js`),
    ];
    expect(responses.map((res) => res.status)).toEqual([200, 401, 302, 400, 200, 200, 404]);
    for (const res of responses) expectGatewaySecurityHeaders(res);
  });

  it('sends Cache-Control: no-store on every /auth/* response', async () => {
    const browser = await stack.signedIn();
    const me = await browser.request(`${stack.gateway.url}/auth/me`);
    const login = (await browser.navigate(`${stack.gateway.url}/auth/login`, { stopAt: () => true })).response;
    const problem = await fetch(`${stack.gateway.url}/auth/me`, { headers: JSON_ACCEPT });
    const page = await fetch(`${stack.gateway.url}/auth/callback?state=forged&code=forged`, { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } });
    for (const res of [me, login, problem, page]) expect(res.headers.get('cache-control')).toBe('no-store');
  });
});

describe('request limits', () => {
  let gateway: RunningGateway;
  beforeAll(async () => {
    gateway = await startGateway();
  });
  afterAll(async () => {
    await gateway.close();
  });

  it('answers oversized request headers with a 431 problem', async () => {
    const res = await fetch(`${gateway.url}/healthz`, { headers: { 'x-padding': 'a'.repeat(20 * 1024) } });
    expect(res.status).toBe(431);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(await res.json()).toMatchObject({ status: 431, code: 'request_header_fields_too_large', type: '/problems/request_header_fields_too_large' });
  });

  it.each([
    ['a JSON body', 'application/json', JSON.stringify({ sid: 'x'.repeat(70 * 1024) })],
    ['a form body', 'application/x-www-form-urlencoded', `sid=${'x'.repeat(70 * 1024)}`],
  ])('answers %s over 64 KiB on the gateway\'s own endpoints with a 413 problem', async (_what, type, body) => {
    const res = await fetch(`${gateway.url}/auth/logout`, { method: 'POST', headers: { ...JSON_ACCEPT, 'content-type': type, 'x-request-id': 'too-large-1' }, body });
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toEqual({ type: '/problems/payload_too_large', title: 'Request body too large', status: 413, code: 'payload_too_large', instance: 'too-large-1' });
  });
});

describe('rate limit on /auth/login', () => {
  const gateways: RunningGateway[] = [];
  const start = async (env: Record<string, string>): Promise<RunningGateway> => {
    const gateway = await startGateway(env);
    gateways.push(gateway);
    return gateway;
  };
  afterAll(async () => {
    await Promise.all(gateways.map((gateway) => gateway.close()));
  });

  const login = (gateway: RunningGateway, headers: Record<string, string> = {}): Promise<Response> => fetch(`${gateway.url}/auth/login`, { headers: { ...JSON_ACCEPT, ...headers }, redirect: 'manual' });

  it('answers 429 with Retry-After and a problem once a client address passes AUTH_RATE_LIMIT_PER_MINUTE', async () => {
    const gateway = await start({ AUTH_RATE_LIMIT_PER_MINUTE: '3' });
    // no provider here: allowed logins answer 503 provider_unavailable, which is not what is counted
    for (let i = 0; i < 3; i++) expect((await login(gateway)).status).not.toBe(429);
    const refused = await login(gateway, { 'x-request-id': 'rate-limited-1' });
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(120);
    expect(await refused.json()).toEqual({
      type: '/problems/login_rate_limited',
      title: 'Too many sign-in attempts',
      status: 429,
      code: 'login_rate_limited',
      detail: `Too many sign-in requests from this address; try again in ${retryAfter} s.`,
      instance: 'rate-limited-1',
    });
    // a browser navigation gets the same status on an HTML page
    const page = await fetch(`${gateway.url}/auth/login?returnTo=/x`, { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } });
    expect(page.status).toBe(429);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    // other endpoints are not limited
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${gateway.url}/auth/me`, { headers: JSON_ACCEPT })).status).toBe(401);
  });

  it('lets a refused client in again once its Retry-After has passed on the gateway\'s clock', async () => {
    const gateway = await start({ AUTH_RATE_LIMIT_PER_MINUTE: '2' });
    for (let i = 0; i < 2; i++) expect((await login(gateway)).status).not.toBe(429);
    const refused = await login(gateway);
    expect(refused.status).toBe(429);
    gateway.clock.advance(Number(refused.headers.get('retry-after')) * 1000);
    expect((await login(gateway)).status).not.toBe(429);
  });

  it('ignores X-Forwarded-For when TRUST_PROXY is empty, so a client cannot spread its requests over made-up addresses', async () => {
    const gateway = await start({ AUTH_RATE_LIMIT_PER_MINUTE: '2' });
    const statuses = [];
    for (let i = 1; i <= 3; i++) statuses.push((await login(gateway, { 'x-forwarded-for': `198.51.100.${i}` })).status);
    expect(statuses[2]).toBe(429);
  });

  it('counts the X-Forwarded-For client per address when TRUST_PROXY names the proxy', async () => {
    const gateway = await start({ AUTH_RATE_LIMIT_PER_MINUTE: '2', TRUST_PROXY: '127.0.0.1' });
    const from = (address: string): Promise<Response> => login(gateway, { 'x-forwarded-for': address });
    expect((await from('198.51.100.1')).status).not.toBe(429);
    expect((await from('198.51.100.1')).status).not.toBe(429);
    expect((await from('198.51.100.1')).status).toBe(429);
    expect((await from('198.51.100.2')).status).not.toBe(429);
    // the right-most untrusted address counts: a client cannot prepend its own entries
    expect((await from('203.0.113.9, 198.51.100.1')).status).toBe(429);
  });

  it('does not limit when AUTH_RATE_LIMIT_PER_MINUTE is 0', async () => {
    const gateway = await start({ AUTH_RATE_LIMIT_PER_MINUTE: '0' });
    const statuses = await Promise.all(Array.from({ length: 30 }, () => login(gateway).then((res) => res.status)));
    expect(statuses).not.toContain(429);
  });
});
