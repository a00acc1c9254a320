import { randomBytes } from 'node:crypto';
import { Cluster } from 'ioredis';
import type { Clock } from '../../src/common/clock.js';
import { RecordSeal } from '../../src/session/record-seal.js';
import { RedisSessionStore } from '../../src/session/redis-session-store.js';
import { newSessionId, sessionKey } from '../../src/session/session-cookie.js';
import type { SessionRecord } from '../../src/session/session-store.js';
import { OffsetClock } from '../support/clock.js';
import { startRedisCluster, type RunningRedisCluster } from '../support/redis.js';
import { SessionStoreUnavailableError } from '../../src/session/session.errors.js';
import { describeSessionStore, eventually, newId, sessionRecord } from './session-store.contract.js';

const SECRET = 'cluster-test-secret-0123456789abcdef';
const OTHER_SECRET = 'other-cluster-secret-0123456789abcdef';

function uniquePrefix(): string {
  return `bff-cluster-${randomBytes(4).toString('hex')}:`;
}

describe('RedisSessionStore on a 3-master Redis Cluster', () => {
  let cluster: RunningRedisCluster | undefined;

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
  }, 60_000);
  afterAll(async () => {
    await cluster?.close();
  });

  function nodes(): { host: string; port: number }[] {
    if (cluster === undefined) throw new Error('the cluster did not start');
    return cluster.masters.map((master) => ({ host: '127.0.0.1', port: master.port }));
  }

  function openStore(clock: Clock, keyPrefix = uniquePrefix(), secrets: readonly string[] = [SECRET]): Promise<RedisSessionStore> {
    // a loaded machine can take longer than production's 1 s per command; the timeout itself is tested on a single Redis
    return RedisSessionStore.open({ clusterNodes: nodes(), password: undefined, keyPrefix, secrets, commandTimeoutMs: 5_000 }, clock);
  }

  describeSessionStore('RedisSessionStore (cluster)', async () => {
    const clock = new OffsetClock();
    const store = await openStore(clock);
    return { store, clock, cleanup: () => store.close() };
  });

  describe('slots', () => {
    const clock = new OffsetClock();
    const keyPrefix = uniquePrefix();
    let store: RedisSessionStore | undefined;
    let raw: Cluster | undefined;

    beforeAll(async () => {
      store = await openStore(clock, keyPrefix);
      raw = new Cluster(nodes());
    });
    afterAll(async () => {
      await store?.close();
      raw?.disconnect();
    });

    function both(): { store: RedisSessionStore; raw: Cluster } {
      if (store === undefined || raw === undefined) throw new Error('beforeAll did not run');
      return { store, raw };
    }

    /** A session under an id as SessionService makes one: tagged with the store's tag for its sub. */
    function session(store: RedisSessionStore, overrides: Partial<SessionRecord> = {}): SessionRecord {
      const made = sessionRecord(clock, overrides);
      return { ...made, id: sessionKey(newSessionId(store.sessionTag(made.sub))) };
    }

    const slotOf = async (raw: Cluster, key: string): Promise<unknown> => raw.call('CLUSTER', 'KEYSLOT', key);
    const subHash = (sub: string, secret = SECRET): string => new RecordSeal([secret]).lookupHash(sub);

    it("keeps a session's record and its user's index in the slot of the keyed hash of sub, with no sub in key names", async () => {
      const { store, raw } = both();
      const sub = `user-${newId()}`;
      const record = session(store, { sub, providerSid: `op-${newId()}` });
      await store.create(record);

      expect(store.sessionTag(sub)).toBe(subHash(sub));
      expect(record.id.endsWith(`.${subHash(sub)}`)).toBe(true);
      const recordKey = `${keyPrefix}record:{${subHash(sub)}}${record.id.split('.')[0] ?? ''}`;
      const subIndex = `${keyPrefix}by-sub:{${subHash(sub)}}`;
      expect(await raw.exists(recordKey)).toBe(1);
      expect(await raw.smembers(subIndex)).toEqual([record.id]);
      expect(await slotOf(raw, recordKey)).toBe(await slotOf(raw, subIndex));
      expect(await raw.smembers(`${keyPrefix}by-psid:${subHash(record.providerSid ?? '')}`)).toEqual([record.id]);
      expect([recordKey, subIndex].join('\n')).not.toContain(sub);
    });

    it('spreads the sessions of different users over the masters', async () => {
      const { store, raw } = both();
      const slots = new Set<unknown>();
      for (let i = 0; i < 12; i++) {
        const record = session(store, { sub: `spread-${i}-${newId()}` });
        await store.create(record);
        slots.add(await slotOf(raw, `${keyPrefix}by-sub:{${store.sessionTag(record.sub) ?? ''}}`));
      }
      const masters = new Set([...slots].map((slot) => (typeof slot === 'number' ? Math.floor(slot / Math.ceil(16384 / 3)) : -1)));
      expect(masters.size).toBeGreaterThan(1);
    });

    it('ends the sessions of one provider sid in every slot they live in', async () => {
      const { store } = both();
      const psid = `op-${newId()}`;
      const alice = session(store, { sub: `alice-${newId()}`, providerSid: psid });
      const bob = session(store, { sub: `bob-${newId()}`, providerSid: psid });
      const bystander = session(store, { sub: alice.sub, providerSid: `op-${newId()}` });
      for (const record of [alice, bob, bystander]) await store.create(record);

      expect(await store.deleteByProviderSid(psid)).toBe(2);
      expect(await store.get(alice.id)).toBeUndefined();
      expect(await store.get(bob.id)).toBeUndefined();
      expect(await store.get(bystander.id)).toStrictEqual(bystander);
      expect(await store.deleteBySubject(alice.sub)).toBe(1);
    });

    it('counts an id without a slot tag (a cookie from a single-Redis deployment) as no session', async () => {
      const { store } = both();
      const untagged = newId();
      expect(await store.get(untagged)).toBeUndefined();
      expect(await store.touch(untagged, clock.now() + 60_000)).toBe(false);
      expect(await store.replaceTokens(untagged, 0, sessionRecord(clock).tokens, {})).toBe('missing');
      await expect(store.delete(untagged)).resolves.toBeUndefined();
    });

    it('refuses to create a session whose id carries another user\'s tag', async () => {
      const { store } = both();
      const record = { ...session(store, { sub: 'mallory' }), sub: 'alice' };
      await expect(store.create(record)).rejects.toThrow(/tag/);
    });

    it('rotates: sessions tagged under the old secret are found by sub and provider sid with SESSION_SECRET=new,old', async () => {
      const { store } = both();
      const sub = `rotated-${newId()}`;
      const before = session(store, { sub, providerSid: 'op-rotated-1' });
      const alsoBefore = session(store, { sub, providerSid: 'op-rotated-2' });
      await store.create(before);
      await store.create(alsoBefore);
      const rotated = await openStore(clock, keyPrefix, [OTHER_SECRET, SECRET]);
      try {
        const after = session(rotated, { sub, providerSid: 'op-rotated-1' });
        await rotated.create(after);
        expect(rotated.sessionTag(sub)).not.toBe(store.sessionTag(sub));

        expect(await rotated.get(before.id)).toStrictEqual(before);
        expect(await rotated.deleteByProviderSid('op-rotated-2')).toBe(1);
        expect(await rotated.deleteBySubject(sub)).toBe(2);
        expect(await rotated.get(before.id)).toBeUndefined();
        expect(await rotated.get(after.id)).toBeUndefined();
      } finally {
        await rotated.close();
      }
    });
  });

  // last: it takes a master down and brings it back
  describe('readiness', () => {
    it('reports the store unavailable while a shard has no primary, and available once it is back', async () => {
      const store = await openStore(new OffsetClock());
      const victim = cluster?.masters[1];
      if (victim === undefined) throw new Error('the cluster did not start');
      const answers = (): Promise<boolean> =>
        store.ping().then(
          () => true,
          (error: unknown) => {
            if (error instanceof SessionStoreUnavailableError) return false;
            throw error;
          },
        );
      try {
        expect(await answers()).toBe(true);
        await victim.stop('SIGKILL');
        await eventually('the cluster notices the lost shard', async () => !(await answers()), 20_000);
        await victim.restart();
        await eventually('the shard is back', answers, 20_000);
      } finally {
        await store.close();
      }
    }, 60_000);
  });
});
