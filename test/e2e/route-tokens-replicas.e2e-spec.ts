import { decodeJwt } from 'jose';
import { startSampleApi, type RunningSampleApi } from '../../demo/sample-api.js';
import { BrowserClient } from '../support/browser.js';
import { startGateway, type RunningGateway } from '../support/gateway.js';
import { startOp, type RunningOp } from '../support/op.js';
import { freePort } from '../support/ports.js';
import { startRedis, type RunningRedis } from '../support/redis.js';
import { waitUntilReady } from '../support/wait.js';

const ORDERS = 'urn:bff-test:orders';

/**
 * Two replicas on one Redis: a route's token is obtained once per session whichever replica the
 * calls reach (the session's one refresh lock in Redis), and read back sealed from the record.
 */
describe('per-route tokens across replicas', () => {
  let redis: RunningRedis;
  let op: RunningOp;
  let orders: RunningSampleApi;
  let a: RunningGateway;
  let b: RunningGateway;

  beforeAll(async () => {
    redis = await startRedis();
    const [portA, portB, ordersPort] = [await freePort(), await freePort(), await freePort()];
    op = await startOp({ gatewayUrl: `http://127.0.0.1:${portA}`, resources: { [ORDERS]: 'orders.read' } });
    orders = await startSampleApi({ issuer: op.issuer, audience: ORDERS, port: ordersPort, host: '127.0.0.1' });
    const env = (port: number): Record<string, string> => ({
      PORT: String(port),
      OIDC_ISSUER: op.issuer,
      OIDC_CLIENT_ID: op.clientId,
      OIDC_CLIENT_SECRET: op.clientSecret,
      PROXY_ROUTES: JSON.stringify([{ prefix: '/api/orders', target: orders.url, resource: ORDERS, scope: 'orders.read' }]),
      SESSION_STORE: 'redis',
      REDIS_URL: redis.url,
      TOKEN_REFRESH_SKEW_S: '0',
    });
    [a, b] = await Promise.all([startGateway(env(portA)), startGateway(env(portB))]);
    await Promise.all([waitUntilReady(a.url), waitUntilReady(b.url)]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a.close(), b.close()]);
    await orders.close();
    await op.stop();
    await redis.close();
  });

  const grants = (): number =>
    op.child
      .output()
      .split('\n')
      .filter((line) => line.includes('"event":"grant.success"') && line.includes(`"resource":"${ORDERS}"`)).length;
  const reuses = (): number => op.child.output().split('\n').filter((line) => line.includes('refresh token already used')).length;

  it('obtains the route\'s token once for calls spread over both replicas, and renews it once after expiry', async () => {
    const browser = new BrowserClient();
    await browser.signIn(a.url, { login: 'alice' });
    // the jar keys cookies by host, not port: the session cookie reaches both replicas
    const burst = async (): Promise<number[]> =>
      Promise.all(Array.from({ length: 8 }, async (_, i) => (await browser.request(`${(i % 2 === 0 ? a : b).url}/api/orders/${i}`, { headers: { 'x-csrf': '1' } })).status));
    const before = grants();
    const since = orders.received.length;
    expect(await burst()).toEqual(Array.from({ length: 8 }, () => 200));
    expect(grants() - before).toBe(1);
    expect(new Set(orders.received.slice(since).map((r) => decodeJwt((r.headers.authorization ?? '').replace(/^Bearer /, '')).aud))).toEqual(new Set([ORDERS]));

    a.clock.advance(301_000);
    b.clock.advance(301_000);
    expect(await burst()).toEqual(Array.from({ length: 8 }, () => 200));
    expect(grants() - before).toBe(2);
    expect(reuses()).toBe(0);
  });
});
