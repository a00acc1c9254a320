import type { BrowserClient } from '../support/browser.js';
import { startBehaviourUpstream, type TestUpstream } from '../support/fault-upstreams.js';
import { startStack, type Stack } from '../support/stack.js';

/** Route policies through the real gateway and provider: who may call, with which token, which methods, how long. */
describe('route policy', () => {
  let stack: Stack;
  let upstream: TestUpstream;
  let alice: BrowserClient;

  beforeAll(async () => {
    upstream = await startBehaviourUpstream();
    stack = await startStack((api) => ({
      UPSTREAM_TIMEOUT_S: '30',
      PROXY_ROUTES: JSON.stringify([
        { prefix: '/api/public', target: upstream.url, token: 'none', anonymous: true, methods: ['GET', 'HEAD'] },
        { prefix: '/api/maybe', target: upstream.url, token: 'user-or-none' },
        { prefix: '/api/quick', target: upstream.url, timeoutS: 1 },
        { prefix: '/api', target: api },
      ]),
    }));
    alice = await stack.signedIn('alice');
  }, 60_000);
  afterAll(async () => {
    await stack.stop();
    await upstream.close();
  });

  async function call(browser: BrowserClient | undefined, path: string, method = 'GET'): Promise<{ status: number; code: string | undefined; vary: string | null; authorization: string | undefined; forwarded: boolean }> {
    const before = upstream.seen.length;
    const init = { method, headers: { 'x-csrf': '1', authorization: 'Bearer from-the-browser' } };
    const response = browser === undefined ? await fetch(`${stack.gateway.url}${path}`, init) : await browser.request(`${stack.gateway.url}${path}`, init);
    const body = await response.text();
    const seen = upstream.seen.slice(before);
    return { status: response.status, code: /"code":"([a-z_]+)"/.exec(body)?.[1], vary: response.headers.get('vary'), authorization: seen[0]?.headers.authorization, forwarded: seen.length > 0 };
  }

  it('forwards an anonymous token-none route without a session and without any Authorization', async () => {
    expect(await call(undefined, '/api/public/news')).toMatchObject({ status: 200, authorization: undefined, forwarded: true });
    expect(await call(alice, '/api/public/news')).toMatchObject({ status: 200, authorization: undefined, forwarded: true });
  });

  it('still requires X-CSRF on an anonymous route', async () => {
    const response = await fetch(`${stack.gateway.url}/api/public/news`);
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ code: 'csrf_header_missing' });
  });

  it('answers 405 method_not_allowed to a method the route does not list, forwarding nothing', async () => {
    expect(await call(undefined, '/api/public/news', 'POST')).toMatchObject({ status: 405, code: 'method_not_allowed', forwarded: false });
    expect(await call(alice, '/api/public/news', 'DELETE')).toMatchObject({ status: 405, code: 'method_not_allowed', forwarded: false });
    // RFC 9110 §15.5.6: a 405 lists what the resource allows
    const refused = await fetch(`${stack.gateway.url}/api/public/news`, { method: 'PUT', headers: { 'x-csrf': '1' } });
    expect(refused.status).toBe(405);
    expect(refused.headers.get('allow')).toBe('GET, HEAD');
  });

  it('forwards user-or-none anonymously when signed out and with the user\'s token when signed in, with Vary: Cookie', async () => {
    const out = await call(undefined, '/api/maybe/feed');
    expect(out).toMatchObject({ status: 200, authorization: undefined, forwarded: true });
    expect(out.vary).toMatch(/(^|, )Cookie$/);
    const signedIn = await call(alice, '/api/maybe/feed');
    expect(signedIn).toMatchObject({ status: 200, forwarded: true });
    expect(signedIn.authorization).toMatch(/^Bearer eyJ/);
    expect(signedIn.vary).toMatch(/(^|, )Cookie$/);
    expect((await call(alice, '/api/whoami')).vary).toBeNull();
  });

  it('gives a route its own timeout: 504 after its timeoutS while UPSTREAM_TIMEOUT_S is longer', async () => {
    expect(await call(alice, '/api/quick/hang')).toMatchObject({ status: 504, code: 'upstream_timeout' });
  });
});
