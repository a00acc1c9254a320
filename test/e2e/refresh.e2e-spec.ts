import type { BrowserClient } from '../support/browser.js';
import { sessionOf } from '../support/gateway-state.js';
import { startStack, type Stack } from '../support/stack.js';

function bearerOf(headers: Record<string, string | string[] | undefined>): string {
  const value = headers['authorization'];
  return typeof value === 'string' ? value.replace(/^Bearer /, '') : '';
}

describe('access token refresh', () => {
  let stack: Stack;
  beforeAll(async () => {
    // tokens live 60 s and are refreshed 30 s before expiry; tests age a session's token by moving
    // the gateway's clock (the provider keeps real time, so it still honours the token)
    stack = await startStack({ TOKEN_REFRESH_SKEW_S: '30' }, { accessTokenTtlS: 60 });
  });
  afterEach(() => {
    stack.gateway.clock.reset();
  });
  afterAll(async () => {
    await stack.stop();
  });

  const call = (browser: BrowserClient): Promise<Response> => browser.request(`${stack.gateway.url}/api/whoami`, { headers: { 'x-csrf': '1' } });

  /** Makes the session's access token expire within the refresh skew, for the gateway (the provider still honours it). */
  function ageToken(): void {
    stack.gateway.clock.advance(55_000);
  }

  it('forwards a fresh access token without refreshing it', async () => {
    const browser = await stack.signedIn();
    const { record } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    expect((await call(browser)).status).toBe(200);
    expect(bearerOf(stack.upstream.received.at(-1)?.headers ?? {})).toBe(record.tokens.accessToken);
  });

  it('refreshes an expiring access token before forwarding and stores the rotated refresh token', async () => {
    const browser = await stack.signedIn();
    ageToken();
    const before = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    const res = await call(browser);
    expect(res.status).toBe(200);
    const forwarded = bearerOf(stack.upstream.received.at(-1)?.headers ?? {});
    expect(forwarded).not.toBe(before.record.tokens.accessToken);
    const after = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    expect(after.record.tokens.accessToken).toBe(forwarded);
    expect(after.record.tokens.refreshToken).toBeDefined();
    expect(after.record.tokens.refreshToken).not.toBe(before.record.tokens.refreshToken);
  });

  it('refreshes once for 20 simultaneous calls and forwards all 20 with the new token', async () => {
    const browser = await stack.signedIn();
    ageToken();
    const { record } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    const before = stack.upstream.received.length;
    const responses = await Promise.all(Array.from({ length: 20 }, () => call(browser)));
    expect(responses.map((r) => r.status)).toEqual(Array.from({ length: 20 }, () => 200));
    const tokens = new Set(stack.upstream.received.slice(before).map((r) => bearerOf(r.headers)));
    // one refresh: every call carried the same, new token (a second refresh would have minted another,
    // and the provider revokes the whole grant when a rotated refresh token is reused)
    expect(tokens.size).toBe(1);
    expect(tokens.has(record.tokens.accessToken)).toBe(false);
  });

  it('ends the session with 401 session_expired when the provider refuses the refresh token', async () => {
    const browser = await stack.signedIn();
    ageToken();
    const { record } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    const revocation = await fetch(`${stack.op.issuer}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${stack.op.clientId}:${stack.op.clientSecret}`).toString('base64')}` },
      body: new URLSearchParams({ token: record.tokens.refreshToken ?? '', token_type_hint: 'refresh_token' }),
    });
    expect(revocation.status).toBe(200);
    const res = await call(browser);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ code: 'session_expired' });
    expect((await browser.request(`${stack.gateway.url}/auth/me`)).status).toBe(401);
  });

  it('ends the session with 401 when the access token has expired and there is no refresh token', async () => {
    const browser = await stack.signedIn();
    const { store, record } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    // a provider that issued no refresh token: a record state no sign-in here produces
    await store.create({ ...record, tokens: { ...record.tokens, refreshToken: undefined } });
    stack.gateway.clock.advance(61_000);
    const res = await call(browser);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ code: 'session_expired' });
    expect((await browser.request(`${stack.gateway.url}/auth/me`)).status).toBe(401);
  });

  // last: it stops the provider
  it('answers 503 provider_unavailable with Retry-After when the provider is down, and keeps the session', async () => {
    const browser = await stack.signedIn();
    ageToken();
    await stack.op.stop();
    const res = await call(browser);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await res.json()).toMatchObject({ code: 'provider_unavailable' });
    expect((await browser.request(`${stack.gateway.url}/auth/me`)).status).toBe(200);
    expect((await call(browser)).status).toBe(503);
  });
});
