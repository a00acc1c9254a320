import type { BrowserClient } from '../support/browser.js';
import { cookieHeader, rawRequest } from '../support/raw-http.js';
import { startStack, type Stack } from '../support/stack.js';

/**
 * Malformed input of every kind gets a clear 4xx, never a 5xx, a crash or a hang, and never costs
 * the browser its session.
 */
describe('bad input', () => {
  let stack: Stack;
  let browser: BrowserClient;
  let cookie: string;
  beforeAll(async () => {
    stack = await startStack();
    browser = await stack.signedIn();
    cookie = await cookieHeader(browser, stack.gateway.url);
  });
  afterAll(async () => {
    await stack.stop();
  });

  const cases: Array<[string, string, () => Record<string, string>, string | undefined]> = [
    ['GET', '/%', () => ({}), undefined],
    ['GET', '/auth/%', () => ({}), undefined],
    ['GET', '/api/%ZZ', () => ({ cookie, 'x-csrf': '1' }), undefined],
    ['GET', '/auth/login?returnTo[]=x&returnTo=y&prompt=none&prompt=login', () => ({}), undefined],
    ['GET', '/auth/callback?code=a&code=b&state=c', () => ({ cookie }), undefined],
    ['GET', `/auth/callback?code=y&state=${'x'.repeat(5000)}`, () => ({ cookie }), undefined],
    ['GET', '/auth/callback?error=%00%0d%0a<script>', () => ({ cookie }), undefined],
    ['POST', '/auth/logout', () => ({ cookie, 'content-type': 'application/json' }), '{bad json'],
    ['POST', '/auth/logout', () => ({ cookie, 'content-type': 'text/plain' }), 'sid=x'],
    ['POST', '/auth/logout', () => ({ cookie, 'content-type': 'application/x-www-form-urlencoded' }), 'sid[a]=1&sid=2'],
    ['POST', '/auth/backchannel-logout', () => ({ 'content-type': 'application/json' }), '{"logout_token":5}'],
    ['POST', '/auth/backchannel-logout', () => ({ 'content-type': 'application/x-www-form-urlencoded' }), 'logout_token=a.b.c'],
    ['GET', '/auth/me', () => ({ cookie: '__Host-bff-session=%%%' }), undefined],
    ['GET', '/auth/me', () => ({ cookie: `__Host-bff-session=${'A'.repeat(3000)}` }), undefined],
    ['DELETE', '/auth/me', () => ({ cookie }), undefined],
    ['PUT', '/healthz', () => ({}), undefined],
    ['GET', `/auth/${'a'.repeat(10_000)}`, () => ({}), undefined],
    ['GET', '/auth/logout?sid=%00', () => ({ cookie }), undefined],
    ['OPTIONS', '/api/x', () => ({ origin: 'http://evil.example', 'access-control-request-method': 'POST', cookie }), undefined],
    ['TRACE', '/api/x', () => ({ cookie }), undefined],
  ];

  it.each(cases.map(([method, path, headers, body]) => ({ method, path, headers, body, shown: path.length > 60 ? `${path.slice(0, 60)}…` : path })))(
    'answers $method $shown with a 4xx problem, not a 5xx',
    async ({ method, path, headers, body }) => {
    const res = await rawRequest(stack.gateway.url, path, { method, headers: headers(), ...(body === undefined ? {} : { body }) });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(String(res.headers['content-type'])).toMatch(/^(application\/problem\+json|text\/html)/);
    expect(res.body).not.toMatch(/\bat .*\.(js|ts):\d+/);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    },
  );

  it('falls back to / for a returnTo that is not even valid percent-encoding', async () => {
    const res = await rawRequest(stack.gateway.url, '/auth/login?returnTo=%ZZ');
    expect(res.status).toBe(302);
  });

  it('still serves the browser\'s session and logs nothing at error level afterwards', async () => {
    expect((await browser.request(`${stack.gateway.url}/auth/me`)).status).toBe(200);
    expect((await fetch(`${stack.gateway.url}/healthz`)).status).toBe(200);
    expect(stack.gateway.logLines().filter((line) => typeof line['level'] === 'number' && line['level'] >= 50)).toEqual([]);
  });
});
