import { jest } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { ServerResponse, type OutgoingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { sendProblem } from '../../src/common/problem.js';
import { BrowserClient } from '../support/browser.js';
import { sessionOf } from '../support/gateway-state.js';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import { startGateway, type RunningGateway } from '../support/gateway.js';
import { startOp, type RunningOp } from '../support/op.js';
import { freePort } from '../support/ports.js';
import { startHostileUpstream, type HostileUpstream } from '../support/hostile-upstream.js';
import { cookieHeader, handshake } from '../support/raw-http.js';
import { startRogueOp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type RogueOp } from '../support/rogue-op.js';
import { startStack, type Stack } from '../support/stack.js';
import { startUpstream, type RunningUpstream } from '../support/upstream.js';
import { eventually, waitUntilReady } from '../support/wait.js';
import { refreshGrantAsClient } from '../support/client-grants.js';

/**
 * Attacks on the gateway's edge (the HTTP server itself, before and around the routes), against the
 * built gateway process on loopback addresses only. Every attack is bounded in count and time.
 */

const HEADERS_TIMEOUT_S = 2;
const REQUEST_TIMEOUT_S = 3;
const PER_CLIENT_CAP = 256;
/** SOAK_S shortens the soak while developing; CI runs the default. */
const SOAK_S = Number(process.env['SOAK_S'] ?? '60');
const WARM_UP_S = 8;
const ATTACKER = '127.0.0.2';

interface Trickle {
  readonly socket: Socket;
  /** What the gateway wrote before the socket closed. */
  received: string;
  closed: boolean;
}

/** A connection that starts a request and never finishes its headers (slowloris). */
function trickle(port: number, localAddress: string, onClose: (t: Trickle) => void = () => undefined): Trickle {
  const socket = connect({ port, host: '127.0.0.1', localAddress });
  const state: Trickle = { socket, received: '', closed: false };
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (state.received += chunk));
  socket.on('error', () => undefined);
  // written now (buffered until connected), so no drip can overtake the request line
  socket.write('GET /healthz HTTP/1.1\r\nHost: gateway\r\n');
  socket.on('close', () => {
    state.closed = true;
    onClose(state);
  });
  return state;
}

/** Sends one more header line on every open trickling connection, as a slowloris client does. */
function drip(connections: readonly Trickle[]): void {
  for (const t of connections) if (!t.closed && t.socket.writable) t.socket.write(`X-Drip: ${Date.now()}\r\n`);
}

/** One complete keep-alive request on a raw socket bound to `localAddress`; resolves with the status line, or undefined when closed unanswered. */
function keptAliveRequest(port: number, localAddress: string): Promise<{ socket: Socket; statusLine: string | undefined }> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress });
    let received = '';
    socket.setEncoding('latin1');
    socket.on('error', () => undefined);
    socket.on('connect', () => socket.write('GET /healthz HTTP/1.1\r\nHost: gateway\r\nConnection: keep-alive\r\n\r\n'));
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (received.includes('\r\n\r\n') && received.includes('"status":"ok"')) resolve({ socket, statusLine: received.slice(0, received.indexOf('\r\n')) });
    });
    socket.on('close', () => resolve({ socket, statusLine: undefined }));
  });
}

/** Writes `text` on a fresh socket and collects everything until the gateway closes it. */
function rawExchange(port: number, text: string, localAddress = '127.0.0.1'): Promise<{ received: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress });
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ received, closed: false });
    }, 10_000);
    socket.setEncoding('latin1');
    socket.on('connect', () => socket.write(text));
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', (error) => {
      clearTimeout(timer);
      if (received === '') reject(error);
      else resolve({ received, closed: true });
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ received, closed: true });
    });
  });
}

/**
 * A request whose body of `bytes` bytes trickles in one byte per `dripMs`; resolves with the
 * gateway's answer once it is complete (or, with `waitForClose`, once the connection has closed).
 */
