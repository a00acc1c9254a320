import type { Clock } from '../common/clock.js';
import { MemorySessionStore } from './memory-session-store.js';
import type { SessionRecord } from './session-store.js';
import { sessionRecord, T0 } from '../../test/support/session-record.js';

class FakeClock implements Clock {
  constructor(private time = T0) {}

  now(): number {
    return this.time;
  }

  advance(ms: number): void {
    this.time += ms;
  }
}

function record(id: string, overrides: Partial<SessionRecord> = {}): SessionRecord {
  return sessionRecord({ id, providerSid: 'op-1', ...overrides });
}

describe('MemorySessionStore', () => {
  let clock: FakeClock;
  let store: MemorySessionStore;

  beforeEach(() => {
    clock = new FakeClock();
    store = new MemorySessionStore(3, clock);
  });

  afterEach(async () => {
    await store.close();
  });

  describe('eviction at maxEntries', () => {
    it('evicts the least recently read session first', async () => {
      for (const id of ['a', 'b', 'c']) await store.create(record(id));
      await store.get('a');

      await store.create(record('d'));

      expect(store.size()).toBe(3);
      expect(await store.get('b')).toBeUndefined();
      for (const id of ['a', 'c', 'd']) expect(await store.get(id)).toBeDefined();
    });

    it('evicts the oldest session when none was read', async () => {
      for (const id of ['a', 'b', 'c', 'd']) await store.create(record(id));

      expect(await store.get('a')).toBeUndefined();
      expect(store.size()).toBe(3);
    });

    it('removes an evicted session from the indexes, so deleting by subject does not count it', async () => {
      for (const id of ['a', 'b', 'c', 'd']) await store.create(record(id));

      expect(await store.deleteBySubject('alice')).toBe(3);
    });
  });

  describe('sweep', () => {
    it('drops expired sessions and keeps live ones', async () => {
      await store.create(record('idle', { idleExpiresAt: T0 + 1000 }));
      await store.create(record('absolute', { absoluteExpiresAt: T0 + 1000 }));
      await store.create(record('live'));
      clock.advance(1000);

      store.sweep();

      expect(store.size()).toBe(1);
      expect(await store.get('live')).toBeDefined();
    });

    it("drops an expired session's index entries, so a later session with its id is not ended by the old subject", async () => {
      await store.create(record('x', { sub: 'alice', providerSid: 'op-old', idleExpiresAt: T0 + 1000 }));
      clock.advance(1000);
      store.sweep();

      // had the sweep left 'x' under alice and op-old, these would end bob's session
      await store.create(record('x', { sub: 'bob', providerSid: 'op-new' }));
      expect(await store.deleteBySubject('alice')).toBe(0);
      expect(await store.deleteByProviderSid('op-old')).toBe(0);
      expect(await store.get('x')).toBeDefined();
    });
  });

  describe('markOnce', () => {
    it('forgets a mark once its ttl has passed', async () => {
      expect(await store.markOnce('jti', 1000)).toBe(true);
      clock.advance(999);
      expect(await store.markOnce('jti', 1000)).toBe(false);

      clock.advance(1);
      expect(await store.markOnce('jti', 1000)).toBe(true);
    });
  });

  describe('locks', () => {
    it('holds a lock until its ttl passes, then lets another owner take it', async () => {
      const first = await store.tryLock('refresh', 1000);
      expect(first).toBeDefined();
      clock.advance(999);
      expect(await store.tryLock('refresh', 1000)).toBeUndefined();

      clock.advance(1);
      expect(await store.tryLock('refresh', 1000)).toBeDefined();
    });

    it('ignores a release by an owner whose lock expired and was taken over', async () => {
      const stale = await store.tryLock('refresh', 1000);
      clock.advance(1000);
      const current = await store.tryLock('refresh', 1000);
      expect(current).toBeDefined();

      await stale?.release();
      expect(await store.tryLock('refresh', 1000)).toBeUndefined();

      await current?.release();
      expect(await store.tryLock('refresh', 1000)).toBeDefined();
    });
  });
});
