import { Redis } from 'ioredis';
import { systemClock } from '../../src/common/clock.js';
import { RecordSeal } from '../../src/session/record-seal.js';
import { RedisSessionStore } from '../../src/session/redis-session-store.js';
import { BrowserClient } from '../support/browser.js';
import { cookieHeader } from '../support/raw-http.js';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import { redisReplicaEnvironment, TEST_SESSION_SECRET } from '../support/test-env.js';
import { startOp, type RunningOp } from '../support/op.js';
import { freePort } from '../support/ports.js';
import { startRedis, type RunningRedis } from '../support/redis.js';
import { eventually, waitUntilReady } from '../support/wait.js';
import { startUpstream, type RunningUpstream } from '../support/upstream.js';

/**
 * Two gateway processes (node dist/main.js) behind an imaginary load balancer, sharing one real
 * redis-server with AOF on, the real provider, and the real upstream.
 */
describe('several replicas on one Redis', () => {
  let redis: RunningRedis;
  let op: RunningOp;
  let upstream: RunningUpstream;
  let a: GatewayProcess;
  let b: GatewayProcess;
  let portA: string;
  let portB: string;
  let inspect: Redis;

  function env(port: string, extra: Record<string, string> = {}): Record<string, string> {
    return redisReplicaEnvironment(port, op, upstream.url, redis.url, extra);
  }

  async function startReplica(port: string, extra: Record<string, string> = {}): Promise<GatewayProcess> {
    const replica = await startGatewayProcess(env(port, extra));
    await waitUntilReady(replica.url);
    return replica;
  }

  beforeAll(async () => {
    redis = await startRedis({ appendonly: true });
    [portA, portB] = [String(await freePort()), String(await freePort())];
    op = await startOp({ gatewayUrl: `http://127.0.0.1:${portA}`, accessTokenTtlS: 60 });
    upstream = await startUpstream(op);
    [a, b] = await Promise.all([startReplica(portA), startReplica(portB)]);
    inspect = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    inspect.disconnect();
    await Promise.all([a.stop(), b.stop()]);
    await upstream.close();
    await op.stop();
    await redis.close();
  });

  const api = (browser: BrowserClient, replica: GatewayProcess): Promise<Response> => browser.request(`${replica.url}/api/whoami`, { headers: { 'x-csrf': '1' } });
  const me = async (browser: BrowserClient, replica: GatewayProcess): Promise<number> => (await browser.request(`${replica.url}/auth/me`)).status;

  async function signIn(login: string): Promise<BrowserClient> {
    const browser = new BrowserClient();
    await browser.signIn(a.url, { login });
    return browser;
  }

  /** Calls per Redis command so far (INFO commandstats), without the INFO calls that read them. */
  async function commandCounts(): Promise<Record<string, number>> {
    const info = await inspect.info('commandstats');
    const counts: Record<string, number> = {};
    for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (match[1] !== 'info') counts[match[1] ?? ''] = Number(match[2]);
    return counts;
  }

  /** The store key of a user's only session (tests use one login per user), found through its by-sub index. */
  async function sessionIdOf(sub: string): Promise<string> {
    const ids = await inspect.smembers(`bff:by-sub:${new RecordSeal([TEST_SESSION_SECRET]).lookupHash(sub)}`);
    expect(ids).toHaveLength(1);
    return ids[0] ?? '';
  }

  it('serves a session signed in through A on B, and a logout through B signs out A too', async () => {
    const browser = await signIn('rita');
    const res = await api(browser, b);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { sub: string }).sub).toBe('rita');
    const logoutUrl = ((await (await browser.request(`${b.url}/auth/me`)).json()) as { logoutUrl: string }).logoutUrl;
    expect((await browser.request(`${b.url}${logoutUrl}`)).status).toBe(302);
    expect(await me(browser, a)).toBe(401);
    expect((await api(browser, a)).status).toBe(401);
  });

  it('keeps sessions across a restart of a gateway process', async () => {
    const browser = await signIn('sam');
    await a.stop('SIGTERM');
    a = await startReplica(portA);
    expect(await me(browser, a)).toBe(200);
    expect((await api(browser, a)).status).toBe(200);
  });

  it('ends the session on both replicas when the provider sends a back-channel logout', async () => {
    const browser = await signIn('tina');
    const page = await browser.navigate(`${op.issuer}/session/end?client_id=${op.clientId}`);
    await browser.confirmProviderLogout(page.response);
    expect(await me(browser, a)).toBe(401);
    expect(await me(browser, b)).toBe(401);
  });

  it('refreshes once for 20 concurrent calls spread over both replicas', async () => {
    const browser = await signIn('uma');
    const id = await sessionIdOf('uma');
    // the records are sealed: age the token through a store with the replicas' secret
    const store = await RedisSessionStore.open({ url: redis.url, password: undefined, keyPrefix: 'bff:', secrets: [TEST_SESSION_SECRET] }, systemClock);
    const stored = await store.get(id);
    try {
      if (stored === undefined) throw new Error('the session is gone');
      // age the token into the refresh window (the provider still honours it)
      const aged = { ...stored.tokens, accessTokenExpiresAt: Date.now() + 5_000 };
      expect(await store.replaceTokens(id, stored.version, aged, stored.claims)).toBe('replaced');
    } finally {
      await store.close();
    }
    const before = upstream.received.length;
    const responses = await Promise.all(Array.from({ length: 20 }, (_, i) => api(browser, i % 2 === 0 ? a : b)));
    expect(responses.map((r) => r.status)).toEqual(Array.from({ length: 20 }, () => 200));
    const tokens = new Set(upstream.received.slice(before).map((r) => String(r.headers.authorization)));
    expect(tokens.size).toBe(1);
    expect(tokens.has(`Bearer ${stored?.tokens.accessToken ?? ''}`)).toBe(false);
  });

  it('answers 503 (never 401) while Redis is frozen, and serves the same session once it resumes', async () => {
    const browser = await signIn('vic');
    redis.freeze();
    try {
      const res = await api(browser, b);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(await res.json()).toMatchObject({ code: 'session_store_unavailable' });
      expect((await browser.request(`${a.url}/auth/me`)).status).toBe(503);
      const ready = await fetch(`${a.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { missing: string[] }).missing).toContain('session_store');
      expect((await fetch(`${a.url}/healthz`)).status).toBe(200);
    } finally {
      redis.thaw();
    }
    await eventually(async () => ((await api(browser, b)).status === 200 ? true : undefined), 15_000, 'session served again after SIGCONT');
    await waitUntilReady(a.url);
  });

  it('keeps sessions when Redis (with AOF) is killed and restarted', async () => {
    const browser = await signIn('walt');
    await redis.stop('SIGKILL');
    expect((await api(browser, a)).status).toBe(503);
    await redis.restart();
    await eventually(async () => ((await api(browser, a)).status === 200 ? true : undefined), 15_000, 'session served after Redis restart');
    expect(await me(browser, b)).toBe(200);
  });

  it('makes exactly one Redis round-trip (an HGETALL of the record) per /api call while the token is fresh', async () => {
    const browser = await signIn('yuri');
    expect((await api(browser, a)).status).toBe(200);
    const before = await commandCounts();
    for (let i = 0; i < 10; i++) expect((await api(browser, i % 2 === 0 ? a : b)).status).toBe(200);
    const after = await commandCounts();
    const delta = Object.fromEntries(Object.entries(after).map(([name, calls]) => [name, calls - (before[name] ?? 0)]).filter(([, calls]) => calls !== 0));
    expect(delta).toEqual({ hgetall: 10 });
  });

  it('starts with Redis down, reports not ready and 503, and serves the existing session once Redis is up', async () => {
    const browser = await signIn('zoe');
    await redis.stop('SIGTERM');
    await a.stop('SIGTERM');
    a = await startGatewayProcess(env(portA));
    try {
      expect((await fetch(`${a.url}/healthz`)).status).toBe(200);
      const ready = await fetch(`${a.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { missing: string[] }).missing).toContain('session_store');
      expect((await api(browser, a)).status).toBe(503);
    } finally {
      await redis.restart();
    }
    await waitUntilReady(a.url);
    expect((await api(browser, a)).status).toBe(200);
    expect(a.child.process.exitCode).toBeNull();
  });

  it('keeps sessions across a secret rotation and refuses cookies sealed with a retired secret', async () => {
    const browser = await signIn('xena');
    const sealedWithOld = await cookieHeader(browser, a.url);
    const newSecret = 'rotated-session-secret-0123456789abcdef';
    await a.stop('SIGTERM');
    a = await startReplica(portA, { SESSION_SECRET: `${newSecret},${TEST_SESSION_SECRET}` });
    // opened with the old key, the cookie is sealed again with the new one on this response
    expect(await me(browser, a)).toBe(200);
    expect(await cookieHeader(browser, a.url)).not.toBe(sealedWithOld);
    const afterRotation = new BrowserClient();
    await afterRotation.signIn(a.url, { login: 'yara' });
    await a.stop('SIGTERM');
    a = await startReplica(portA, { SESSION_SECRET: newSecret });
    expect(await me(afterRotation, a)).toBe(200);
    expect((await fetch(`${a.url}/auth/me`, { headers: { cookie: sealedWithOld } })).status).toBe(401);
    // its store record is still sealed under the retired secret: the README says to retire a
    // secret only once SESSION_ABSOLUTE_TIMEOUT_S has passed since it stopped sealing
    expect(await me(browser, a)).toBe(401);
    await a.stop('SIGTERM');
    a = await startReplica(portA);
  });
});
