import type { BrowserClient } from '../support/browser.js';
import { sessionOf } from '../support/gateway-state.js';
import { startStack, type Stack } from '../support/stack.js';

/**
 * Idle and absolute timeouts, observed through the gateway's own store: tests move a session's
 * timestamps instead of waiting minutes (the arithmetic itself has unit tests in session-timing.spec.ts).
 */
describe('session timeouts', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ SESSION_IDLE_TIMEOUT_S: '1800', SESSION_ABSOLUTE_TIMEOUT_S: '28800' });
  });
  afterAll(async () => {
    await stack.stop();
  });

  const me = (browser: BrowserClient, query = ''): Promise<Response> => browser.request(`${stack.gateway.url}/auth/me${query}`);

  /** Pretends the session was last extended `ageMs` ago. */
  async function lastSlidAgo(browser: BrowserClient, ageMs: number): Promise<number> {
    const { store, record } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    const idleExpiresAt = Date.now() - ageMs + 1800 * 1000;
    await store.create({ ...record, idleExpiresAt });
    return idleExpiresAt;
  }

  it('reports when the session ends and slides the idle timeout on activity', async () => {
    const browser = await stack.signedIn();
    const old = await lastSlidAgo(browser, 5 * 60_000);
    const body = (await (await me(browser)).json()) as { expiresAt: string };
    const { record } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    expect(record.idleExpiresAt).toBeGreaterThan(old + 4 * 60_000);
    expect(Date.parse(body.expiresAt)).toBe(Math.min(record.idleExpiresAt, record.absoluteExpiresAt));
  });

  it('does not slide the idle timeout for /auth/me?slide=false', async () => {
    const browser = await stack.signedIn();
    const old = await lastSlidAgo(browser, 5 * 60_000);
    const body = (await (await me(browser, '?slide=false')).json()) as { expiresAt: string };
    expect(Date.parse(body.expiresAt)).toBe(old);
    expect((await sessionOf(stack.gateway.app, browser, stack.gateway.url)).record.idleExpiresAt).toBe(old);
  });

  it('writes the idle extension at most once a minute', async () => {
    const browser = await stack.signedIn();
    const recent = await lastSlidAgo(browser, 30_000);
    await me(browser);
    await browser.request(`${stack.gateway.url}/api/whoami`, { headers: { 'x-csrf': '1' } });
    expect((await sessionOf(stack.gateway.app, browser, stack.gateway.url)).record.idleExpiresAt).toBe(recent);
  });

  it('never moves the absolute timeout', async () => {
    const browser = await stack.signedIn();
    const { store, record } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    const absoluteExpiresAt = Date.now() + 120_000;
    await store.create({ ...record, absoluteExpiresAt, idleExpiresAt: Date.now() + 1800 * 1000 - 5 * 60_000 });
    const body = (await (await me(browser)).json()) as { expiresAt: string };
    expect(Date.parse(body.expiresAt)).toBe(absoluteExpiresAt);
    expect((await sessionOf(stack.gateway.app, browser, stack.gateway.url)).record.absoluteExpiresAt).toBe(absoluteExpiresAt);
  });

  it('treats an idle-expired session exactly like no session, on /auth/me and /api', async () => {
    const browser = await stack.signedIn();
    const { store, record } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    await store.create({ ...record, idleExpiresAt: Date.now() - 1000 });
    expect(await (await me(browser)).json()).toMatchObject({ status: 401, code: 'session_required' });
    const api = await browser.request(`${stack.gateway.url}/api/whoami`, { headers: { 'x-csrf': '1' } });
    expect(api.status).toBe(401);
    expect(await api.json()).toMatchObject({ code: 'session_required' });
  });

  it('treats an absolute-expired session exactly like no session', async () => {
    const browser = await stack.signedIn();
    const { store, record } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    await store.create({ ...record, absoluteExpiresAt: Date.now() - 1000 });
    expect((await me(browser)).status).toBe(401);
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
