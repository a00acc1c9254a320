import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { Clock } from '../../src/common/clock.js';
import { RedisSessionStore } from '../../src/session/redis-session-store.js';
import { SessionStoreUnavailableError } from '../../src/session/session.errors.js';
import { freePort } from '../support/ports.js';
import { spawnChild, type Child } from '../support/processes.js';
import { startRedis, type RedisStartOptions, type RunningRedis } from '../support/redis.js';
import { describeSessionStore, eventually, newId, OffsetClock, sessionRecord, WAITING_TEST_TIMEOUT_MS } from './session-store.contract.js';

const STORE_MODULE = fileURLToPath(new URL('../../src/session/redis-session-store.ts', import.meta.url));

/** Outage calls must fail within this (commandTimeout is 1000 ms) instead of hanging. */
const FAIL_FAST_MS = 2500;

function uniquePrefix(): string {
  return `bff-test-${randomBytes(4).toString('hex')}:`;
}

function openStore(redis: RunningRedis, clock: Clock, overrides: { url?: string; password?: string; keyPrefix?: string; readyTimeoutMs?: number } = {}): Promise<RedisSessionStore> {
  return RedisSessionStore.open({ url: overrides.url ?? redis.url, password: overrides.password, keyPrefix: overrides.keyPrefix ?? uniquePrefix() }, clock, overrides.readyTimeoutMs);
}

/** How long a call took to settle, and whether it rejected with SessionStoreUnavailableError. */
async function outage(call: () => Promise<unknown>): Promise<{ unavailable: boolean; ms: number }> {
  const started = Date.now();
  const unavailable = await call().then(
    () => false,
    (error: unknown) => error instanceof SessionStoreUnavailableError,
  );
  return { unavailable, ms: Date.now() - started };
}

function exitCode(child: Child, timeoutMs: number): Promise<number | string | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(`still running after ${timeoutMs} ms`), timeoutMs);
    child.process.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** A Redis of its own for a describe block whose tests stop, freeze or crash it. */
function ownRedis(options: RedisStartOptions = {}): () => RunningRedis {
  let redis: RunningRedis | undefined;
  beforeAll(async () => {
    redis = await startRedis(options);
  });
  afterAll(async () => {
    await redis?.close();
  });
  return () => {
    if (redis === undefined) throw new Error('redis-server did not start');
    return redis;
  };
}