function trickledBody(port: number, head: string, bytes: number, dripMs: number, waitForClose = false): Promise<{ received: string; endedByGateway: boolean }> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let received = '';
    let endedByGateway = false;
    let sent = 0;
    const dripping = setInterval(() => {
      if (sent < bytes && socket.writable) {
        socket.write('x');
        sent++;
      }
    }, dripMs);
    const deadline = setTimeout(() => socket.destroy(), 20_000);
    socket.setEncoding('latin1');
    socket.on('error', () => undefined);
    socket.on('connect', () => socket.write(`${head}Content-Length: ${bytes}\r\nConnection: close\r\n\r\n`));
    socket.on('data', (chunk: string) => {
      received += chunk;
      // a complete answer is enough: whether the connection then stays open is not this test's business
      const end = received.indexOf('\r\n\r\n');
      const length = /\r\ncontent-length: (\d+)/i.exec(received.slice(0, end));
      if (!waitForClose && end !== -1 && length?.[1] !== undefined && received.length - end - 4 >= Number(length[1])) socket.destroy();
    });
    socket.on('end', () => (endedByGateway = true));
    socket.on('close', () => {
      clearInterval(dripping);
      clearTimeout(deadline);
      resolve({ received, endedByGateway });
    });
  });
}

function vmRssKb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (match?.[1] === undefined) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]);
}

