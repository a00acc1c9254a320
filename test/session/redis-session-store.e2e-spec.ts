import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { Clock } from '../../src/common/clock.js';
import { RecordSeal } from '../../src/session/record-seal.js';
import { RedisSessionStore } from '../../src/session/redis-session-store.js';
import { SessionStoreUnavailableError } from '../../src/session/session.errors.js';
import { OffsetClock } from '../support/clock.js';
import { freePort } from '../support/ports.js';
import { spawnChild, type Child } from '../support/processes.js';
import { startRedis, type RedisStartOptions, type RunningRedis } from '../support/redis.js';
import { describeSessionStore, eventually, newId, sessionRecord, WAITING_TEST_TIMEOUT_MS } from './session-store.contract.js';

const STORE_MODULE = fileURLToPath(new URL('../../src/session/redis-session-store.ts', import.meta.url));

/** Outage calls must fail within this (commandTimeout is 1000 ms) instead of hanging. */
const FAIL_FAST_MS = 2500;

function uniquePrefix(): string {
  return `bff-test-${randomBytes(4).toString('hex')}:`;
}

const SECRET = 'store-test-secret-0123456789abcdef';
const OTHER_SECRET = 'other-test-secret-0123456789abcdef';

function openStore(
  redis: RunningRedis,
  clock: Clock,
  overrides: { url?: string; password?: string; keyPrefix?: string; secrets?: readonly string[]; readyTimeoutMs?: number } = {},
): Promise<RedisSessionStore> {
  return RedisSessionStore.open(
    { url: overrides.url ?? redis.url, password: overrides.password, keyPrefix: overrides.keyPrefix ?? uniquePrefix(), secrets: overrides.secrets ?? [SECRET] },
    clock,
    overrides.readyTimeoutMs,
  );
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
  const durableForContract = ownRedis({ appendonly: true });

  describeSessionStore(
    'RedisSessionStore',
    async () => {
      const clock = new OffsetClock();
      const store = await openStore(redis(), clock);
      return { store, clock, cleanup: () => store.close() };
    },
    {
      makeStoreWithOutage: async () => {
        const clock = new OffsetClock();
        const backend = durableForContract();
        const store = await openStore(backend, clock);
        return { store, clock, cleanup: () => store.close(), stopBackend: () => backend.stop('SIGTERM'), startBackend: () => backend.restart() };
      },
    },
  );

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

    const recordKey = (id: string): string => `${keyPrefix}record:${id}`;
    const subIndex = (sub: string, secret = SECRET): string => `${keyPrefix}by-sub:${new RecordSeal([secret]).lookupHash(sub)}`;
    const psidIndex = (sid: string, secret = SECRET): string => `${keyPrefix}by-psid:${new RecordSeal([secret]).lookupHash(sid)}`;

    it('keeps tokens, claims, the sub, the provider sid and the logout value out of the stored hash and key names', async () => {
      const { store, raw } = both();
      const sub = `user-${newId()}`;
      const session = sessionRecord(clock, { sub, providerSid: `op-${newId()}` });
      await store.create(session);

      const hash = await raw.hgetall(recordKey(session.id));
      expect(Object.keys(hash).sort()).toEqual(['abs', 'ident', 'idle', 'psid', 'sub', 'tokens', 'v']);
      expect(hash).toMatchObject({ v: '0', idle: String(session.idleExpiresAt), abs: String(session.absoluteExpiresAt) });
      const visible = [...(await raw.keys(`${keyPrefix}*`)), ...Object.values(hash)].join('\n');
      for (const secret of ['access-token-value', 'refresh-token-value', 'header.payload.signature', 'Alice Example', 'alice@example.test', sub, session.providerSid ?? '', session.logoutValue]) {
        expect(visible).not.toContain(secret);
      }
    });

    it.each([
      ['a hash without its sealed fields', (_id: string, hash: Record<string, string>) => ({ v: hash['v'] ?? '', idle: hash['idle'] ?? '', abs: hash['abs'] ?? '' })],
      ['sealed fields that are not ours', (_id: string, hash: Record<string, string>) => ({ ...hash, ident: randomBytes(80).toString('base64url'), tokens: randomBytes(200).toString('base64url') })],
      ['a version changed beside its sealed tokens', (_id: string, hash: Record<string, string>) => ({ ...hash, v: '7' })],
      ['the sealed fields swapped', (_id: string, hash: Record<string, string>) => ({ ...hash, ident: hash['tokens'] ?? '', tokens: hash['ident'] ?? '' })],
      ['a non-numeric expiry', (_id: string, hash: Record<string, string>) => ({ ...hash, idle: 'soon' })],
    ])('counts %s as a missing session, and leaves it to its TTL', async (_what, tamper) => {
      const { store, raw } = both();
      const session = sessionRecord(clock);
      await store.create(session);
      // read once first: the store keeps what a record's fields opened to, never past a change to them
      expect(await store.get(session.id)).toStrictEqual(session);
      const key = recordKey(session.id);
      const tampered = tamper(session.id, await raw.hgetall(key));
      await raw.del(key);
      await raw.hset(key, tampered);
      await raw.pexpire(key, 60_000);

      expect(await store.get(session.id)).toBeUndefined();
      expect(await raw.exists(key)).toBe(1);
    });

    it('reads the tokens another replica wrote after this one opened the record', async () => {
      const { store } = both();
      const session = sessionRecord(clock);
      await store.create(session);
      expect(await store.get(session.id)).toStrictEqual(session);
      const replica = await openStore(redis(), clock, { keyPrefix });
      try {
        const tokens = { ...session.tokens, accessToken: 'access-token-from-the-other-replica' };
        expect(await replica.replaceTokens(session.id, session.version, tokens, session.claims)).toBe('replaced');
      } finally {
        await replica.close();
      }
      const read = await store.get(session.id);
      expect(read?.tokens.accessToken).toBe('access-token-from-the-other-replica');
      expect(read?.version).toBe(session.version + 1);
    });

    it('does not open a record under another key, nor when sealed under a secret no longer configured', async () => {
      const { store, raw } = both();
      const session = sessionRecord(clock);
      await store.create(session);
      const copy = newId();
      await raw.hset(recordKey(copy), await raw.hgetall(recordKey(session.id)));
      await raw.pexpire(recordKey(copy), 60_000);

      expect(await store.get(copy)).toBeUndefined();
      const otherSecret = await openStore(redis(), clock, { keyPrefix, secrets: [OTHER_SECRET] });
      try {
        expect(await otherSecret.get(session.id)).toBeUndefined();
      } finally {
        await otherSecret.close();
      }
      expect(await store.get(session.id)).toStrictEqual(session);
    });

    it('rotates: records sealed and indexed under the old secret open and are found with SESSION_SECRET=new,old', async () => {
      const { store } = both();
      const sub = `user-${newId()}`;
      const before = sessionRecord(clock, { sub, providerSid: 'op-rotated-1' });
      const alsoBefore = sessionRecord(clock, { sub, providerSid: 'op-rotated-2' });
      await store.create(before);
      await store.create(alsoBefore);
      const rotated = await openStore(redis(), clock, { keyPrefix, secrets: [OTHER_SECRET, SECRET] });
      const newOnly = await openStore(redis(), clock, { keyPrefix, secrets: [OTHER_SECRET] });
      try {
        const after = sessionRecord(clock, { sub, providerSid: 'op-rotated-1' });
        await rotated.create(after);

        expect(await rotated.get(before.id)).toStrictEqual(before);
        expect(await rotated.get(after.id)).toStrictEqual(after);
        expect(await store.get(after.id)).toBeUndefined();
        expect(await newOnly.deleteBySubject(sub)).toBe(1);
        expect(await rotated.deleteByProviderSid('op-rotated-2')).toBe(1);
        expect(await rotated.deleteBySubject(sub)).toBe(1);
        expect(await rotated.get(before.id)).toBeUndefined();
      } finally {
        await rotated.close();
        await newOnly.close();
      }
    });

    it('hashes the name of a one-time mark (a logout token jti)', async () => {
      const { store, raw } = both();
      const jti = `jti-${newId()}`;
      expect(await store.markOnce(`jti:${jti}`, 60_000)).toBe(true);

      const keys = await raw.keys(`${keyPrefix}once:*`);
      expect(keys).toHaveLength(1);
      expect(keys.join()).not.toContain(jti);
      expect(await store.markOnce(`jti:${jti}`, 60_000)).toBe(false);
    });

    it('gives a session a Redis TTL at the earlier of its idle and absolute expiry', async () => {
      const { store, raw } = both();
      const session = sessionRecord(clock, { idleExpiresAt: clock.now() + 30_000, absoluteExpiresAt: clock.now() + 20_000 });
      await store.create(session);

      const expireTime = await raw.pexpiretime(recordKey(session.id));
      expect(expireTime).toBe(session.absoluteExpiresAt);
    });

    it('keeps index keys alive at least as long as their newest session', async () => {
      const { store, raw } = both();
      const sub = `user-${newId()}`;
      const indexExpiry = async (): Promise<number[]> => [await raw.pexpiretime(subIndex(sub)), await raw.pexpiretime(psidIndex('op-index'))];
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

    it('moves the Redis TTL of a slid session and of its index keys with the slide', async () => {
      const { store, raw } = both();
      const sub = `user-${newId()}`;
      const session = sessionRecord(clock, { sub, providerSid: 'op-slid', idleExpiresAt: clock.now() + 10_000 });
      await store.create(session);
      const slidTo = session.absoluteExpiresAt - 1000;

      expect(await store.touch(session.id, slidTo)).toBe(true);
      expect(await raw.pexpiretime(recordKey(session.id))).toBe(slidTo);
      expect(await raw.pexpiretime(subIndex(sub))).toBe(slidTo);
      expect(await raw.pexpiretime(psidIndex('op-slid'))).toBe(slidTo);
      expect(await raw.hget(recordKey(session.id), 'idle')).toBe(String(slidTo));
    });

    it('leaves no index keys behind after deleteBySubject', async () => {
      const { store, raw } = both();
      const sub = `user-${newId()}`;
      await store.create(sessionRecord(clock, { sub, providerSid: 'op-gone' }));

      expect(await store.deleteBySubject(sub)).toBe(1);
      expect(await raw.exists(subIndex(sub), psidIndex('op-gone'))).toBe(0);
    });

    it('prunes index members whose sessions expired when the user signs in again', async () => {
      const { store, raw } = both();
      const sub = `user-${newId()}`;
      const live = sessionRecord(clock, { sub, providerSid: undefined });
      const expiring = sessionRecord(clock, { sub, providerSid: undefined, idleExpiresAt: clock.now() + 300 });
      await store.create(live);
      await store.create(expiring);
      await eventually('Redis expires the session', async () => (await raw.exists(recordKey(expiring.id))) === 0);

      const next = sessionRecord(clock, { sub, providerSid: undefined });
      await store.create(next);
      expect((await raw.smembers(subIndex(sub))).sort()).toEqual([live.id, next.id].sort());
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

    it('applies a token write that timed out while Redis was frozen at most once: a retry of the same version gets conflict', async () => {
      const clock = new OffsetClock();
      const store = await openStore(unstable(), clock);
      const session = sessionRecord(clock);
      await store.create(session);
      const rotated = { ...session.tokens, accessToken: 'rotated-access', refreshToken: 'rotated-refresh' };
      // the script must be in Redis' cache: after a NOSCRIPT the EVAL fallback never runs for a caller that timed out
      expect(await store.replaceTokens(newId(), 0, rotated, {})).toBe('missing');
      try {
        unstable().freeze();
        try {
          const write = await outage(() => store.replaceTokens(session.id, session.version, rotated, session.claims));
          expect(write.unavailable).toBe(true);
        } finally {
          unstable().thaw();
        }
        // the write was already in Redis' socket buffer and runs first once Redis resumes; the
        // version turns the caller's retry into a conflict instead of a second write
        await eventually('Redis answers again', () => store.ping().then(() => true, () => false));
        expect(await store.replaceTokens(session.id, session.version, rotated, session.claims)).toBe('conflict');
        expect(await store.get(session.id)).toStrictEqual({ ...session, tokens: rotated, version: session.version + 1 });
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
      const store = await RedisSessionStore.open({ url: ${JSON.stringify(nothingListening)}, password: undefined, keyPrefix: 'x:', secrets: ['s'.repeat(32)] }, { now: () => Date.now() }, 300);
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
