import { BrowserClient } from '../support/browser.js';
import { startBehaviourUpstream, type TestUpstream } from '../support/fault-upstreams.js';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import { sessionOf } from '../support/gateway-state.js';
import { startOp, type RunningOp } from '../support/op.js';
import { redisReplicaEnvironment } from '../support/test-env.js';
import { freePort } from '../support/ports.js';
import { cookieHeader, openUpgrade, type OpenUpgrade } from '../support/raw-http.js';
import { startRedis, type RunningRedis } from '../support/redis.js';
import { startStack, type Stack } from '../support/stack.js';
import { eventually, waitUntilReady } from '../support/wait.js';

/** Sockets are checked every second here (SESSION_WEBSOCKET_CHECK_S=1); the default is 10 s, the promise 30 s. */
const CLOSE_DEADLINE_MS = 10_000;

async function openSocket(browser: BrowserClient, gatewayUrl: string, path = '/api/b/socket'): Promise<OpenUpgrade> {
  const socket = await openUpgrade(gatewayUrl, path, { cookie: await cookieHeader(browser, gatewayUrl), origin: new URL(gatewayUrl).origin });
  expect(socket.statusLine).toContain(' 101 ');
  return socket;
}

async function expectClosed(socket: OpenUpgrade, what: string): Promise<void> {
  await eventually(() => Promise.resolve(socket.isClosed() ? true : undefined), CLOSE_DEADLINE_MS, what);
}

async function logoutThrough(browser: BrowserClient, gatewayUrl: string): Promise<void> {
  const me = (await (await browser.request(`${gatewayUrl}/auth/me`)).json()) as { logoutUrl: string };
  expect((await browser.request(`${gatewayUrl}${me.logoutUrl}`)).status).toBe(302);
}