describe('the server edge under attack', () => {
  let op: RunningOp;
  let upstream: RunningUpstream;
  let hostile: HostileUpstream;
  let gateway: GatewayProcess;
  let port: number;
  let metricsPort: number;

  beforeAll(async () => {
    port = await freePort();
    metricsPort = await freePort();
    op = await startOp({ gatewayUrl: `http://127.0.0.1:${port}` });
    upstream = await startUpstream(op);
    // the soak's proxy attacks (closed streams, reset handshakes) go to an API of their own
    hostile = await startHostileUpstream();
    gateway = await startGatewayProcess({
      PORT: String(port),
      METRICS_PORT: String(metricsPort),
      OIDC_ISSUER: op.issuer,
      OIDC_CLIENT_ID: op.clientId,
      OIDC_CLIENT_SECRET: op.clientSecret,
      PROXY_ROUTES: JSON.stringify([
        { prefix: '/api/hostile', target: hostile.url },
        { prefix: '/api', target: upstream.url },
      ]),
      SERVER_HEADERS_TIMEOUT_S: String(HEADERS_TIMEOUT_S),
      SERVER_REQUEST_TIMEOUT_S: String(REQUEST_TIMEOUT_S),
      LOG_LEVEL: 'warn',
      // a heap bounded as a container's memory limit would bound it: V8 (Node 24 especially) otherwise grows
      // its heap lazily up to far more than it needs, which RSS cannot tell from a leak; a real leak now fails
      NODE_OPTIONS: '--max-old-space-size=128 --max-semi-space-size=8',
    });
    await waitUntilReady(gateway.url);
  });
  afterAll(async () => {
    await gateway.stop();
    await hostile.close();
    await upstream.close();
    await op.stop();
  });

  describe('returnTo', () => {
    /** Signs in, then follows a login link (target exactly as given) while signed in; returns where it ended. */
    async function loginAgain(browser: BrowserClient, query: string): Promise<{ visited: string[]; statuses: number[]; final: Response }> {
      const start = await browser.navigate(`${gateway.url}/auth/login?${query}`);
      const end = await browser.completeProviderInteraction(start);
      return { visited: [...start.visited, ...end.visited], statuses: [start.response.status, end.response.status], final: end.response };
    }

    it('a signed-in user following a login link with returnTo=/%E6%97%A5 ends signed in on /%E6%97%A5 under the new session, the old one ended', async () => {
      const browser = new BrowserClient();
      await browser.signIn(gateway.url);
      const oldCookie = await cookieHeader(browser, gateway.url);
      expect((await fetch(`${gateway.url}/auth/me`, { headers: { cookie: oldCookie } })).status).toBe(200);

      const { visited, final } = await loginAgain(browser, 'returnTo=/%E6%97%A5');
      expect(final.status).toBe(200);
      expect(visited.at(-1)).toBe(`${gateway.url}/%E6%97%A5`);
      const newCookie = await cookieHeader(browser, gateway.url);
      expect(newCookie).not.toBe(oldCookie);
      expect((await browser.request(`${gateway.url}/auth/me`)).status).toBe(200);
      expect((await fetch(`${gateway.url}/auth/me`, { headers: { cookie: oldCookie, accept: 'application/json' } })).status).toBe(401);
    });

    it.each([
      ['a raw non-ASCII path (decoded /日)', 'returnTo=%2F%E6%97%A5', '/%E6%97%A5'],
      ['an already encoded path', 'returnTo=%2F%25E6%2597%25A5%3Ftab%3D1', '/%E6%97%A5?tab=1'],
      ['Latin-1 (a header-legal byte that is not ASCII)', 'returnTo=%2Fcaf%C3%A9', '/caf%C3%A9'],
      ['CR LF (response splitting)', 'returnTo=%2Fx%0D%0ASet-Cookie%3A%20a%3Db', '/'],
      ['NUL', 'returnTo=%2Fx%00y', '/'],
      ['DEL', 'returnTo=%2Fx%7Fy', '/'],
      ['a C1 control (NEL)', 'returnTo=%2Fx%C2%85y', '/'],
    ])('returnTo with %s (%s) lands on %s', async (_what, query, landing) => {
      const browser = new BrowserClient();
      await browser.signIn(gateway.url);
      const { visited, final } = await loginAgain(browser, query);
      expect(final.status).toBeLessThan(500);
      expect(visited.at(-1)).toBe(`${gateway.url}${landing}`);
      expect((await browser.request(`${gateway.url}/auth/me`)).status).toBe(200);
    });
  });

  describe('connection limits', () => {
    it('closes a client\'s 257th connection at once while its 256 kept-alive connections stay served, and the metrics port still answers probes', async () => {
      const kept = await Promise.all(Array.from({ length: PER_CLIENT_CAP }, () => keptAliveRequest(port, '127.0.0.3')));
      try {
        expect(kept.filter((k) => k.statusLine?.includes(' 200 ') === true)).toHaveLength(PER_CLIENT_CAP);
        const extra = await keptAliveRequest(port, '127.0.0.3');
        extra.socket.destroy();
        expect(extra.statusLine).toBeUndefined();
        // another address is not affected, and the probes on METRICS_PORT are not capped at all
        expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
        const probe = await rawExchange(metricsPort, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', '127.0.0.3');
        expect(probe.received).toMatch(/^HTTP\/1\.1 200 /);
      } finally {
        for (const k of kept) k.socket.destroy();
      }
    });

    it('500 trickling connections from one address: /healthz keeps answering from another, the ones beyond the cap are closed unanswered, the rest get 408 at the headers timeout', async () => {
      const connections: Trickle[] = [];
      const answeredWhenClosed: number[] = [];
      const onClose = (t: Trickle): void => {
        if (t.received === '') answeredWhenClosed.push(connections.filter((c) => c.closed && c.received !== '').length);
      };
      for (let i = 0; i < 500; i++) connections.push(trickle(port, ATTACKER, onClose));
      const dripping = setInterval(() => drip(connections), 300);
      try {
        await eventually(async () => ((await fetch(`${gateway.url}/healthz`, { signal: AbortSignal.timeout(2_000) })).status === 200 ? true : undefined), 10_000, '/healthz from 127.0.0.1');
        await eventually(() => Promise.resolve(connections.every((c) => c.closed) ? true : undefined), 20_000, 'every trickling connection closed');
      } finally {
        clearInterval(dripping);
        for (const c of connections) c.socket.destroy();
      }
      const timedOut = connections.filter((c) => c.received !== '');
      expect(timedOut).toHaveLength(PER_CLIENT_CAP);
      for (const c of timedOut) expect(c.received).toMatch(/^HTTP\/1\.1 408 [^]*"code":"request_timeout"/);
      // the ones over the cap were refused while all the others were still waiting for their headers
      expect(answeredWhenClosed).toHaveLength(500 - PER_CLIENT_CAP);
      expect(answeredWhenClosed.every((n) => n === 0)).toBe(true);
    });

    it('answers a body that trickles past SERVER_REQUEST_TIMEOUT_S outside /api with 408 and closes the connection', async () => {
      const { received, endedByGateway } = await trickledBody(port, 'POST /auth/backchannel-logout HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/x-www-form-urlencoded\r\n', 100, 250, true);
      expect(endedByGateway).toBe(true);
      expect(received).toMatch(/^HTTP\/1\.1 408 [^]*"code":"request_timeout"/);
    });

    it('lets an /api upload take longer than SERVER_REQUEST_TIMEOUT_S (UPSTREAM_TIMEOUT_S and the upstream govern it)', async () => {
      const browser = new BrowserClient();
      await browser.signIn(gateway.url);
      const cookie = await cookieHeader(browser, gateway.url);
      // 24 bytes at one per 250 ms: about 6 s, twice the request timeout
      const { received } = await trickledBody(port, `POST /api/slow-upload HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nCookie: ${cookie}\r\nX-CSRF: 1\r\nContent-Type: application/octet-stream\r\n`, 24, 250);
      expect(received).toMatch(/^HTTP\/1\.1 200 /);
      expect(received).toContain('"bodyBytes":24');
    });

    it('refuses CONNECT with a 405 problem whose Allow is empty (RFC 9110 §15.5.6: no method reaches another host through it) and closes the connection', async () => {
      const { received, closed } = await rawExchange(port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
      expect(closed).toBe(true);
      expect(received).toMatch(/^HTTP\/1\.1 405 /);
      expect(received).toMatch(/^allow: *\r$/im);
      expect(received).toMatch(/content-type: application\/problem\+json/i);
      const body = JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
      expect(body).toMatchObject({ status: 405, code: 'method_not_allowed', type: '/problems/method_not_allowed' });
    });

    it('serves /healthz and /readyz on METRICS_PORT too', async () => {
      const healthz = await fetch(`http://127.0.0.1:${metricsPort}/healthz`);
      expect(healthz.status).toBe(200);
      expect(await healthz.json()).toEqual({ status: 'ok' });
      const readyz = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
      expect(readyz.status).toBe(200);
      expect(await readyz.json()).toEqual({ status: 'ready' });
      expect(readyz.headers.get('cache-control')).toBe('no-store');
    });
  });

  describe('soak', () => {
    it(`serves signed-in traffic at concurrency 8 for ${SOAK_S} s beside attacks: no 5xx, nothing unanswered, RSS within 1.5x of the warmed-up value`, async () => {
      const browser = new BrowserClient();
      await browser.signIn(gateway.url);
      const cookie = await cookieHeader(browser, gateway.url);
      const failures: string[] = [];
      let served = 0;
      const legitimate = async (until: number): Promise<void> => {
        for (let i = 0; Date.now() < until; i++) {
          const url = i % 2 === 0 ? `${gateway.url}/api/orders/${i}` : `${gateway.url}/auth/me`;
          try {
            const res = await fetch(url, { headers: { cookie, 'x-csrf': '1', accept: 'application/json' }, signal: AbortSignal.timeout(10_000) });
            await res.arrayBuffer();
            if (res.status >= 500 || res.status === 401) failures.push(`${url}: ${res.status}`);
            else served++;
          } catch (error) {
            failures.push(`${url}: ${error instanceof Error ? error.message : String(error)}`);
          }
        }
      };
      const pid = gateway.child.process.pid ?? 0;
      // warm-up: the same traffic and the same attacks for a few seconds, so the heap has grown to its
      // working size (Node 24 sizes its young generation and external buffers lazily) before RSS is taken
      const attacksUntil = (until: number, stop: AbortSignal): Array<Promise<number>> => [
        trickleAttack(port, until, stop),
        repeatAttack(until, () => rawExchange(port, 'GET /%%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', '127.0.0.4')),
        repeatAttack(until, () => rawExchange(port, 'GARBAGE\r\n\r\n', '127.0.0.4')),
        repeatAttack(until, () => rawExchange(port, `GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, '127.0.0.4')),
        repeatAttack(until, () => rawExchange(port, 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n', '127.0.0.5')),
        repeatAttack(until, () => rawExchange(port, `GET /auth/login?returnTo=/%E6%97%A5%0D%0A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, '127.0.0.6')),
        // streams the browser closes after the first chunk (EventSource, downloads)
        repeatAttack(until, () => closedStream(port, cookie, '127.0.0.7')),
        // WebSocket handshakes reset at once: refused (foreign origin, no session) and accepted (101 on its way)
        repeatAttack(until, (i) => resetHandshake(port, i % 3 === 0 ? { Origin: 'https://evil.example', Cookie: cookie } : i % 3 === 1 ? { Origin: gateway.url } : { Origin: gateway.url, Cookie: cookie }, '127.0.0.8')),
      ];
      const warmUntil = Date.now() + WARM_UP_S * 1000;
      const warmAttacks = attacksUntil(warmUntil, new AbortController().signal);
      await Promise.all(Array.from({ length: 8 }, () => legitimate(warmUntil)));
      await Promise.all(warmAttacks);
      const warmRss = vmRssKb(pid);

      const until = Date.now() + SOAK_S * 1000;
      const stopAttacks = new AbortController();
      const attacks = attacksUntil(until, stopAttacks.signal);
      await Promise.all(Array.from({ length: 8 }, () => legitimate(until)));
      stopAttacks.abort();
      const attackCounts = await Promise.all(attacks);
      const endRss = vmRssKb(pid);
      // the figures are part of the issue's evidence
      console.log(
        `soak ${SOAK_S} s: ${served} legitimate requests served, ${failures.length} failed; attacks sent ${attackCounts.join('/')} (trickle/bad-percent/garbage/big-header/CONNECT/bad-returnTo/closed-stream/reset-handshake); RSS ${(warmRss / 1024).toFixed(1)} MB after warm-up, ${(endRss / 1024).toFixed(1)} MB at the end`,
      );
      expect(failures.slice(0, 10)).toEqual([]);
      expect(served).toBeGreaterThan(0);
      expect(endRss).toBeLessThan(warmRss * 1.5);
      expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
      // every stream the browser side closed was closed upstream too: no connection leaked
      await eventually(() => {
        const streams = hostile.streams();
        return Promise.resolve(streams.started > 0 && streams.closed === streams.started);
      }, 10_000, 'every closed stream closed upstream');
      // the soak itself, warm-up, sign-in and the attacks' last exchanges (each bounded at 10 s)
    }, (SOAK_S + WARM_UP_S + 50) * 1000);
  });
});

/** Keeps about 300 trickling connections from the attacker's address open until `until`, topping them up twice a second; returns how many were opened. */
async function trickleAttack(port: number, until: number, stop: AbortSignal): Promise<number> {
  const open = new Set<Trickle>();
  let opened = 0;
  const topUp = (): void => {
    while (open.size < 300 && opened < 20_000) {
      opened++;
      const t = trickle(port, ATTACKER, () => open.delete(t));
      open.add(t);
    }
    drip([...open]);
  };
  topUp();
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      if (Date.now() >= until || stop.aborted) {
        clearInterval(tick);
        resolve();
      } else topUp();
    }, 500);
  });
  for (const t of open) t.socket.destroy();
  return opened;
}

