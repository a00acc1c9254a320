import { createHash } from 'node:crypto';
import type { BrowserClient } from '../support/browser.js';
import { startBehaviourUpstream, type TestUpstream } from '../support/fault-upstreams.js';
import { freePort } from '../support/ports.js';
import { cookieHeader, rawRequest, upgradeAndEcho } from '../support/raw-http.js';
import { startStack, type Stack } from '../support/stack.js';

interface Echo {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | undefined>;
  sub: string;
  bodySha256: string;
}

describe('/api/* proxy', () => {
  let stack: Stack;
  let behaviour: TestUpstream;
  let alice: BrowserClient;
  let cookie: string;
  let gw: string;

  beforeAll(async () => {
    behaviour = await startBehaviourUpstream();
    const deadPort = await freePort();
    // the sample API (which verifies the Bearer token) is /api; misbehaving servers sit under /api/b, /api/strip, /api/down
    const routes = (sampleApi: string): string =>
      JSON.stringify([
        { prefix: '/api/b', target: behaviour.url },
        { prefix: '/api/strip', target: behaviour.url, stripPrefix: true },
        { prefix: '/api/down', target: `http://127.0.0.1:${deadPort}` },
        { prefix: '/api', target: sampleApi },
      ]);
    stack = await startStack((sampleApi) => ({ UPSTREAM_TIMEOUT_S: '1', PROXY_ROUTES: routes(sampleApi) }));
    gw = stack.gateway.url;
    alice = await stack.signedIn('alice');
    cookie = await cookieHeader(alice, gw);
  });
  afterAll(async () => {
    await stack.stop();
    await behaviour.close();
  });

  function api(path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Response> {
    return alice.request(`${gw}${path}`, { ...init, headers: { 'x-csrf': '1', ...init.headers } });
  }

  it('forwards method, raw path and query to the upstream with the session\'s Bearer token and no cookie', async () => {
    const before = stack.upstream.received.length;
    const res = await api('/api/items/a%2Fb?x=1&y=%20z');
    expect(res.status).toBe(200);
    const echo = (await res.json()) as Echo;
    expect(echo.sub).toBe('alice');
    expect(echo.path).toBe('/api/items/a%2Fb');
    const received = stack.upstream.received.slice(before);
    expect(received).toHaveLength(1);
    expect(received[0]?.url).toBe('/api/items/a%2Fb?x=1&y=%20z');
    expect(received[0]?.headers.authorization).toMatch(/^Bearer eyJ/);
    expect(received[0]?.headers.cookie).toBeUndefined();
    expect(received[0]?.headers['x-forwarded-proto']).toBe('http');
    expect(received[0]?.headers['x-forwarded-host']).toBe(new URL(gw).host);
    expect(received[0]?.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(received[0]?.headers['x-csrf']).toBe('1');
  });

  it('never forwards a browser-supplied Authorization header', async () => {
    const res = await api('/api/whoami', { headers: { authorization: 'Bearer forged-by-the-page' } });
    expect(res.status).toBe(200);
    expect(stack.upstream.received.at(-1)?.headers.authorization).not.toContain('forged');
  });

  it('streams request bodies byte for byte for POST, PUT, PATCH and DELETE', async () => {
    const body = JSON.stringify({ order: 42, note: 'é'.repeat(1000) });
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      const res = await api('/api/b/orders', { method, headers: { 'content-type': 'application/json' }, body });
      expect(res.status).toBe(200);
      const seen = behaviour.seen.at(-1);
      expect(seen?.method).toBe(method);
      expect(seen?.bodySha256).toBe(createHash('sha256').update(body).digest('hex'));
    }
  });

  it('answers 403 csrf_header_missing without the X-CSRF header and forwards nothing', async () => {
    const before = stack.upstream.received.length;
    const res = await alice.request(`${gw}/api/whoami`, { method: 'POST' });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: 'csrf_header_missing', status: 403 });
    expect(stack.upstream.received.length).toBe(before);
  });

  it('answers 401 session_required without a session and forwards nothing', async () => {
    const before = stack.upstream.received.length;
    const res = await fetch(`${gw}/api/whoami`, { headers: { 'x-csrf': '1' } });
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ code: 'session_required' });
    expect(stack.upstream.received.length).toBe(before);
  });

  it.each(['/api/../admin', '/api/%2e%2e/admin', '/api/b/../whoami', '/api/..%2fadmin/../../etc'])('refuses %s, which leaves its route, with 400', async (path) => {
    const res = await rawRequest(gw, path, { headers: { cookie, 'x-csrf': '1' } });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'invalid_upstream_path' });
  });

  it('strips the route prefix when the route says so', async () => {
    const res = await api('/api/strip/orders/7?full=1');
    expect(((await res.json()) as { url: string }).url).toBe('/orders/7?full=1');
  });

  it('passes an upstream 401 through unchanged', async () => {
    const res = await api('/api/b/status/401');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    expect(res.headers.get('x-upstream')).toBe('behaviour');
    expect(((await res.json()) as { url: string }).url).toBe('/api/b/status/401');
  });

  it('answers 502 upstream_unavailable when the upstream refuses the connection, and keeps serving', async () => {
    const res = await api('/api/down/x');
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ code: 'upstream_unavailable', status: 502 });
    expect((await api('/api/whoami')).status).toBe(200);
  });

  it('answers 502 when the upstream drops the connection', async () => {
    const res = await api('/api/b/reset');
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ code: 'upstream_unavailable' });
  });

  it('answers 504 upstream_timeout when the upstream sends no headers in time, and keeps serving', async () => {
    const res = await api('/api/b/hang');
    expect(res.status).toBe(504);
    expect(await res.json()).toMatchObject({ code: 'upstream_timeout', status: 504 });
    expect((await api('/api/whoami')).status).toBe(200);
  });

  it('streams server-sent events to a same-origin EventSource request without the CSRF header', async () => {
    const res = await alice.request(`${gw}/api/b/sse`, { headers: { accept: 'text/event-stream', origin: new URL(gw).origin } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const text = await res.text();
    expect(text.match(/data: event \d/g)).toHaveLength(5);
  });

  it('refuses an EventSource request from another origin with 403 cross_origin_request', async () => {
    const res = await alice.request(`${gw}/api/b/sse`, { headers: { accept: 'text/event-stream', origin: 'http://evil.example' } });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: 'cross_origin_request' });
  });

  it('proxies a same-origin WebSocket upgrade with the Bearer token and no cookie', async () => {
    const { statusLine, echoed } = await upgradeAndEcho(gw, '/api/b/socket', { cookie, origin: new URL(gw).origin }, 'ping-through-gateway');
    expect(statusLine).toContain(' 101 ');
    expect(echoed).toBe('ping-through-gateway');
    const seen = behaviour.seen.at(-1);
    expect(seen?.url).toBe('/api/b/socket');
    expect(seen?.headers.authorization).toMatch(/^Bearer eyJ/);
    expect(seen?.headers.cookie).toBeUndefined();
  });

  it('refuses a WebSocket upgrade from another origin or without a session', async () => {
    expect((await upgradeAndEcho(gw, '/api/b/socket', { cookie, origin: 'http://evil.example' }, 'x')).statusLine).toContain(' 403 ');
    expect((await upgradeAndEcho(gw, '/api/b/socket', { origin: new URL(gw).origin }, 'x')).statusLine).toContain(' 401 ');
  });
});
