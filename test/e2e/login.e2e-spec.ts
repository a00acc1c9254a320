import { sealSessionCookie, sessionIdOf } from '../support/gateway-state.js';
import { startStack, type Stack } from '../support/stack.js';

describe('login through the real provider', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack.stop();
  });

  it('redirects /auth/login to the provider with code flow, PKCE S256, state, nonce and the exact redirect_uri', async () => {
    const res = await stack.browser().request(`${stack.gateway.url}/auth/login`);
    expect(res.status).toBe(302);
    const location = new URL(res.headers.get('location') ?? '');
    expect(location.origin + location.pathname).toBe(`${stack.op.issuer}/auth`);
    const q = location.searchParams;
    expect(q.get('response_type')).toBe('code');
    expect(q.get('client_id')).toBe(stack.op.clientId);
    expect(q.get('redirect_uri')).toBe(`${stack.gateway.url}/auth/callback`);
    expect(q.get('scope')).toBe('openid profile email offline_access');
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get('nonce')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('passes prompt and login_hint through and refuses an unknown prompt', async () => {
    const res = await stack.browser().request(`${stack.gateway.url}/auth/login?prompt=login&login_hint=bob`);
    const q = new URL(res.headers.get('location') ?? '').searchParams;
    expect(q.get('prompt')).toBe('login');
    expect(q.get('login_hint')).toBe('bob');
    const bad = await stack.browser().request(`${stack.gateway.url}/auth/login?prompt=everything`, { headers: { accept: 'application/json' } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { code: string }).code).toBe('bad_request');
  });

  it('signs in, lands on returnTo, and /auth/me shows the user without any token', async () => {
    const browser = stack.browser();
    const { visited, final } = await browser.signIn(stack.gateway.url, { returnTo: '/orders?x=1' });
    expect(visited.some((url) => url.startsWith(`${stack.gateway.url}/auth/callback?`))).toBe(true);
    expect(visited.at(-1)).toBe(`${stack.gateway.url}/orders?x=1`);
    expect(final.url).toBe(`${stack.gateway.url}/orders?x=1`);

    const me = await browser.request(`${stack.gateway.url}/auth/me`);
    expect(me.status).toBe(200);
    const body = (await me.json()) as { sub: string; claims: Record<string, unknown>; expiresAt: string; logoutUrl: string };
    expect(body.sub).toBe('alice');
    expect(body.claims).toMatchObject({ sub: 'alice', name: 'Alice Example', email: 'alice@example.com' });
    expect(body.claims).not.toHaveProperty('nonce');
    expect(Date.parse(body.expiresAt)).toBeGreaterThan(Date.now());
    expect(body.logoutUrl).toMatch(/^\/auth\/logout\?sid=[A-Za-z0-9_-]+$/);
    expect(JSON.stringify(body)).not.toMatch(/eyJ[A-Za-z0-9_-]+\.eyJ/);
  });

  it('keeps only an encrypted HttpOnly __Host- session cookie in the browser, small and token-free', async () => {
    const browser = await stack.signedIn();
    const cookies = (await browser.cookies(stack.gateway.url)).filter((c) => c.name.startsWith('__Host-bff'));
    expect(cookies).toHaveLength(1);
    const [cookie] = cookies;
    expect(cookie).toMatchObject({ name: '__Host-bff-session', httpOnly: true, secure: true, sameSite: 'lax', path: '/', hostOnly: true });
    expect(cookie?.value.length).toBeLessThan(400);
    expect(decodeURIComponent(cookie?.value ?? '')).not.toMatch(/eyJ/);
  });

  it('issues a new session id at login: the pre-login cookie never becomes authenticated', async () => {
    const browser = stack.browser();
    const start = await browser.request(`${stack.gateway.url}/auth/login`);
    const preLogin = /__Host-bff-session=([^;]+)/.exec(start.headers.get('set-cookie') ?? '')?.[1];
    expect(preLogin).toBeDefined();
    await browser.completeProviderInteraction(await browser.navigate(start.headers.get('location') ?? ''));
    const me = await fetch(`${stack.gateway.url}/auth/me`, { headers: { cookie: `__Host-bff-session=${preLogin ?? ''}` } });
    expect(me.status).toBe(401);
    expect(((await me.json()) as { code: string }).code).toBe('session_required');
  });

  it('issues a new session id at every login: signing in again ends the session the old cookie named', async () => {
    const browser = await stack.signedIn();
    const [first] = (await browser.cookies(stack.gateway.url)).filter((c) => c.name === '__Host-bff-session');
    const firstCookie = `__Host-bff-session=${first?.value ?? ''}`;
    expect((await fetch(`${stack.gateway.url}/auth/me`, { headers: { cookie: firstCookie } })).status).toBe(200);

    await browser.signIn(stack.gateway.url);
    const [second] = (await browser.cookies(stack.gateway.url)).filter((c) => c.name === '__Host-bff-session');
    expect(second?.value).not.toBe(first?.value);
    expect((await browser.request(`${stack.gateway.url}/auth/me`)).status).toBe(200);
    const old = await fetch(`${stack.gateway.url}/auth/me`, { headers: { cookie: firstCookie } });
    expect(old.status).toBe(401);
    expect(((await old.json()) as { code: string }).code).toBe('session_required');
  });

  it.each(['https://evil.example', '//evil.example', '/\\evil.example', 'javascript:alert(1)'])('falls back to / for returnTo=%s', async (returnTo) => {
    const { final } = await stack.browser().signIn(stack.gateway.url, { returnTo });
    expect(final.url).toBe(`${stack.gateway.url}/`);
  });

  it('answers /auth/me without a session with 401 session_required', async () => {
    const res = await fetch(`${stack.gateway.url}/auth/me`);
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ status: 401, code: 'session_required', type: '/problems/session_required' });
  });

  it('treats a tampered session cookie as no session', async () => {
    const browser = await stack.signedIn();
    const [cookie] = (await browser.cookies(stack.gateway.url)).filter((c) => c.name === '__Host-bff-session');
    const value = cookie?.value ?? '';
    const tampered = `${value.slice(0, 10)}${value[10] === 'A' ? 'B' : 'A'}${value.slice(11)}`;
    const res = await fetch(`${stack.gateway.url}/auth/me`, { headers: { cookie: `__Host-bff-session=${tampered}` } });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { code: string }).code).toBe('session_required');
  });

  it('ignores a cookie naming a live session when it was sealed with another secret', async () => {
    const browser = await stack.signedIn();
    const sid = await sessionIdOf(stack.gateway.app, browser, stack.gateway.url);
    // the same live session id, sealed once with the gateway's own secret (control) and once with another
    const own = await sealSessionCookie(stack.gateway.config.session.secrets, sid);
    const foreign = await sealSessionCookie(['another-secret-of-at-least-32-characters!'], sid);
    expect((await fetch(`${stack.gateway.url}/auth/me`, { headers: { cookie: `__Host-bff-session=${own}` } })).status).toBe(200);
    const res = await fetch(`${stack.gateway.url}/auth/me`, { headers: { cookie: `__Host-bff-session=${foreign}` } });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { code: string }).code).toBe('session_required');
  });
});