/** Opens a streaming /api response with the session and closes it after its first bytes, as a browser leaving a page does. */
function closedStream(port: number, cookie: string, localAddress: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress });
    const timer = setTimeout(() => socket.destroy(), 10_000);
    socket.on('error', () => undefined);
    socket.on('connect', () => socket.write(`GET /api/hostile/stream HTTP/1.1\r\nHost: x\r\nCookie: ${cookie}\r\nX-CSRF: 1\r\n\r\n`));
    socket.once('data', () => socket.destroy());
    socket.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Sends a WebSocket handshake on /api and resets the connection right after, before any answer can be read. */
function resetHandshake(port: number, headers: Record<string, string>, localAddress: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress });
    socket.on('error', () => undefined);
    socket.on('connect', () => {
      socket.write(handshake(new URL(`http://127.0.0.1:${port}`), '/api/hostile/ws', headers));
      // a reset, not a close: the gateway's next write meets ECONNRESET
      socket.resetAndDestroy();
    });
    socket.on('close', () => resolve());
  });
}

/** Runs one attack after another until `until`; returns how many ran. */
async function repeatAttack(until: number, attack: (round: number) => Promise<unknown>): Promise<number> {
  let count = 0;
  while (Date.now() < until) {
    await attack(count).catch(() => undefined);
    count++;
    // paced (about 20 a second each): a bounded attack on two shared cores, not a CPU benchmark
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return count;
}

describe('signing in again replaces the browser\'s session', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack.stop();
  });

  /** One refresh_token grant at the provider: 200 while the grant lives, 400 invalid_grant once revoked. */
  const refreshStatus = async (refreshToken: string | undefined): Promise<number> => {
    const res = await refreshGrantAsClient(`${stack.op.issuer}/token`, refreshToken, { clientId: stack.op.clientId, secret: stack.op.clientSecret });
    await res.arrayBuffer();
    return res.status;
  };

  it('revokes the old session\'s refresh token when the new login is another provider session (another grant)', async () => {
    const first = await stack.signedIn('alice');
    const old = await sessionOf(stack.gateway.app, first, stack.gateway.url);
    // the same gateway cookie, without the provider's cookies: the provider session has ended meanwhile
    const browser = new BrowserClient();
    const gatewayCookie = (await first.cookies(stack.gateway.url)).find((c) => c.name === '__Host-bff-session');
    await browser.jar.setCookie(`__Host-bff-session=${gatewayCookie?.value ?? ''}; Path=/; Secure; HttpOnly; SameSite=Lax`, stack.gateway.url);
    expect((await browser.request(`${stack.gateway.url}/auth/me`)).status).toBe(200);

    const { visited } = await browser.signIn(stack.gateway.url, { login: 'alice', returnTo: '/x' });
    expect(visited.at(-1)).toBe(`${stack.gateway.url}/x`);
    const current = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    expect(current.record.providerSid).not.toBe(old.record.providerSid);
    expect(await old.store.get(old.record.id)).toBeUndefined();
    expect(await refreshStatus(old.record.tokens.refreshToken)).toBe(400);
    expect(await refreshStatus(current.record.tokens.refreshToken)).toBe(200);
  });

  it('keeps the new session\'s refresh token usable when the provider reuses its session (and grant) for the new login', async () => {
    const browser = await stack.signedIn('carol');
    const old = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    const start = await browser.navigate(`${stack.gateway.url}/auth/login?returnTo=/y`);
    const end = await browser.completeProviderInteraction(start);
    expect([...start.visited, ...end.visited].at(-1)).toBe(`${stack.gateway.url}/y`);
    const current = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    expect(current.record.id).not.toBe(old.record.id);
    expect(await old.store.get(old.record.id)).toBeUndefined();
    expect(await refreshStatus(current.record.tokens.refreshToken)).toBe(200);
  });

  it('ends the old session only after the new one is stored, so a failed write leaves the user signed in as before', async () => {
    const browser = await stack.signedIn('dave');
    const { store, record: old } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    // observation only: both calls go through to the real store
    const create = jest.spyOn(store, 'create');
    const remove = jest.spyOn(store, 'delete');
    try {
      const start = await browser.navigate(`${stack.gateway.url}/auth/login?returnTo=/z`);
      await browser.completeProviderInteraction(start);
      const createdAt = create.mock.invocationCallOrder[0];
      const deletedAt = remove.mock.invocationCallOrder[remove.mock.calls.findIndex(([id]) => id === old.id)];
      expect(createdAt).toBeDefined();
      expect(deletedAt).toBeDefined();
      expect(createdAt ?? Infinity).toBeLessThan(deletedAt ?? -Infinity);
    } finally {
      create.mockRestore();
      remove.mockRestore();
    }
  });
});

