import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Page, Response } from 'playwright-core';
import { sessionKey } from '../../src/session/session-cookie.js';
import { SESSION_STORE, type SessionStore, type SessionTokens } from '../../src/session/session-store.js';
import { describeInChromium, launchChromium, serveStaticSite, type ChromiumSession, type StaticSite } from '../support/chromium.js';
import { startStack, type Stack } from '../support/stack.js';
import { freePort } from '../support/ports.js';
import { startSampleApi, type RunningSampleApi } from '../../demo/sample-api.js';
import { decodeJwt } from 'jose';
import { eventually } from '../support/wait.js';
import { sessionIdInCookie } from '../support/gateway-state.js';

const API_AUDIENCE = 'urn:bff-demo:api';
const ORDERS_AUDIENCE = 'urn:bff-demo:orders';

const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));

interface SeenResponse {
  readonly url: string;
  readonly status: number;
  /** Every header, Set-Cookie included, as one searchable text. */
  readonly headers: string;
  readonly body: string;
}

/**
 * Every response a page receives, headers and body read as they arrive: Chromium forgets a body
 * once its page navigates away. A body that cannot be read fails the check instead of being skipped.
 */
class ResponseLog {
  private readonly entries: Array<{ url: string; seen?: SeenResponse; error?: string }> = [];

  record(response: Response): void {
    const entry: { url: string; seen?: SeenResponse; error?: string } = { url: response.url() };
    this.entries.push(entry);
    const status = response.status();
    // redirects have no body in Chromium; their Location and Set-Cookie are in the headers
    const body = status >= 300 && status < 400 ? Promise.resolve('') : response.body().then((bytes) => bytes.toString('utf8'));
    Promise.all([response.allHeaders(), body]).then(
      ([headers, text]) => (entry.seen = { url: entry.url, status, headers: JSON.stringify(headers), body: text }),
      (error: unknown) => (entry.error = String(error)),
    );
  }

  /** How many responses have arrived: a mark for since(). */
  get count(): number {
    return this.entries.length;
  }

  /** Every response from the mark `from` on, once all are read. */
  async since(from = 0): Promise<SeenResponse[]> {
    const entries = this.entries.slice(from);
    const unread = (): string[] => entries.filter((e) => e.seen === undefined && e.error === undefined).map((e) => e.url);
    await eventually(() => Promise.resolve(unread().length === 0 ? true : undefined), 10_000, 'every response read').catch(() => {
      throw new Error(`response bodies never finished loading: ${unread().join(', ')}`);
    });
    expect(entries.filter((e) => e.error !== undefined)).toEqual([]);
    return entries.flatMap((e) => (e.seen === undefined ? [] : [e.seen]));
  }
}

/** The attacker's page: forged requests a page on another site can make with the user's browser. */
function attackerPages(gatewayUrl: string): Record<string, { type: string; body: string }> {
  const html = `<!doctype html>
<html><head><meta charset="utf-8"><title>Win a prize</title></head>
<body data-gateway="${gatewayUrl}">
  <h1>Win a prize</h1>
  <form id="forged-logout" method="post" action="${gatewayUrl}/auth/logout" target="sink"><button id="forged-logout-submit">Claim</button></form>
  <iframe name="sink" title="sink"></iframe>
  <a id="forged-link" href="${gatewayUrl}/auth/logout">More prizes</a>
  <pre id="results"></pre>
  <script src="/attack.js"></script>
</body></html>`;
  // What the attacker's script could learn is written to #results.
  const script = `
const gateway = document.body.dataset.gateway;
const results = {};
Promise.all([
  fetch(gateway + '/api/whoami', { method: 'POST', credentials: 'include' })
    .then(async (response) => { results.fetch = 'read ' + response.status + ': ' + (await response.text()); })
    .catch((error) => { results.fetch = 'unreadable: ' + error.name; }),
  new Promise((resolve) => {
    const img = new Image();
    img.onload = () => { results.img = 'loaded'; resolve(); };
    img.onerror = () => { results.img = 'error'; resolve(); };
    img.src = gateway + '/auth/logout';
  }),
]).then(() => { document.getElementById('results').textContent = JSON.stringify(results); });
`;
  return { '/': { type: 'text/html; charset=utf-8', body: html }, '/attack.js': { type: 'text/javascript', body: script } };
}

