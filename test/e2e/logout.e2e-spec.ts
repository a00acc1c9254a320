import type { BrowserClient } from '../support/browser.js';
import { sessionOf } from '../support/gateway-state.js';
import { startStack, type Stack } from '../support/stack.js';
import { refreshGrantAsClient } from '../support/client-grants.js';

describe('logout', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack.stop();
  });

  async function logoutUrl(browser: BrowserClient): Promise<string> {
    const me = (await (await browser.request(`${stack.gateway.url}/auth/me`)).json()) as { logoutUrl: string };
    return me.logoutUrl;
  }

  async function isSignedIn(browser: BrowserClient): Promise<boolean> {
    return (await browser.request(`${stack.gateway.url}/auth/me`)).status === 200;
  }

  it('ends the session via logoutUrl and reaches the provider\'s end-session page with id_token_hint', async () => {
    const browser = await stack.signedIn();
    const res = await browser.request(`${stack.gateway.url}${await logoutUrl(browser)}`);
    expect(res.status).toBe(302);
    const location = new URL(res.headers.get('location') ?? '');
    expect(`${location.origin}${location.pathname}`).toBe(`${stack.op.issuer}/session/end`);
    expect(location.searchParams.get('id_token_hint')).toMatch(/^eyJ/);
    expect(location.searchParams.get('post_logout_redirect_uri')).toBe(`${stack.gateway.url}/`);
    expect(location.searchParams.get('client_id')).toBe(stack.op.clientId);
    // some providers (glewlwyd) return to post_logout_redirect_uri only when state is sent
    expect(location.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{22,}$/);
    expect(res.headers.get('set-cookie')).toMatch(/__Host-bff-session=;.*Max-Age=0|__Host-bff-session=;.*Expires=Thu, 01 Jan 1970/);
    expect(await isSignedIn(browser)).toBe(false);

    const page = await browser.navigate(location.href);
    expect(page.response.status).toBe(200);
    const done = await browser.confirmProviderLogout(page.response);
    // the provider comes back with the state it was sent (RP-Initiated Logout §3)
    expect(done.visited.at(-1)).toBe(`${stack.gateway.url}/?state=${location.searchParams.get('state') ?? ''}`);
  });

  it('revokes the refresh token at the provider', async () => {
    const browser = await stack.signedIn();
    const { record } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    await browser.request(`${stack.gateway.url}${await logoutUrl(browser)}`);
    // one attempt only: a second use of a rotated refresh token would fail anyway
    const res = await refreshGrantAsClient(`${stack.op.issuer}/token`, record.tokens.refreshToken, { clientId: stack.op.clientId, secret: stack.op.clientSecret });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_grant');
  });

  it.each([
    ['a wrong sid', '/auth/logout?sid=not-this-sessions-value'],
    ['no sid', '/auth/logout'],
  ])('answers 400 to %s and keeps the session', async (_what, path) => {
    const browser = await stack.signedIn();
    const res = await browser.request(`${stack.gateway.url}${path}`, { headers: { accept: 'application/json' } });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'logout_request_invalid' });
    expect(await isSignedIn(browser)).toBe(true);
  });

  it('shows a browser navigation with a wrong sid an HTML page, not JSON', async () => {
    const browser = await stack.signedIn();
    const res = await browser.request(`${stack.gateway.url}/auth/logout?sid=wrong`, { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await isSignedIn(browser)).toBe(true);
  });

  it('answers a fetch POST with X-CSRF: 1 with 200 {redirectTo} and ends the session', async () => {
    const browser = await stack.signedIn();
    const res = await browser.request(`${stack.gateway.url}/auth/logout`, { method: 'POST', headers: { 'x-csrf': '1' } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { redirectTo: string };
    expect(body.redirectTo.startsWith(`${stack.op.issuer}/session/end?`)).toBe(true);
    expect(await isSignedIn(browser)).toBe(false);
  });

  it('sends a fresh random state with every end-session redirect', async () => {
    const states: Array<string | null> = [];
    for (const login of ['sara', 'sean']) {
      const browser = await stack.signedIn(login);
      const res = await browser.request(`${stack.gateway.url}/auth/logout`, { method: 'POST', headers: { 'x-csrf': '1' } });
      states.push(new URL(((await res.json()) as { redirectTo: string }).redirectTo).searchParams.get('state'));
    }
    expect(states).toEqual([expect.stringMatching(/^[A-Za-z0-9_-]{22,}$/), expect.stringMatching(/^[A-Za-z0-9_-]{22,}$/)]);
    expect(states[0]).not.toBe(states[1]);
  });

  it('accepts a form POST carrying the session\'s sid with a 302', async () => {
    const browser = await stack.signedIn();
    const sid = new URL(await logoutUrl(browser), stack.gateway.url).searchParams.get('sid') ?? '';
    const res = await browser.request(`${stack.gateway.url}/auth/logout`, { method: 'POST', form: { sid } });
    expect(res.status).toBe(302);
    expect(await isSignedIn(browser)).toBe(false);
  });

  it('refuses a form POST without sid (a cross-site form) and keeps the session', async () => {
    const browser = await stack.signedIn();
    const res = await browser.request(`${stack.gateway.url}/auth/logout`, { method: 'POST', form: { anything: 'x' }, headers: { accept: 'application/json' } });
    expect(res.status).toBe(400);
    expect(await isSignedIn(browser)).toBe(true);
  });

  it('sends a browser without a session straight to the post-logout page', async () => {
    const res = await stack.browser().request(`${stack.gateway.url}/auth/logout?sid=whatever`);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe(`${stack.gateway.url}/`);
  });
});