describe('RedisSessionStore', () => {
  const redis = ownRedis();

  describeSessionStore('RedisSessionStore', async () => {
    const clock = new OffsetClock();
    const store = await openStore(redis(), clock);
    return { store, clock, cleanup: () => store.close() };
  });

  describe('stored data', () => {
    const clock = new OffsetClock();
    const keyPrefix = uniquePrefix();
    let store: RedisSessionStore | undefined;
    let raw: Redis | undefined;

    beforeAll(async () => {
      store = await openStore(redis(), clock, { keyPrefix });
      raw = new Redis(redis().url);
    });

    afterAll(async () => {
      await store?.close();
      await raw?.quit();
    });

    function both(): { store: RedisSessionStore; raw: Redis } {
      if (store === undefined || raw === undefined) throw new Error('beforeAll did not run');
      return { store, raw };
    }

    it.each([
      ['invalid JSON', () => '{not json'],
      ['JSON of the wrong shape', (id: string) => JSON.stringify({ v: 1, record: { id, sub: 42 } })],
      ['a record of an unknown version', (id: string) => JSON.stringify({ v: 99, record: sessionRecord(clock, { id }) })],
      ['a record stored under another id', () => JSON.stringify({ v: 1, record: sessionRecord(clock) })],
    ])('counts %s as a missing session and deletes it', async (_what, payload) => {
      const { store, raw } = both();
      const id = newId();
      await raw.set(`${keyPrefix}session:${id}`, payload(id), 'PX', 60_000);

      expect(await store.get(id)).toBeUndefined();
      expect(await raw.exists(`${keyPrefix}session:${id}`)).toBe(0);
    });

    it('gives a session a Redis TTL at the earlier of its idle and absolute expiry', async () => {
      const { store, raw } = both();
      const session = sessionRecord(clock, { idleExpiresAt: clock.now() + 30_000, absoluteExpiresAt: clock.now() + 20_000 });
      await store.create(session);

      const expireTime = await raw.pexpiretime(`${keyPrefix}session:${session.id}`);
      expect(expireTime).toBe(session.absoluteExpiresAt);
    });

    it('keeps index keys alive at least as long as their newest session', async () => {
      const { store, raw } = both();
      const sub = `user-${newId()}`;
      const indexExpiry = async (): Promise<number[]> => [await raw.pexpiretime(`${keyPrefix}sub:${sub}`), await raw.pexpiretime(`${keyPrefix}psid:op-index`)];
      const first = sessionRecord(clock, { sub, providerSid: 'op-index', idleExpiresAt: clock.now() + 10_000 });
      const later = sessionRecord(clock, { sub, providerSid: 'op-index', idleExpiresAt: clock.now() + 50_000 });
      const sooner = sessionRecord(clock, { sub, providerSid: 'op-index', idleExpiresAt: clock.now() + 20_000 });

      await store.create(first);
      expect(await indexExpiry()).toEqual([first.idleExpiresAt, first.idleExpiresAt]);
      await store.create(later);
      expect(await indexExpiry()).toEqual([later.idleExpiresAt, later.idleExpiresAt]);
      await store.create(sooner);
      expect(await indexExpiry()).toEqual([later.idleExpiresAt, later.idleExpiresAt]);
    });

    it('leaves no index keys behind after deleteBySubject', async () => {
      const { store, raw } = both();
      const sub = `user-${newId()}`;
      await store.create(sessionRecord(clock, { sub, providerSid: 'op-gone' }));

      expect(await store.deleteBySubject(sub)).toBe(1);
      expect(await raw.exists(`${keyPrefix}sub:${sub}`, `${keyPrefix}psid:op-gone`)).toBe(0);
    });

    it('prunes index members whose sessions expired when the user signs in again', async () => {
      const { store, raw } = both();
      const sub = `user-${newId()}`;
      const live = sessionRecord(clock, { sub, providerSid: undefined });
      const expiring = sessionRecord(clock, { sub, providerSid: undefined, idleExpiresAt: clock.now() + 300 });
      await store.create(live);
      await store.create(expiring);
      await eventually('Redis expires the session', async () => (await raw.exists(`${keyPrefix}session:${expiring.id}`)) === 0);

      const next = sessionRecord(clock, { sub, providerSid: undefined });
      await store.create(next);
      expect((await raw.smembers(`${keyPrefix}sub:${sub}`)).sort()).toEqual([live.id, next.id].sort());
    }, WAITING_TEST_TIMEOUT_MS);

    it('releases a lock only for the owner that took it', async () => {
      const { store, raw } = both();
      const lock = await store.tryLock('owned', 60_000);
      const owner = await raw.get(`${keyPrefix}lock:owned`);
      expect(owner).toMatch(/^[A-Za-z0-9_-]{20,}$/);

      await raw.set(`${keyPrefix}lock:owned`, 'someone-else', 'PX', 60_000);
      await lock?.release();
      expect(await raw.get(`${keyPrefix}lock:owned`)).toBe('someone-else');
    });
  });

  describe('authentication', () => {
    const secured = ownRedis({ requirePass: 'the-right-password' });

    it('uses the password option over the one in the URL', async () => {
      const url = `redis://:the-wrong-password@127.0.0.1:${secured().port}`;
      const store = await openStore(secured(), new OffsetClock(), { url, password: 'the-right-password' });
      try {
        await expect(store.ping()).resolves.toBeUndefined();
      } finally {
        await store.close();
      }
    });

    it("uses the URL's password when no password option is given", async () => {
      const url = `redis://:the-right-password@127.0.0.1:${secured().port}`;
      const store = await openStore(secured(), new OffsetClock(), { url });
      try {
        await expect(store.ping()).resolves.toBeUndefined();
      } finally {
        await store.close();
      }
    });

    it('rejects with SessionStoreUnavailableError when the password is wrong', async () => {
      const store = await openStore(secured(), new OffsetClock(), { password: 'the-wrong-password', readyTimeoutMs: 500 });
      try {
        const result = await outage(() => store.ping());
        expect(result.unavailable).toBe(true);
        expect(result.ms).toBeLessThan(FAIL_FAST_MS);
      } finally {
        await store.close();
      }
    }, WAITING_TEST_TIMEOUT_MS);
  });

  describe('outages', () => {
    const unstable = ownRedis();

    it('fails fast with SessionStoreUnavailableError while Redis is frozen, and serves the same session after it resumes', async () => {
      const clock = new OffsetClock();
      const store = await openStore(unstable(), clock);
      const session = sessionRecord(clock);
      await store.create(session);
      try {
        unstable().freeze();
        try {
          const get = await outage(() => store.get(session.id));
          const create = await outage(() => store.create(sessionRecord(clock)));
          expect(get).toEqual({ unavailable: true, ms: expect.any(Number) });
          expect(create).toEqual({ unavailable: true, ms: expect.any(Number) });
          expect(get.ms).toBeLessThan(FAIL_FAST_MS);
          expect(create.ms).toBeLessThan(FAIL_FAST_MS);
        } finally {
          unstable().thaw();
        }
        await eventually('the session is readable again', async () => (await store.get(session.id)) !== undefined);
        expect(await store.get(session.id)).toStrictEqual(session);
      } finally {
        await store.close();
      }
    }, WAITING_TEST_TIMEOUT_MS);

    it('reconnects by itself after Redis is stopped and started again on the same port', async () => {
      const clock = new OffsetClock();
      const store = await openStore(unstable(), clock);
      try {
        await store.ping();
        await unstable().stop();

        const down = await outage(() => store.get(newId()));
        expect(down.unavailable).toBe(true);
        expect(down.ms).toBeLessThan(FAIL_FAST_MS);

        await unstable().restart();
        await eventually('the store answers again', () => store.ping().then(() => true, () => false));
        const session = sessionRecord(clock);
        await store.create(session);
        expect(await store.get(session.id)).toStrictEqual(session);
      } finally {
        await store.close();
      }
    }, WAITING_TEST_TIMEOUT_MS);

    it('starts without Redis, rejects calls with SessionStoreUnavailableError, and works once Redis is up', async () => {
      await unstable().stop();
      const clock = new OffsetClock();
      const store = await openStore(unstable(), clock, { readyTimeoutMs: 300 });
      try {
        for (const call of [() => store.get(newId()), () => store.create(sessionRecord(clock)), () => store.ping(), () => store.tryLock('x', 1000)]) {
          const result = await outage(call);
          expect(result.unavailable).toBe(true);
          expect(result.ms).toBeLessThan(FAIL_FAST_MS);
        }

        await unstable().restart();
        await eventually('the store connects', () => store.ping().then(() => true, () => false));
        const session = sessionRecord(clock);
        await store.create(session);
        expect(await store.get(session.id)).toStrictEqual(session);
      } finally {
        await store.close();
      }
    }, WAITING_TEST_TIMEOUT_MS);
  });

  // In its own process: Jest would hide both an unhandled 'error' event (ioredis prints it to the
  // real stderr) and a crash of the process that uses the store.
  it('keeps a process that starts while Redis is down running, without unhandled errors', async () => {
    const nothingListening = `redis://127.0.0.1:${await freePort()}`;
    const script = `
      const { RedisSessionStore } = await import(${JSON.stringify(STORE_MODULE)});
      const store = await RedisSessionStore.open({ url: ${JSON.stringify(nothingListening)}, password: undefined, keyPrefix: 'x:' }, { now: () => Date.now() }, 300);
      console.log('get: ' + (await store.get('id').then(() => 'resolved', (error) => error.constructor.name)));
      await new Promise((resolve) => setTimeout(resolve, 1500));
      console.log('ping: ' + (await store.ping().then(() => 'resolved', (error) => error.constructor.name)));
      await store.close();
    `;
    const child = spawnChild(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
    try {
      const code = await exitCode(child, 20_000);
      expect({ code, output: child.output() }).toEqual({ code: 0, output: 'get: SessionStoreUnavailableError\nping: SessionStoreUnavailableError\n' });
    } finally {
      await child.stop();
    }
  }, WAITING_TEST_TIMEOUT_MS);

  describe('persistence', () => {
    const durable = ownRedis({ appendonly: true });

    it('keeps a session across a kill -9 and restart of Redis with appendonly', async () => {
      const clock = new OffsetClock();
      const store = await openStore(durable(), clock);
      try {
        const session = sessionRecord(clock);
        await store.create(session);
        await durable().stop('SIGKILL');
        await durable().restart();

        await eventually('the store reconnects', () => store.ping().then(() => true, () => false));
        expect(await store.get(session.id)).toStrictEqual(session);
      } finally {
        await store.close();
      }
    }, WAITING_TEST_TIMEOUT_MS);
  });
});