describe('open WebSockets follow their session', () => {
  describe('on one gateway', () => {
    let stack: Stack;
    let behaviour: TestUpstream;
    const sockets: OpenUpgrade[] = [];

    beforeAll(async () => {
      behaviour = await startBehaviourUpstream();
      const routes = (sampleApi: string): string => JSON.stringify([{ prefix: '/api/b', target: behaviour.url }, { prefix: '/api', target: sampleApi }]);
      stack = await startStack((sampleApi) => ({ PROXY_ROUTES: routes(sampleApi), SESSION_WEBSOCKET_CHECK_S: '1' }));
    });
    afterEach(() => {
      stack.gateway.clock.reset();
    });
    afterAll(async () => {
      for (const socket of sockets) socket.close();
      await stack.stop();
      await behaviour.close();
    });

    async function open(browser: BrowserClient): Promise<OpenUpgrade> {
      const socket = await openSocket(browser, stack.gateway.url);
      sockets.push(socket);
      return socket;
    }

    it('closes the socket (and its upstream connection) when the user logs out, and keeps another user\'s', async () => {
      const alice = await stack.signedIn('alice');
      const bob = await stack.signedIn('bob');
      const upstreamBefore = behaviour.openUpgrades();
      const aliceSocket = await open(alice);
      const bobSocket = await open(bob);
      await eventually(() => Promise.resolve(behaviour.openUpgrades() === upstreamBefore + 2 ? true : undefined), 5_000, 'both sockets open upstream');
      await logoutThrough(alice, stack.gateway.url);
      await expectClosed(aliceSocket, 'the logged-out user\'s WebSocket closed');
      await eventually(() => Promise.resolve(behaviour.openUpgrades() === upstreamBefore + 1 ? true : undefined), 5_000, 'the upstream side closed as well');
      expect(bobSocket.isClosed()).toBe(false);
    });

    it('closes the socket when the provider signs the user out (back-channel logout)', async () => {
      const carol = await stack.signedIn('carol');
      const socket = await open(carol);
      const page = await carol.navigate(`${stack.op.issuer}/session/end?client_id=${stack.op.clientId}`);
      await carol.confirmProviderLogout(page.response);
      await expectClosed(socket, 'the WebSocket closed after back-channel logout');
    });

    it('closes the socket when its session expires', async () => {
      const dave = await stack.signedIn('dave');
      const socket = await open(dave);
      stack.gateway.clock.advance(stack.gateway.config.session.idleTimeoutS * 1000 + 1_000);
      await expectClosed(socket, 'the WebSocket closed after its session expired');
      expect((await dave.request(`${stack.gateway.url}/auth/me`)).status).toBe(401);
    });

    it('slides the idle timeout of a session whose only activity is an open socket, once due', async () => {
      const erin = await stack.signedIn('erin');
      // the handshake itself is activity (it slides like a request); what follows is the socket alone
      const socket = await open(erin);
      const { store, record } = await sessionOf(stack.gateway.app, erin, stack.gateway.url);
      const idleMs = stack.gateway.config.session.idleTimeoutS * 1000;
      const stale = record.idleExpiresAt;
      // last activity 61 s ago: a request now would slide it (at most once a minute)
      stack.gateway.clock.advance(61_000);
      const slid = await eventually(
        async () => {
          const current = await store.get(record.id);
          return current !== undefined && current.idleExpiresAt > stale + 30_000 ? current.idleExpiresAt : undefined;
        },
        CLOSE_DEADLINE_MS,
        'the open socket slid the idle timeout',
      );
      expect(slid).toBeLessThanOrEqual(stack.gateway.clock.now() + idleMs);
      expect(socket.isClosed()).toBe(false);
    });
  });

  describe('while Redis is frozen', () => {
    let redis: RunningRedis;
    let behaviour: TestUpstream;
    let stack: Stack;
    let socket: OpenUpgrade | undefined;

    beforeAll(async () => {
      redis = await startRedis();
      behaviour = await startBehaviourUpstream();
      stack = await startStack({ UPSTREAM_URL: behaviour.url, SESSION_STORE: 'redis', REDIS_URL: redis.url, SESSION_WEBSOCKET_CHECK_S: '1' });
    });
    afterAll(async () => {
      socket?.close();
      await stack.stop();
      await behaviour.close();
      await redis.close();
    });

    it('keeps the socket open: a session that cannot be read is not a session that ended', async () => {
      const browser = await stack.signedIn('frida');
      socket = await openSocket(browser, stack.gateway.url, '/api/socket');
      const open = socket;
      const skippedChecks = (): number => stack.gateway.logLines().filter((line) => String(line['msg']).startsWith('WebSocket session check skipped')).length;
      const before = skippedChecks();
      redis.freeze();
      try {
        await eventually(() => Promise.resolve(skippedChecks() > before ? true : undefined), CLOSE_DEADLINE_MS, 'a socket check that could not read the session');
      } finally {
        redis.thaw();
      }
      expect(open.isClosed()).toBe(false);
      expect((await browser.request(`${stack.gateway.url}/api/socket`, { headers: { 'x-csrf': '1' } })).status).toBe(200);
    });
  });

  describe('on two replicas sharing one Redis', () => {
    let redis: RunningRedis;
    let op: RunningOp;
    let behaviour: TestUpstream;
    let a: GatewayProcess;
    let b: GatewayProcess;
    const sockets: OpenUpgrade[] = [];

    beforeAll(async () => {
      redis = await startRedis();
      const [portA, portB] = [String(await freePort()), String(await freePort())];
      op = await startOp({ gatewayUrl: `http://127.0.0.1:${portA}` });
      behaviour = await startBehaviourUpstream();
      const env = (port: string): Record<string, string> => redisReplicaEnvironment(port, op, behaviour.url, redis.url, { SESSION_WEBSOCKET_CHECK_S: '1' });
      [a, b] = await Promise.all([startGatewayProcess(env(portA)), startGatewayProcess(env(portB))]);
      await Promise.all([waitUntilReady(a.url), waitUntilReady(b.url)]);
    });
    afterAll(async () => {
      for (const socket of sockets) socket.close();
      await Promise.all([a.stop(), b.stop()]);
      await behaviour.close();
      await op.stop();
      await redis.close();
    });

    it('closes a socket open on replica A when the user logs out through replica B, and keeps another user\'s', async () => {
      const rita = new BrowserClient();
      await rita.signIn(a.url, { login: 'rita' });
      const sam = new BrowserClient();
      await sam.signIn(a.url, { login: 'sam' });
      const ritaSocket = await openSocket(rita, a.url, '/api/socket');
      const samSocket = await openSocket(sam, a.url, '/api/socket');
      sockets.push(ritaSocket, samSocket);
      await logoutThrough(rita, b.url);
      await expectClosed(ritaSocket, 'the WebSocket on replica A closed after logout through replica B');
      // A checked its sockets at least once since the logout, and Sam's session is alive
      expect(samSocket.isClosed()).toBe(false);
    });
  });
});
