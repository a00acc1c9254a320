import type { SessionRecord } from '../../src/session/session-store.js';
import type { BrowserClient } from '../support/browser.js';
import { sessionOf } from '../support/gateway-state.js';
import { startStack, type Stack } from '../support/stack.js';

/**
 * Idle and absolute timeouts, observed through the gateway's own store: tests move the gateway's
 * clock instead of waiting minutes (the arithmetic itself has unit tests in session-timing.spec.ts).
 */
describe('session timeouts', () => {
  const IDLE_MS = 1800 * 1000;
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ SESSION_IDLE_TIMEOUT_S: '1800', SESSION_ABSOLUTE_TIMEOUT_S: '28800' });
  });
  afterEach(() => {
    // the next sign-in's ID token is checked against this clock too
    stack.gateway.clock.reset();
  });
  afterAll(async () => {
    await stack.stop();
  });

  const me = (browser: BrowserClient, query = ''): Promise<Response> => browser.request(`${stack.gateway.url}/auth/me${query}`);
  const stored = async (browser: BrowserClient): Promise<SessionRecord> => (await sessionOf(stack.gateway.app, browser, stack.gateway.url)).record;

  it('reports when the session ends and slides the idle timeout on activity', async () => {
    const browser = await stack.signedIn();
    const old = (await stored(browser)).idleExpiresAt;
    stack.gateway.clock.advance(5 * 60_000);
    const body = (await (await me(browser)).json()) as { expiresAt: string };
    const record = await stored(browser);
    expect(record.idleExpiresAt).toBeGreaterThan(old + 4 * 60_000);
    expect(Date.parse(body.expiresAt)).toBe(Math.min(record.idleExpiresAt, record.absoluteExpiresAt));
  });

  it('does not slide the idle timeout for /auth/me?slide=false', async () => {
    const browser = await stack.signedIn();
    const old = (await stored(browser)).idleExpiresAt;
    stack.gateway.clock.advance(5 * 60_000);
    const body = (await (await me(browser, '?slide=false')).json()) as { expiresAt: string };
    expect(Date.parse(body.expiresAt)).toBe(old);
    expect((await stored(browser)).idleExpiresAt).toBe(old);
  });

  it('writes the idle extension at most once a minute', async () => {
    const browser = await stack.signedIn();
    const recent = (await stored(browser)).idleExpiresAt;
    stack.gateway.clock.advance(30_000);
    await me(browser);
    await browser.request(`${stack.gateway.url}/api/whoami`, { headers: { 'x-csrf': '1' } });
    expect((await stored(browser)).idleExpiresAt).toBe(recent);
  });

  it('never moves the absolute timeout, and ends the session there however active it was', async () => {
    const browser = await stack.signedIn();
    const { absoluteExpiresAt } = await stored(browser);
    // active every 25 minutes (inside the idle timeout) until two minutes before the absolute end
    while (stack.gateway.clock.now() + 25 * 60_000 < absoluteExpiresAt - 120_000) {
      stack.gateway.clock.advance(25 * 60_000);
      expect((await me(browser)).status).toBe(200);
    }
    stack.gateway.clock.advance(absoluteExpiresAt - 120_000 - stack.gateway.clock.now());
    const body = (await (await me(browser)).json()) as { expiresAt: string };
    expect(Date.parse(body.expiresAt)).toBe(absoluteExpiresAt);
    expect((await stored(browser)).absoluteExpiresAt).toBe(absoluteExpiresAt);
    stack.gateway.clock.advance(121_000);
    expect(await (await me(browser)).json()).toMatchObject({ status: 401, code: 'session_required' });
  });

  it('treats an idle-expired session exactly like no session, on /auth/me and /api', async () => {
    const browser = await stack.signedIn();
    stack.gateway.clock.advance(IDLE_MS + 1000);
    expect(await (await me(browser)).json()).toMatchObject({ status: 401, code: 'session_required' });
    const api = await browser.request(`${stack.gateway.url}/api/whoami`, { headers: { 'x-csrf': '1' } });
    expect(api.status).toBe(401);
    expect(await api.json()).toMatchObject({ code: 'session_required' });
  });

  it('keeps a session used just inside the idle timeout', async () => {
    const browser = await stack.signedIn();
    stack.gateway.clock.advance(IDLE_MS - 1000);
    expect((await me(browser)).status).toBe(200);
  });
});

describe('a short idle timeout', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ SESSION_IDLE_TIMEOUT_S: '5' });
  });
  afterAll(async () => {
    await stack.stop();
  });

  // real time is the behaviour under test here: 8 requests 1 s apart span more than the 5 s timeout
  it('keeps a session used every second alive past SESSION_IDLE_TIMEOUT_S=5 (an idle timeout under a minute used to never slide)', async () => {
    const browser = await stack.signedIn();
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const path = i % 2 === 0 ? '/auth/me' : '/api/whoami';
      statuses.push((await browser.request(`${stack.gateway.url}${path}`, { headers: { 'x-csrf': '1' } })).status);
    }
    expect(statuses).toEqual(Array.from({ length: 8 }, () => 200));
  });
});

describe('API_CSRF_HEADER', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ API_CSRF_HEADER: 'X-Requested-By' });
  });
  afterAll(async () => {
    await stack.stop();
  });

  it('renames the anti-forgery header /api/* requires', async () => {
    const browser = await stack.signedIn();
    const withOld = await browser.request(`${stack.gateway.url}/api/whoami`, { headers: { 'x-csrf': '1' } });
    expect(withOld.status).toBe(403);
    expect(await withOld.json()).toMatchObject({ code: 'csrf_header_missing', detail: 'API requests must carry the header x-requested-by: 1.' });
    expect((await browser.request(`${stack.gateway.url}/api/whoami`, { headers: { 'x-requested-by': '1' } })).status).toBe(200);
  });
});
