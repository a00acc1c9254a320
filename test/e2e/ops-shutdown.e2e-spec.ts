import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { BrowserClient } from '../support/browser.js';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import { startOp, type RunningOp } from '../support/op.js';
import { freePort } from '../support/ports.js';
import { startRedis, type RunningRedis } from '../support/redis.js';
import { followStream, startStreamingUpstream, type StreamEnd, type StreamingUpstream } from '../support/streaming-upstream.js';
import { eventually, waitUntilReady } from '../support/wait.js';

interface Running {
  readonly op: RunningOp;
  readonly upstream: StreamingUpstream;
  readonly gateway: GatewayProcess;
  readonly browser: BrowserClient;
}

const running: Running[] = [];

/** A provider, the streaming upstream and `node dist/main.js` on one fresh port, with a signed-in browser. */
async function startSignedIn(env: Record<string, string>): Promise<Running> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const op = await startOp({ gatewayUrl: url });
  const upstream = await startStreamingUpstream();
  const gateway = await startGatewayProcess({
    PORT: String(port),
    PUBLIC_URL: url,
    OIDC_ISSUER: op.issuer,
    OIDC_CLIENT_ID: op.clientId,
    OIDC_CLIENT_SECRET: op.clientSecret,
    UPSTREAM_URL: upstream.url,
    ...env,
  });
  const entry = { op, upstream, gateway, browser: new BrowserClient() };
  running.push(entry);
  await waitUntilReady(gateway.url);
  await entry.browser.signIn(gateway.url);
  return entry;
}

/** Starts a proxied request whose response is streaming (first chunk received, not ended). */
async function startStream(entry: Running): Promise<{ response: Response; end: Promise<StreamEnd> }> {
  const response = await entry.browser.request(`${entry.gateway.url}/api/stream`, { headers: { 'x-csrf': '1' } });
  expect(response.status).toBe(200);
  const { first, end } = await followStream(response);
  expect(first).toBe('first\n');
  return { response, end };
}

/** A connection that has sent part of a request: in flight for the server, so it survives the listener closing. */
async function halfSentRequest(url: string, path: string): Promise<{ socket: Socket; finish(): Promise<string> }> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await once(socket, 'connect');
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\n`);
  // one full round trip on another connection: the server has read the partial request by then
  await (await fetch(`${url}/healthz`)).text();
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
  return {
    socket,
    async finish() {
      socket.write('\r\n');
      return eventually(() => Promise.resolve(received.includes('\r\n\r\n') ? received : undefined), 5_000, 'a response on the half-sent request');
    },
  };
}

/** fetch() rejects with a TypeError whose cause carries the socket error code (checked by shape: Jest's realm has its own TypeError). */
function causeCode(error: unknown): unknown {
  const cause: unknown = typeof error === 'object' && error !== null ? Reflect.get(error, 'cause') : undefined;
  return typeof cause === 'object' && cause !== null ? Reflect.get(cause, 'code') : undefined;
}

function exitOf(gateway: GatewayProcess): Promise<number | null> {
  const child = gateway.child.process;
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return once(child, 'exit').then(([code]: unknown[]) => (typeof code === 'number' ? code : null));
}

function events(gateway: GatewayProcess): string[] {
  return gateway.child
    .output()
    .split('\n')
    .flatMap((line) => /"event":"(\w+)"/.exec(line)?.[1] ?? []);
}

describe('graceful shutdown on SIGTERM (node dist/main.js)', () => {
  let redis: RunningRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    for (const entry of running.splice(0)) {
      await entry.gateway.stop();
      await entry.upstream.close();
      await entry.op.stop();
    }
  });
  afterAll(async () => {
    await redis.close();
  });

  it('turns /readyz 503, stops accepting connections, lets a streaming response finish, closes Redis and exits 0', async () => {
    const entry = await startSignedIn({ SESSION_STORE: 'redis', REDIS_URL: redis.url, SHUTDOWN_GRACE_S: '30' });
    const { gateway, upstream } = entry;
    const stream = await startStream(entry);
    const readyz = await halfSentRequest(gateway.url, '/readyz');
    const exited = exitOf(gateway);

    gateway.child.process.kill('SIGTERM');
    await eventually(() => Promise.resolve(events(gateway).includes('shutdown_started') ? true : undefined), 5_000, 'shutdown_started');

    expect(await readyz.finish()).toMatch(/^HTTP\/1\.1 503 /);
    readyz.socket.destroy();
    await eventually(
      () =>
        fetch(`${gateway.url}/healthz`).then(
          () => undefined,
          (error: unknown) => (causeCode(error) === 'ECONNREFUSED' ? true : undefined),
        ),
      5_000,
      'new connections refused',
    );
    // still draining: the streaming response holds the process open
    expect(gateway.child.process.exitCode).toBeNull();

    upstream.release();
    expect(await stream.end).toEqual({ ended: 'complete', rest: 'last\n' });
    expect(await exited).toBe(0);
    const seen = events(gateway);
    expect(seen).toEqual(expect.arrayContaining(['shutdown_started', 'shutdown_complete']));
    // it exited by itself: the Redis connection, agents and timers were all released
    expect(seen).not.toContain('shutdown_forced_exit');
    expect(seen).not.toContain('shutdown_grace_expired');
  });

  it('cuts what is still in flight after SHUTDOWN_GRACE_S and exits 0', async () => {
    const entry = await startSignedIn({ SHUTDOWN_GRACE_S: '1' });
    const { gateway } = entry;
    const stream = await startStream(entry);
    const exited = exitOf(gateway);
    const signalledAt = Date.now();

    gateway.child.process.kill('SIGTERM');
    expect(await exited).toBe(0);
    const elapsed = Date.now() - signalledAt;
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(5_000);
    expect(await stream.end).toEqual({ ended: 'cut' });
    expect(events(gateway)).toEqual(expect.arrayContaining(['shutdown_started', 'shutdown_grace_expired', 'shutdown_complete']));
  });
});