describeInChromium('the sample SPA in Chromium', () => {
  let stack: Stack;
  let orders: RunningSampleApi | undefined;
  let browser: ChromiumSession;
  let attacker: StaticSite;
  let page: Page;
  let spa: string;
  let cookieName: string;
  const responses = new ResponseLog();
  const consoleErrors: string[] = [];

  /** The Bearer token the sample API received for `/api/whoami`: the access token the browser must never see. */
  function accessTokenSeenUpstream(): string {
    const request = stack.upstream.received.find((r) => r.url === '/api/whoami' && r.sub === 'alice');
    const authorization = request?.headers.authorization ?? '';
    expect(authorization).toMatch(/^Bearer \S{20,}$/);
    return authorization.slice('Bearer '.length);
  }

  /** The session's tokens, read from the gateway's store through the browser's (sealed) cookie. */
  async function sessionTokens(): Promise<SessionTokens> {
    const sealed = (await browser.context.cookies(spa)).find((c) => c.name === cookieName)?.value;
    if (sealed === undefined) throw new Error('Chromium holds no session cookie');
    const sid = await sessionIdInCookie(stack.gateway.app, sealed);
    if (typeof sid !== 'string') throw new Error('the session cookie carries no session id');
    const record = await stack.gateway.app.get<SessionStore>(SESSION_STORE).get(sessionKey(sid));
    if (record === undefined) throw new Error('the session cookie names no live session');
    return record.tokens;
  }

  async function apiStatusFromPage(): Promise<number> {
    return page.evaluate(async () => {
      const response = await fetch('/api/whoami', { headers: { 'X-CSRF': '1' } });
      await response.text(); // an unread body never finishes loading in Chromium's network log
      return response.status;
    });
  }

  /** The status the gateway logged for the next `method url` request after log line `since`: what it answered a forged request. */
  async function gatewayAnswered(method: string, url: string, since: number): Promise<number> {
    return eventually(
      () => {
        const line = stack.gateway.logLines().slice(since).find((l) => l['event'] === 'request' && l['method'] === method && l['url'] === url);
        return Promise.resolve(typeof line?.['status'] === 'number' ? line['status'] : undefined);
      },
      10_000,
      `${method} ${url} in the gateway's request log`,
    );
  }

  beforeAll(async () => {
    // The SPA on localhost, the attacker (and the provider) on 127.0.0.1: different sites, as in real life.
    // two APIs behind two routes, each taking only a token for its own audience (the demo's setup)
    const ordersPort = await freePort();
    stack = await startStack(
      (api) => ({
        PROXY_ROUTES: JSON.stringify([
          { prefix: '/api/orders', target: `http://127.0.0.1:${ordersPort}`, resource: ORDERS_AUDIENCE, scope: 'orders.read' },
          { prefix: '/api', target: api, resource: API_AUDIENCE, scope: 'api' },
        ]),
      }),
      { resources: { [ORDERS_AUDIENCE]: 'orders.read' } },
      'localhost',
    );
    orders = await startSampleApi({ issuer: stack.op.issuer, audience: ORDERS_AUDIENCE, port: ordersPort, host: '127.0.0.1' });
    spa = stack.gateway.config.server.publicUrl;
    cookieName = stack.gateway.config.session.cookie.name;
    attacker = await serveStaticSite(attackerPages(spa));
    browser = await launchChromium();
    page = await browser.context.newPage();
    page.on('response', (response) => responses.record(response));
    page.on('console', (message) => {
      // Chromium logs every 4xx as "Failed to load resource"; a 401 from /auth/me is how the SPA learns it is signed out
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) consoleErrors.push(`${message.text()} (${message.location().url})`);
    });
    page.on('pageerror', (error) => consoleErrors.push(error.message));
  });

  afterAll(async () => {
    await browser?.close();
    await attacker?.close();
    await stack?.stop();
    await orders?.close();
  });

  it('signs in through the provider\'s login and consent pages and returns to the deep link, signed in', async () => {
    await page.goto(`${spa}/orders/42`);
    await page.getByTestId('signed-out').waitFor();
    await page.getByTestId('sign-in').click();

    await page.waitForURL((url) => url.origin === stack.op.issuer && url.pathname.startsWith('/interaction/'));
    await page.locator('input[name="login"]').fill('alice');
    await page.locator('input[name="password"]').fill('any password');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.getByRole('button', { name: 'Continue' }).click();

    await page.waitForURL(`${spa}/orders/42`);
    await page.getByTestId('signed-in').waitFor();
    expect(await page.getByTestId('user-name').textContent()).toBe('Alice Example');
    const expiresAt = Date.parse((await page.getByTestId('expires-at').getAttribute('datetime')) ?? '');
    expect(expiresAt).toBeGreaterThan(Date.now());
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + stack.gateway.config.session.absoluteTimeoutS * 1000);
    expect(await page.getByTestId('expires-at').textContent()).not.toBe('');
    expect(await page.getByTestId('signed-out').isHidden()).toBe(true);
  });

  it('calls the API through the gateway, which forwards it with the Bearer token and without the cookie', async () => {
    await page.getByTestId('call-api').click();
    await page.getByTestId('api-answer').waitFor();
    expect(await page.getByTestId('api-sub').textContent()).toBe('alice');
    expect(JSON.parse((await page.getByTestId('api-result').textContent()) ?? '{}')).toEqual({ sub: 'alice', name: 'Alice Example', method: 'GET', path: '/api/whoami', audience: API_AUDIENCE });
    // the second API, behind its own route, with a token for its own audience
    await page.getByTestId('orders-answer').waitFor();
    expect(await page.getByTestId('orders-sub').textContent()).toBe('alice');
    expect(JSON.parse((await page.getByTestId('orders-result').textContent()) ?? '{}')).toMatchObject({ path: '/api/orders/whoami', audience: ORDERS_AUDIENCE });
    expect((orders?.received ?? []).map((r) => decodeJwt((r.headers.authorization ?? '').replace(/^Bearer /, '')).aud)).toEqual([ORDERS_AUDIENCE]);

    const received = stack.upstream.received.filter((r) => r.url === '/api/whoami');
    expect(received).toHaveLength(1);
    expect(received[0]?.sub).toBe('alice');
    expect(received[0]?.headers.authorization).toMatch(/^Bearer /);
    expect(received[0]?.headers.cookie).toBeUndefined();

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}signed-in.png`, fullPage: true });
  });

  it('keeps every token out of the page: no readable cookie, nothing in storage, no token in any response', async () => {
    const accessToken = accessTokenSeenUpstream();
    const tokens = await sessionTokens();
    // each route's API got its own token, kept in the session beside the session's own
    expect(tokens.routes?.['/api']?.accessToken).toBe(accessToken);
    expect(tokens.routes?.['/api/orders']?.accessToken).toEqual(expect.any(String));
    expect(tokens.refreshToken).toEqual(expect.any(String));
    const secrets = {
      accessToken: tokens.accessToken,
      apiRouteToken: accessToken,
      ordersRouteToken: tokens.routes?.['/api/orders']?.accessToken ?? '',
      refreshToken: tokens.refreshToken ?? '',
    };

    const cookie = (await browser.context.cookies(spa)).find((c) => c.name === cookieName);
    expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Lax', path: '/' });
    // page scripts as strings: the test project compiles without the DOM library
    expect(await page.evaluate<string>('document.cookie')).not.toContain(cookieName);
    expect(await page.evaluate<unknown>('({ local: { ...localStorage }, session: { ...sessionStorage } })')).toEqual({ local: {}, session: {} });

    const seen = await responses.since();
    expect(seen.some((r) => r.url === `${spa}/api/whoami` && r.status === 200)).toBe(true);
    const leaks = seen.flatMap((response) =>
      Object.entries(secrets)
        .filter(([, secret]) => `${response.headers}\n${response.body}`.includes(secret))
        .map(([name]) => `${name} in ${response.status} ${response.url}`),
    );
    expect(leaks).toEqual([]);
  });

  it('runs the sample SPA under its strict Content-Security-Policy without a violation or a script error', () => {
    expect(consoleErrors).toEqual([]);
  });

  it('gives a cross-site page nothing: forged requests neither end the session nor reach the API, and nothing is readable', async () => {
    const upstreamCalls = stack.upstream.received.length;
    const attack = await browser.context.newPage();
    try {
      const beforeLoad = stack.gateway.logLines().length;
      await attack.goto(`${attacker.url}/`);
      await attack.locator('#results', { hasText: /\S/ }).waitFor();
      // The gateway refused the forged API call (no X-CSRF header; SameSite=Lax kept the cookie home too) ...
      expect([401, 403]).toContain(await gatewayAnswered('POST', '/api/whoami', beforeLoad));
      // ... the image ended nothing (no cookie, no logout value): straight to the post-logout page ...
      expect(await gatewayAnswered('GET', '/auth/logout', beforeLoad)).toBe(302);
      // ... and the attacker's script could read neither answer.
      expect(JSON.parse((await attack.locator('#results').textContent()) ?? '{}')).toEqual({ fetch: 'unreadable: TypeError', img: 'error' });

      const beforeForm = stack.gateway.logLines().length;
      await attack.locator('#forged-logout-submit').click();
      expect(await gatewayAnswered('POST', '/auth/logout', beforeForm)).toBe(400);

      // A top-level link does carry the Lax cookie, but not the session's logout value.
      const beforeLink = stack.gateway.logLines().length;
      await attack.locator('#forged-link').click();
      expect(await gatewayAnswered('GET', '/auth/logout', beforeLink)).toBe(400);
      expect(await attack.locator('h1').textContent()).not.toContain('prize');
    } finally {
      await attack.close();
    }

    expect(stack.upstream.received.length).toBe(upstreamCalls);
    await page.reload();
    await page.getByTestId('signed-in').waitFor();
    await page.getByTestId('call-api').click();
    await page.getByTestId('api-answer').waitFor();
    expect(await page.getByTestId('api-sub').textContent()).toBe('alice');
    expect(stack.upstream.received.length).toBe(upstreamCalls + 1);
  });

  it('signs out through the provider\'s end-session page and ends on the SPA signed out, with /api answering 401', async () => {
    const { accessToken, refreshToken } = await sessionTokens();
    const signOutStarts = responses.count;
    await page.getByTestId('sign-out').click();

    await page.waitForURL((url) => url.origin === stack.op.issuer);
    await page.getByRole('heading', { name: `Do you want to sign-out from ${new URL(stack.op.issuer).host}?` }).waitFor();
    await page.getByRole('button', { name: 'Yes, sign me out' }).click();

    // back from the provider with the end-session request's state (RP-Initiated Logout §3)
    await page.waitForURL((url) => url.href.startsWith(`${spa}/?state=`));
    await page.getByTestId('signed-out').waitFor();
    expect(await page.getByTestId('signed-in').isHidden()).toBe(true);
    expect((await browser.context.cookies(spa)).map((c) => c.name)).not.toContain(cookieName);
    expect(await apiStatusFromPage()).toBe(401);

    // The logout redirects carry the ID token as id_token_hint (RP-Initiated Logout 1.0), never the others.
    const signOut = await responses.since(signOutStarts);
    expect(signOut.some((r) => r.url.startsWith(`${stack.op.issuer}/session/end`))).toBe(true);
    const secrets = [accessToken, refreshToken ?? accessToken];
    expect(signOut.filter((r) => secrets.some((secret) => `${r.headers}\n${r.body}`.includes(secret))).map((r) => r.url)).toEqual([]);
    expect(browser.blocked).toEqual([]);
  });
});
