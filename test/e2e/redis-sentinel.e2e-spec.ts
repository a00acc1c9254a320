import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { BrowserClient } from '../support/browser.js';
import { sessionIdOf } from '../support/gateway-state.js';
import { addressList, SENTINEL_DOWN_AFTER_MS, startRedisSentinels, type RunningSentinels } from '../support/redis.js';
import { spawnChild } from '../support/processes.js';
import { answerOf } from '../support/rogue-op.js';
import { startStack, type Stack } from '../support/stack.js';
import { eventually } from '../support/wait.js';

const STORE_MODULE = fileURLToPath(new URL('../../src/session/redis-session-store.ts', import.meta.url));

/** Down-after, the vote, the promotion and the client's reconnect, with room to spare. */
const FAILOVER_DEADLINE_MS = SENTINEL_DOWN_AFTER_MS + 25_000;

/**
 * The gateway behind Redis Sentinel: a primary, a replica and three sentinels, all real. The
 * primary dies during traffic; the gateway answers 503 (never 401) until the sentinels promote
 * the replica, then serves the same session from it.
 */
describe('sessions on Redis Sentinel', () => {
  let sentinels: RunningSentinels;
  let stack: Stack;

  beforeAll(async () => {
    sentinels = await startRedisSentinels();
    stack = await startStack({ SESSION_STORE: 'redis', REDIS_SENTINELS: addressList(sentinels.sentinels), REDIS_SENTINEL_NAME: sentinels.name });
  }, 60_000);
  afterAll(async () => {
    await stack.stop();
    await sentinels.close();
  });

  const api = (browser: BrowserClient): Promise<Response> => browser.request(`${stack.gateway.url}/api/whoami`, { headers: { 'x-csrf': '1', accept: 'application/json' } });

  // In its own process: what must be seen is that nothing the store opened keeps a process alive.
  it('lets a process exit once its store is closed, although the sentinels it watches for a failover stay up', async () => {
    const sentinelList = JSON.stringify(sentinels.sentinels.map(({ port }) => ({ host: '127.0.0.1', port })));
    const script = `
      const { RedisSessionStore } = await import(${JSON.stringify(STORE_MODULE)});
      const store = await RedisSessionStore.open({ sentinels: ${sentinelList}, sentinelName: ${JSON.stringify(sentinels.name)}, password: undefined, keyPrefix: 'x:', secrets: ['s'.repeat(32)] }, { now: () => Date.now() });
      await store.ping();
      await store.close();
      console.log('closed');
    `;
    const child = spawnChild(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
    try {
      const code = await new Promise<number | string | null>((resolve) => {
        const timer = setTimeout(() => resolve('still running 10 s after start'), 10_000);
        child.process.once('exit', (exit) => {
          clearTimeout(timer);
          resolve(exit);
        });
      });
      expect({ code, output: child.output() }).toEqual({ code: 0, output: 'closed\n' });
    } finally {
      await child.stop();
    }
  }, 20_000);

  it('answers 503 while the primary is gone and serves the same session from the promoted replica', async () => {
    const browser = await stack.signedIn('alice');
    const sid = await sessionIdOf(stack.gateway.app, browser, stack.gateway.url);
    expect((await api(browser)).status).toBe(200);

    // replication is asynchronous: only a write the replica acknowledged survives the primary
    const primary = new Redis(sentinels.primary.port, '127.0.0.1', { maxRetriesPerRequest: 0 });
    try {
      expect(await primary.call('WAIT', '1', '5000')).toBe(1);
    } finally {
      primary.disconnect();
    }

    // traffic: one /api call after another, each noting whether the primary was already gone when it left
    const answers: { status: number; code: string | undefined; afterKill: boolean }[] = [];
    let killed = false;
    const recovered = (): boolean => answers.some((answer) => answer.afterKill && answer.status === 503) && answers.at(-1)?.status === 200;
    const traffic = eventually(
      async () => {
        const afterKill = killed;
        const answer = await answerOf(await api(browser));
        answers.push({ status: answer.status, code: answer.problem?.code, afterKill });
        return recovered() ? true : undefined;
      },
      FAILOVER_DEADLINE_MS,
      'the gateway to serve the session again after the failover',
    );
    await eventually(() => Promise.resolve(answers.filter((answer) => answer.status === 200).length >= 3 ? true : undefined), 10_000, 'traffic to flow');
    await sentinels.primary.stop('SIGKILL');
    killed = true;
    await traffic;

    // 503 from the kill to the promotion, never "sign in again"; then the same session answers 200
    expect(answers.filter((answer) => answer.status !== 200 && (answer.status !== 503 || answer.code !== 'session_store_unavailable'))).toEqual([]);
    expect(answers.filter((answer) => answer.afterKill && answer.status === 503).length).toBeGreaterThan(0);
    expect(answers.at(-1)).toMatchObject({ status: 200, afterKill: true });

    expect(await sentinels.primaryPort()).toBe(sentinels.replica.port);
    expect(await sessionIdOf(stack.gateway.app, browser, stack.gateway.url)).toBe(sid);
    const me = await answerOf(await browser.request(`${stack.gateway.url}/auth/me`, { headers: { accept: 'application/json' } }));
    expect(me).toMatchObject({ status: 200, json: { sub: 'alice' } });
    expect((await fetch(`${stack.gateway.url}/readyz`)).status).toBe(200);
  }, FAILOVER_DEADLINE_MS + 30_000);
});
