import { request, type ClientRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { BrowserClient } from '../support/browser.js';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import { HOSTILE_SET_COOKIES, startHostileUpstream, type HostileUpstream } from '../support/hostile-upstream.js';
import { startOp, type RunningOp } from '../support/op.js';
import { startRedis, type RunningRedis } from '../support/redis.js';
import { startTcpRelay, type TcpRelay } from '../support/tcp-relay.js';
import { freePort } from '../support/ports.js';
import { cookieHeader, handshake, rawRequest, upgradeAndEcho, type RawResponse } from '../support/raw-http.js';
import { startStack, type Stack } from '../support/stack.js';
import { eventually, waitUntilReady } from '../support/wait.js';

/**
 * Attacks on the proxy side of the gateway, each bounded in count and time, on 127.0.0.1: handshakes
 * reset at every phase, streams abandoned by the browser, upstreams that die mid-body or plant
 * cookies, forged forwarding headers and paths that try to pick another route.
 */

type Phase = 'at-once' | 'on-barrier' | 'after-101';

/**
 * Sends a WebSocket handshake and resets the connection (RST, not FIN): at once, when `barrier`
 * resolves (the gateway is then waiting on something), or after the 101 arrived.
 */
async function resetHandshake(baseUrl: string, path: string, headers: Record<string, string>, phase: Phase, barrier?: () => Promise<void>): Promise<void> {
  const url = new URL(baseUrl);
  const socket: Socket = connect(Number(url.port), url.hostname);
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(handshake(url, path, headers));
  if (phase === 'on-barrier' && barrier !== undefined) await barrier();
  if (phase === 'after-101') {
    await new Promise<void>((resolve, reject) => {
      let received = '';
      socket.on('data', (chunk: Buffer) => {
        received += chunk.toString('latin1');
        if (received.includes('\r\n\r\n')) resolve();
      });
      socket.once('close', () => reject(new Error(`closed before the 101: ${JSON.stringify(received)}`)));
    });
  }
  socket.resetAndDestroy();
}

/** Opens a streaming GET and resolves once its first chunk arrived; the caller aborts it. */
async function openStream(baseUrl: string, path: string, headers: Record<string, string>): Promise<ClientRequest> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, headers, agent: false }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`stream answered ${res.statusCode}`));
      res.once('data', () => resolve(req));
      res.on('error', () => undefined);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Reads a response to its end: resolves with the bytes, rejects when the connection breaks first. */