describe('an error thrown while a reply is written', () => {
  let rogue: RogueOp;
  let gateway: RunningGateway;
  // Node refuses to write the login redirect's Location (as it once did for a provider's raw
  // non-ASCII authorization endpoint, before discovery kept endpoints percent-encoded), once the
  // route has returned: injected here, since no provider's answer causes it any more
  let refuseLocation = false;
  let restoreWriteHead = (): void => undefined;
  beforeAll(async () => {
    const writeHead = ServerResponse.prototype.writeHead;
    const spy = jest.spyOn(ServerResponse.prototype, 'writeHead').mockImplementation(function (this: ServerResponse, ...args: unknown[]) {
      const headers = args.find((arg): arg is OutgoingHttpHeaders => typeof arg === 'object' && arg !== null && !Array.isArray(arg));
      if (refuseLocation && headers?.['location'] !== undefined) throw Object.assign(new TypeError('Invalid character in header content ["location"]'), { code: 'ERR_INVALID_CHAR' });
      return Reflect.apply(writeHead, this, args) as ServerResponse;
    });
    restoreWriteHead = () => spy.mockRestore();
    rogue = await startRogueOp({ clientId: TEST_CLIENT_ID, clientSecret: TEST_CLIENT_SECRET });
    gateway = await startGateway({ OIDC_ISSUER: rogue.issuer, OIDC_CLIENT_ID: TEST_CLIENT_ID, OIDC_CLIENT_SECRET: TEST_CLIENT_SECRET });
    await waitUntilReady(gateway.url);
    refuseLocation = true;
  });
  afterAll(async () => {
    refuseLocation = false;
    restoreWriteHead();
    await gateway.close();
    await rogue.close();
  });

  it('answers a fetch with a 500 problem+json, not Fastify\'s default {"statusCode":500,...} body', async () => {
    const res = await fetch(`${gateway.url}/auth/login`, { headers: { accept: 'application/json', 'x-request-id': 'write-failure-1' }, redirect: 'manual', signal: AbortSignal.timeout(10_000) });
    expect(res.status).toBe(500);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.headers.get('location')).toBeNull();
    expect(await res.json()).toEqual({ type: '/problems/internal_error', title: 'Internal error', status: 500, code: 'internal_error', instance: 'write-failure-1' });
  });

  it('answers a browser navigation with the HTML problem page', async () => {
    const res = await fetch(`${gateway.url}/auth/login`, { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' }, redirect: 'manual', signal: AbortSignal.timeout(10_000) });
    expect(res.status).toBe(500);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await res.text()).toContain('internal_error');
  });
});