async function readToEnd(baseUrl: string, path: string, headers: Record<string, string>): Promise<{ status: number; bytes: number }> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, headers, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('WebSocket handshakes reset at every phase (gateway process)', () => {
  let op: RunningOp;
  let redis: RunningRedis;
  let relay: TcpRelay;
  let hostile: HostileUpstream;
  let gateway: GatewayProcess;
  let cookie: string;

  beforeAll(async () => {
    const port = await freePort();
    const gatewayUrl = `http://127.0.0.1:${port}`;
    // every /api request refreshes (skew beyond the token's lifetime): the refresh is a phase to attack
    op = await startOp({ gatewayUrl, accessTokenTtlS: 60 });
    redis = await startRedis();
    // the session store is reached through a relay that can hold the gateway's commands (a barrier)
    relay = await startTcpRelay(redis.port);
    hostile = await startHostileUpstream();
    gateway = await startGatewayProcess({
      SESSION_STORE: 'redis',
      REDIS_URL: `redis://127.0.0.1:${relay.port}`,
      TOKEN_REFRESH_SKEW_S: '120',
      PORT: String(port),
      PUBLIC_URL: gatewayUrl,
      OIDC_ISSUER: op.issuer,
      OIDC_CLIENT_ID: op.clientId,
      OIDC_CLIENT_SECRET: op.clientSecret,
      PROXY_ROUTES: JSON.stringify([{ prefix: '/api', target: hostile.url }]),
      SPA_UPSTREAM_URL: hostile.url,
      LOG_LEVEL: 'warn',
    });
    await waitUntilReady(gateway.url);
    const browser = new BrowserClient();
    await browser.signIn(gateway.url, { login: 'alice' });
    cookie = await cookieHeader(browser, gateway.url);
  });

  afterAll(async () => {
    await gateway?.stop();
    await hostile?.close();
    await relay?.close();
    await redis?.close();
    await op?.stop();
  });

  /** Resets a handshake while the gateway waits for the session store: the relay holds its command. */
  async function resetWhileLoadingSession(): Promise<void> {
    const holding = relay.hold();
    await resetHandshake(gateway.url, '/api/ws', { origin: gateway.url, cookie }, 'on-barrier', () => holding);
    relay.release();
  }

  /** Resets a handshake while the gateway waits for the provider's token endpoint (the provider is stopped). */
  async function resetWhileRefreshing(): Promise<void> {
    const pid = op.child.process.pid ?? 0;
    process.kill(pid, 'SIGSTOP');
    try {
      // the refresh lock is taken right before the token request
      const locking = relay.sees('lock:');
      await resetHandshake(gateway.url, '/api/ws', { origin: gateway.url, cookie }, 'on-barrier', () => locking);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  }

  it('frees the dev server connection of each SPA-proxied stream the browser closes', async () => {
    const before = hostile.streams();
    for (let i = 0; i < 40; i += 4) {
      const streams = await Promise.all(Array.from({ length: 4 }, () => openStream(gateway.url, '/dev/stream', {})));
      for (const stream of streams) stream.destroy();
    }
    await eventually(() => Promise.resolve(hostile.streams().closed - before.closed === 40 ? true : undefined), 10_000, 'every dev server stream closed');
  });

  it('stays up and answers /healthz 200 after 270 handshakes reset while refused, loading the session, refreshing the token, waiting for the 101 and after it, on /api and on the dev-server path', async () => {
    const origin = gateway.url;
    let held = 0;
    const waitForHold = async (): Promise<void> => {
      held += 1;
      await hostile.held(held);
    };
    const attacks: Array<() => Promise<void>> = [
      // refused: cross-site page, and no session at all
      () => resetHandshake(gateway.url, '/api/ws', { origin: 'https://evil.example', cookie }, 'at-once'),
      () => resetHandshake(gateway.url, '/api/ws', { origin }, 'at-once'),
      resetWhileLoadingSession,
      resetWhileRefreshing,
      // the gateway waits for the upstream's 101 (held by the upstream until released)
      () => resetHandshake(gateway.url, '/api/ws-hold', { origin, cookie }, 'on-barrier', waitForHold),
      () => resetHandshake(gateway.url, '/api/ws', { origin, cookie }, 'after-101'),
      // the dev server's hot-reload path: refused (a gateway path), waiting for the 101, after it
      () => resetHandshake(gateway.url, '/auth/socket', { origin }, 'at-once'),
      () => resetHandshake(gateway.url, '/hmr/ws-hold', { origin, cookie }, 'on-barrier', waitForHold),
      () => resetHandshake(gateway.url, '/hmr', { origin }, 'after-101'),
    ];
    for (let round = 0; round < 30; round++) {
      for (const attack of attacks) await attack();
      // the held handshakes are answered into connections that are already gone
      hostile.release();
    }
    expect(gateway.child.process.exitCode).toBeNull();
    const health = await fetch(`${gateway.url}/healthz`);
    expect(health.status).toBe(200);
    // and a real handshake still works
    const { statusLine, echoed } = await upgradeAndEcho(gateway.url, '/api/ws', { origin, cookie }, 'ping');
    expect(statusLine).toContain(' 101 ');
    expect(echoed).toBe('ping');
  });
});

describe('proxied exchanges under attack', () => {
  let stack: Stack;
  let hostile: HostileUpstream;
  let orders: HostileUpstream;
  let stale: HostileUpstream;
  let gw: string;
  let cookie: string;
  let api: Record<string, string>;

  beforeAll(async () => {
    hostile = await startHostileUpstream();
    orders = await startHostileUpstream();
    stale = await startHostileUpstream();
    const routes = (sampleApi: string): string =>
      JSON.stringify([
        { prefix: '/api/stale', target: stale.url },
        { prefix: '/api/h', target: hostile.url },
        { prefix: '/api/hc', target: hostile.url, passCookies: true },
        { prefix: '/api/s', target: hostile.url, stripPrefix: true },
        { prefix: '/api/orders', target: orders.url },
        { prefix: '/api', target: sampleApi },
      ]);
    stack = await startStack((sampleApi) => ({ UPSTREAM_TIMEOUT_S: '2', UPSTREAM_MAX_SOCKETS: '8', PROXY_ROUTES: routes(sampleApi) }));
    gw = stack.gateway.url;
    const alice = await stack.signedIn('alice');
    cookie = await cookieHeader(alice, gw);
    api = { cookie, 'x-csrf': '1' };
  });

  afterAll(async () => {
    await stack.stop();
    await hostile.close();
    await orders.close();
    await stale.close();
  });

  function get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<RawResponse> {
    return rawRequest(gw, path, { method, headers: { ...api, ...headers } });
  }

  describe('every exchange ends on both sides', () => {
    it('frees the upstream connection of each of 300 streams the browser closes, and the route still answers', async () => {
      const before = hostile.streams();
      // four at a time: fewer than the route's pool (8), so none waits for a connection
      for (let i = 0; i < 300; i += 4) {
        const streams = await Promise.all(Array.from({ length: Math.min(4, 300 - i) }, () => openStream(gw, '/api/h/stream', api)));
        for (const stream of streams) stream.destroy();
      }
      await eventually(() => Promise.resolve(hostile.streams().closed - before.closed === 300 ? true : undefined), 15_000, 'every stream closed upstream');
      expect(hostile.streams().started - before.started).toBe(300);
      const res = await get('/api/h/echo');
      expect(res.status).toBe(200);
    });

    it('answers 504 upstream_timeout when the route\'s connection pool stays full', async () => {
      const streams = await Promise.all(Array.from({ length: 8 }, () => openStream(gw, '/api/h/stream', api)));
      try {
        const waiting = get('/api/h/echo');
        // the pool is observable: 8 active connections and the request waiting for one
        await eventually(
          async () => {
            const metrics = await (await fetch(`${gw}/metrics`)).text();
            return metrics.includes('bff_upstream_sockets{route="/api/h",state="active"} 8') && metrics.includes('bff_upstream_sockets{route="/api/h",state="queued"} 1') ? true : undefined;
          },
          5_000,
          'bff_upstream_sockets showing the full pool',
        );
        const res = await waiting;
        expect(res.status).toBe(504);
        expect(JSON.parse(res.body)).toMatchObject({ code: 'upstream_timeout', status: 504 });
      } finally {
        for (const stream of streams) stream.destroy();
      }
      await eventually(async () => ((await get('/api/h/echo')).status === 200 ? true : undefined), 10_000, 'route answering again');
    });

    it('breaks the browser\'s response at once when the upstream dies mid-body, and logs upstream_aborted with the request id', async () => {
      const outcome = await readToEnd(gw, '/api/h/die', { ...api, 'x-request-id': 'mid-body-1' }).then(
        (done) => ({ broken: false, ...done }),
        () => ({ broken: true }),
      );
      expect(outcome).toEqual({ broken: true });
      const line = await eventually(() => Promise.resolve(stack.gateway.logLines().find((l) => l['event'] === 'upstream_aborted')), 5_000, 'upstream_aborted logged');
      expect(line).toMatchObject({ reqId: 'mid-body-1', level: 40 });
    });
  });

  describe('response header policy', () => {
    it('drops the upstream\'s Set-Cookie, hop-by-hop headers and headers named in Connection, and passes Location unchanged', async () => {
      const res = await get('/api/h/cookies');
      expect(res.status).toBe(302);
      expect(res.headers['set-cookie']).toBeUndefined();
      expect(res.headers['x-hop-secret']).toBeUndefined();
      // the gateway's own Keep-Alive (its server timeout) replaces the upstream's
      expect(res.headers['keep-alive']).not.toBe('timeout=77, max=3');
      expect(res.headers['proxy-authenticate']).toBeUndefined();
      expect(res.headers['trailer']).toBeUndefined();
      expect(res.headers['x-kept']).toBe('yes');
      expect(res.headers['location']).toBe('https://elsewhere.example/landing?x=%2F');
    });

    it('passes a route\'s own cookies with passCookies, but never one named like the gateway\'s', async () => {
      const res = await get('/api/hc/cookies');
      expect(res.headers['set-cookie']).toEqual(['theme=dark; Path=/']);
    });

    it('filters the headers of a 101 the same way', async () => {
      for (const [path, expected] of [
        ['/api/h/ws', undefined],
        ['/api/hc/ws', ['theme=dark; Path=/']],
      ] as const) {
        const headers = await handshakeHeaders(gw, path, { origin: gw, cookie });
        expect(headers.status).toContain(' 101 ');
        expect(headers.setCookies.length === 0 ? undefined : headers.setCookies).toEqual(expected);
        expect(headers.names).toContain('x-kept');
        expect(headers.names).toEqual(expect.arrayContaining(['connection', 'upgrade']));
      }
      expect(HOSTILE_SET_COOKIES).toHaveLength(6);
    });
  });

  describe('what the forwarding engine must not do on its own', () => {
    it('sends a GET again on a new connection when its pooled one turns out closed, but never a request with a body', async () => {
      // each /stale answer marks its connection: the next request the gateway reuses it for is reset
      expect((await get('/api/stale/stale')).status).toBe(200);
      const again = await get('/api/stale/echo');
      expect(stale.staleResets()).toBe(1);
      expect(again.status).toBe(200);
      expect(JSON.parse(again.body)).toMatchObject({ method: 'GET', url: '/api/stale/echo' });

      expect((await get('/api/stale/stale')).status).toBe(200);
      const post = await rawRequest(gw, '/api/stale/echo', { method: 'POST', headers: { ...api, 'content-type': 'text/plain' }, body: 'once only' });
      expect(stale.staleResets()).toBe(2);
      expect(post.status).toBe(502);
      expect(stale.seen.filter((s) => s.method === 'POST')).toEqual([]);
    });

    it('forwards a chunked DELETE body as its body, never as a second request on the upstream connection', async () => {
      const smuggled = 'GET /api/h/smuggled HTTP/1.1\r\nHost: upstream\r\n\r\n';
      const answer = await rawExchange(
        gw,
        `DELETE /api/h/echo?chunked HTTP/1.1\r\nHost: ${new URL(gw).host}\r\nCookie: ${cookie}\r\nX-CSRF: 1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n` +
          `${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`,
      );
      expect(answer).toMatch(/^HTTP\/1\.1 200 /);
      // the next request on the route (the same pooled connection) gets its own answer
      const after = await get('/api/h/echo?after-chunked');
      expect(JSON.parse(after.body)).toMatchObject({ url: '/api/h/echo?after-chunked' });
      expect(hostile.seen.filter((s) => s.url.includes('smuggled'))).toEqual([]);
      expect(hostile.seen.find((s) => s.url === '/api/h/echo?chunked')?.headers['transfer-encoding']).toBe('chunked');
    });

    it('answers 502 upstream_unavailable when the upstream sends a status line Node cannot write back, and keeps serving', async () => {
      const res = await get('/api/h/bad-status');
      expect(res.status).toBe(502);
      expect(JSON.parse(res.body)).toMatchObject({ code: 'upstream_unavailable' });
      expect((await get('/api/h/echo?after-bad-status')).status).toBe(200);
    });

    it('forwards the raw path of a request that expects 100-continue', async () => {
      const answer = await rawExchange(
        gw,
        `POST /api//orders/1?expect HTTP/1.1\r\nHost: ${new URL(gw).host}\r\nCookie: ${cookie}\r\nX-CSRF: 1\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok`,
      );
      expect(answer).toContain('HTTP/1.1 200 ');
      expect(orders.seen.at(-1)?.url).toBe('/api//orders/1?expect');
    });

    it('passes a non-WebSocket upgrade on to the upstream, which answers it', async () => {
      const answer = await rawExchange(gw, `GET /api/h/h2c HTTP/1.1\r\nHost: ${new URL(gw).host}\r\nOrigin: ${gw}\r\nCookie: ${cookie}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n`, true);
      expect(answer).toMatch(/^HTTP\/1\.1 101 /);
      expect(hostile.seen.find((s) => s.url === '/api/h/h2c')?.headers['upgrade']).toBe('h2c');
    });
  });

  describe('request header policy, the same for HTTP and WebSocket', () => {
    const forged = {
      'x-forwarded-for': '203.0.113.66',
      'proxy-authorization': 'Basic c2VjcmV0',
      'x-request-id': 'ab"c',
      forwarded: 'for=203.0.113.66',
      'x-real-ip': '203.0.113.66',
      'x-original-url': '/admin',
      'x-rewrite-url': '/admin',
      'x-forwarded-prefix': '/admin',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      tracestate: 'vendor=x',
      baggage: 'userId=alice',
    };

    it('forwards neither forged forwarding, proxy credentials, trace context nor an invalid request id, on both paths alike', async () => {
      const http = await get('/api/h/echo?via=http', { ...forged, origin: gw });
      expect(http.status).toBe(200);
      const { statusLine } = await upgradeAndEcho(gw, '/api/h/ws?via=ws', { ...forged, origin: gw, cookie }, 'x');
      expect(statusLine).toContain(' 101 ');
      const httpSeen = hostile.seen.find((s) => s.url === '/api/h/echo?via=http');
      const wsSeen = hostile.seen.find((s) => s.url === '/api/h/ws?via=ws');
      for (const seen of [httpSeen, wsSeen]) {
        expect(seen?.headers['x-forwarded-for']).toBe('127.0.0.1');
        expect(seen?.headers['x-request-id']).toMatch(/^[A-Za-z0-9._-]{1,128}$/);
        for (const name of ['proxy-authorization', 'forwarded', 'x-real-ip', 'x-original-url', 'x-rewrite-url', 'x-forwarded-prefix', 'traceparent', 'tracestate', 'baggage', 'cookie']) {
          expect([name, seen?.headers[name]]).toEqual([name, undefined]);
        }
      }
      const comparable = (headers: Record<string, unknown> | undefined): string[] =>
        Object.keys(headers ?? {})
          .filter((name) => !['connection', 'upgrade', 'x-csrf'].includes(name) && !name.startsWith('sec-websocket-'))
          .sort();
      expect(comparable(wsSeen?.headers)).toEqual(comparable(httpSeen?.headers));
    });

    it('keeps a valid inbound request id on both paths', async () => {
      await get('/api/h/echo?rid=http', { 'x-request-id': 'trace.me-1' });
      await upgradeAndEcho(gw, '/api/h/ws?rid=ws', { origin: gw, cookie, 'x-request-id': 'trace.me-2' }, 'x');
      expect(hostile.seen.find((s) => s.url === '/api/h/echo?rid=http')?.headers['x-request-id']).toBe('trace.me-1');
      expect(hostile.seen.find((s) => s.url === '/api/h/ws?rid=ws')?.headers['x-request-id']).toBe('trace.me-2');
    });

    it('refuses TRACE on /api with 405 method_not_allowed and forwards nothing', async () => {
      const before = hostile.seen.length;
      const res = await get('/api/h/echo', {}, 'TRACE');
      expect(res.status).toBe(405);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(JSON.parse(res.body)).toMatchObject({ code: 'method_not_allowed', status: 405 });
      expect(res.headers['allow']).toBe('GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS');
      expect(hostile.seen.length).toBe(before);
    });
  });

  describe('routes are matched on the normalised path; the raw path is forwarded', () => {
    it.each([
      ['/api//orders/1', '/api//orders/1'],
      ['/api/./orders/1', '/api/./orders/1'],
      ['/api/x/../orders/1', '/api/x/../orders/1'],
      ['/api/x/%2e%2e/orders/1', '/api/x/%2e%2e/orders/1'],
      ['/api/orders//a%2Fb?q=1', '/api/orders//a%2Fb?q=1'],
      ['/api/orders/{a}|b^c', '/api/orders/{a}|b^c'],
    ])('sends %s to the /api/orders upstream as %s, byte for byte', async (path, upstreamPath) => {
      const res = await get(path);
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toMatchObject({ url: upstreamPath });
      expect(orders.seen.at(-1)?.url).toBe(upstreamPath);
    });

    it('forwards the raw path to the catch-all route too', async () => {
      const before = stack.upstream.received.length;
      const res = await get('/api//items/a%2Fb');
      expect(res.status).toBe(200);
      expect(stack.upstream.received.slice(before).map((r) => r.url)).toEqual(['/api//items/a%2Fb']);
    });

    it('forwards the normalised remainder on a stripPrefix route', async () => {
      const res = await get('/api/s//a/./b/../c%2Fd?q=1');
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toMatchObject({ url: '/a/c%2Fd?q=1' });
    });

    it.each(['/api/orders/../users', '/api/orders/%2e%2e/users', '/api/../admin', '/api//..//../admin'])('refuses %s, whose normalised path leaves its route, with 400', async (path) => {
      const before = orders.seen.length + hostile.seen.length;
      const res = await get(path);
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body)).toMatchObject({ code: 'invalid_upstream_path' });
      expect(orders.seen.length + hostile.seen.length).toBe(before);
    });
  });
});

/**
 * Writes `request` as is on a fresh connection and resolves with everything read until the gateway
 * closes it, or (`headOnly`) with the first response head.
 */
async function rawExchange(baseUrl: string, request: string, headOnly = false): Promise<string> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    let received = '';
    socket.on('connect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (headOnly && received.includes('\r\n\r\n')) socket.destroy();
    });
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
  });
}

/** The status line, header names and Set-Cookie values of a handshake's answer (raw socket). */
async function handshakeHeaders(baseUrl: string, path: string, headers: Record<string, string>): Promise<{ status: string; names: string[]; setCookies: string[] }> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    let received = '';
    socket.on('connect', () => socket.write(handshake(url, path, headers)));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      const end = received.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.destroy();
      const [status = '', ...lines] = received.slice(0, end).split('\r\n');
      const fields = lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()] as const);
      resolve({ status, names: fields.map(([name]) => name), setCookies: fields.filter(([name]) => name === 'set-cookie').map(([, value]) => value) });
    });
    socket.on('error', reject);
  });
}