describe('sendProblem, the one writer, when the reply itself cannot be written', () => {
  let app: FastifyInstance;
  let url: string;
  beforeAll(async () => {
    app = Fastify();
    // as the gateway's ProblemFilter does: Nest installs it as Fastify's error handler
    app.setErrorHandler((error, request, reply) => sendProblem(request, reply, error));
    app.get('/redirect', (_request, reply) => reply.redirect('/日', 302));
    app.get('/bad-header', (_request, reply) => reply.header('x-note', 'a\r\nb').header('x-fine', 'ok').send({ ok: true }));
    url = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await app.close();
  });

  it.each([
    ['a redirect to a Location with a non-ASCII character (ERR_INVALID_CHAR)', '/redirect'],
    ['a header value with CR LF', '/bad-header'],
  ])('answers %s with a 500 problem, dropping the header that failed and keeping the others', async (_what, path) => {
    const res = await fetch(`${url}${path}`, { headers: { accept: 'application/json' }, redirect: 'manual', signal: AbortSignal.timeout(10_000) });
    expect(res.status).toBe(500);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.headers.get('location')).toBeNull();
    expect(res.headers.get('x-note')).toBeNull();
    if (path === '/bad-header') expect(res.headers.get('x-fine')).toBe('ok');
    expect(await res.json()).toMatchObject({ type: '/problems/internal_error', status: 500, code: 'internal_error' });
  });
});
