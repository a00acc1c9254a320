import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Clock } from '../../src/common/clock.js';
import { DpopKey } from '../../src/oidc/dpop.js';
import { newSessionId, sessionKey } from '../../src/session/session-cookie.js';
import { SessionStoreUnavailableError } from '../../src/session/session.errors.js';
import type { SessionRecord, SessionStore, SessionTokens, StoreLock } from '../../src/session/session-store.js';
import type { OffsetClock } from '../support/clock.js';

export interface StoreFixture {
  readonly store: SessionStore;
  readonly clock: OffsetClock;
  cleanup(): Promise<void>;
}

/** A store whose backing service the test can take down and bring back with its data (Redis with AOF). */
export interface OutageFixture extends StoreFixture {
  stopBackend(): Promise<void>;
  startBackend(): Promise<void>;
}

export interface ContractOptions {
  /**
   * For stores that can fail (Redis); an in-process store (memory) has no outage to test, so the
   * outage cases are not defined for it.
   */
  readonly makeStoreWithOutage?: () => Promise<OutageFixture>;
}

/** A point one side of an interleaving waits at until the other side opens it. */
export interface Gate {
  readonly passed: Promise<void>;
  open(): void;
}

export function gate(): Gate {
  let open: () => void = () => undefined;
  const passed = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { passed, open };
}

/** Short enough to keep the suite fast, long enough that the first read always sees the session. */
const SHORT_MS = 300;
const LONG_MS = 60_000;

/**
 * For tests that wait on real time. Explicit because Jest applies testTimeout only globally, not
 * from a project's config.
 */
export const WAITING_TEST_TIMEOUT_MS = 20_000;

/** Polls until `check` holds; fails with `what` after the deadline. Never a fixed sleep. */
export async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await delay(20);
  }
}

export function newId(): string {
  return randomBytes(32).toString('hex');
}

export function sessionRecord(clock: Clock, overrides: Partial<SessionRecord> = {}): SessionRecord {
  const now = clock.now();
  return {
    id: newId(),
    sub: 'alice',
    providerSid: 'op-session-1',
    claims: { sub: 'alice', name: 'Alice Example', email: 'alice@example.test', email_verified: true, groups: ['a', 'b'], address: { country: 'NL' } },
    tokens: {
      accessToken: 'access-token-value',
      accessTokenExpiresAt: now + 300_000,
      refreshToken: 'refresh-token-value',
      idToken: 'header.payload.signature',
      scope: 'openid profile email offline_access',
    },
    logoutValue: randomBytes(16).toString('base64url'),
    createdAt: now,
    absoluteExpiresAt: now + LONG_MS,
    idleExpiresAt: now + LONG_MS,
    version: 0,
    ...overrides,
  };
}

/**
 * The behaviour every SessionStore must share. `makeStore` is called before each test with a
 * fresh, empty store (its own key prefix for Redis) and cleaned up after it.
 */
export function describeSessionStore(name: string, makeStore: () => Promise<StoreFixture>, options: ContractOptions = {}): void {
  describe(`${name} (SessionStore contract)`, () => {
    let fixture: StoreFixture | undefined;

    beforeEach(async () => {
      fixture = await makeStore();
    });

    afterEach(async () => {
      await fixture?.cleanup();
      fixture = undefined;
    });

    function current(): StoreFixture {
      if (fixture === undefined) throw new Error('makeStore() did not run');
      return fixture;
    }

    /** A session under an id as SessionService would make it for this store (tagged where the store wants a tag). */
    function record(overrides: Partial<SessionRecord> = {}): SessionRecord {
      const { store, clock } = current();
      const made = sessionRecord(clock, overrides);
      return overrides.id === undefined ? { ...made, id: sessionKey(newSessionId(store.sessionTag(made.sub))) } : made;
    }

    async function exists(id: string): Promise<boolean> {
      return (await current().store.get(id)) !== undefined;
    }

    describe('create and get', () => {
      it('returns a created session equal to the one stored, optional fields included', async () => {
        const { store } = current();
        const full = record();
        const bare = record({ providerSid: undefined, tokens: { ...full.tokens, refreshToken: undefined, scope: undefined }, claims: {} });
        await store.create(full);
        await store.create(bare);

        expect(await store.get(full.id)).toStrictEqual(full);
        expect(await store.get(bare.id)).toStrictEqual(bare);
      });

      it('keeps a session\'s DPoP key (OIDC_DPOP) with it, and it survives a token replacement', async () => {
        const { store } = current();
        const bound = record({ dpopKey: DpopKey.generate().jwk });
        await store.create(bound);
        expect(await store.get(bound.id)).toStrictEqual(bound);
        expect(await store.replaceTokens(bound.id, bound.version, { ...bound.tokens, accessToken: 'refreshed' }, bound.claims)).toBe('replaced');
        expect((await store.get(bound.id))?.dpopKey).toStrictEqual(bound.dpopKey);
      });

      it('returns undefined for an id it never stored', async () => {
        expect(await current().store.get(newId())).toBeUndefined();
      });
    });

    describe('touch', () => {
      it('moves only the idle expiry and returns true', async () => {
        const { store, clock } = current();
        const original = record({ idleExpiresAt: clock.now() + SHORT_MS * 4 });
        await store.create(original);

        // below the absolute expiry however long the steps before took: the slide is never clamped
        const slidTo = original.absoluteExpiresAt - 1;
        expect(await store.touch(original.id, slidTo)).toBe(true);
        expect(await store.get(original.id)).toStrictEqual({ ...original, idleExpiresAt: slidTo });
      });

      it('never moves the idle expiry back nor past the absolute expiry', async () => {
        const { store, clock } = current();
        const now = clock.now();
        const original = record({ idleExpiresAt: now + LONG_MS / 2, absoluteExpiresAt: now + LONG_MS });
        await store.create(original);

        expect(await store.touch(original.id, now + LONG_MS / 4)).toBe(true);
        expect((await store.get(original.id))?.idleExpiresAt).toBe(original.idleExpiresAt);
        expect(await store.touch(original.id, now + LONG_MS * 2)).toBe(true);
        expect((await store.get(original.id))?.idleExpiresAt).toBe(original.absoluteExpiresAt);
      });

      it('cannot write back tokens that a refresh replaced after the slide read the session', async () => {
        const { store, clock } = current();
        const original = record({ idleExpiresAt: clock.now() + SHORT_MS * 4 });
        await store.create(original);
        const rotated = { ...original.tokens, accessToken: 'rotated-access', refreshToken: 'rotated-refresh' };
        expect(await store.replaceTokens(original.id, original.version, rotated, original.claims)).toBe('replaced');

        const slidTo = original.absoluteExpiresAt - 1;
        expect(await store.touch(original.id, slidTo)).toBe(true);
        expect(await store.get(original.id)).toStrictEqual({ ...original, tokens: rotated, version: original.version + 1, idleExpiresAt: slidTo });
      });

      it('returns false for a deleted session and does not bring it back', async () => {
        const { store, clock } = current();
        const session = record();
        await store.create(session);
        await store.delete(session.id);

        expect(await store.touch(session.id, clock.now() + LONG_MS)).toBe(false);
        expect(await store.get(session.id)).toBeUndefined();
        expect(await store.deleteBySubject(session.sub)).toBe(0);
      });

      it('returns false for a session that never existed', async () => {
        expect(await current().store.touch(newId(), current().clock.now() + LONG_MS)).toBe(false);
      });

      it('slides the idle expiry: a touched session outlives one that was not', async () => {
        const { store, clock } = current();
        const idle = record({ idleExpiresAt: clock.now() + SHORT_MS });
        const touched = record({ idleExpiresAt: clock.now() + SHORT_MS });
        await store.create(idle);
        await store.create(touched);
        expect(await store.touch(touched.id, clock.now() + LONG_MS)).toBe(true);

        await eventually('the untouched session expires', async () => !(await exists(idle.id)));
        expect(await exists(touched.id)).toBe(true);
      }, WAITING_TEST_TIMEOUT_MS);
    });

    describe('replaceTokens', () => {
      const newTokens = (label: string) => ({
        accessToken: `${label}-access`,
        accessTokenExpiresAt: 1_900_000_000_000,
        refreshToken: `${label}-refresh`,
        idToken: `${label}-id`,
        scope: 'openid offline_access',
      });

      it('replaces tokens and claims when the version matches, and bumps the version', async () => {
        const { store } = current();
        const original = record();
        await store.create(original);
        const tokens = newTokens('second');

        expect(await store.replaceTokens(original.id, original.version, tokens, { sub: 'alice', name: 'Alice Renamed' })).toBe('replaced');
        expect(await store.get(original.id)).toStrictEqual({ ...original, tokens, claims: { sub: 'alice', name: 'Alice Renamed' }, version: original.version + 1 });
      });

      it('keeps the routes\' own tokens with the session\'s, under the same compare-and-set', async () => {
        const { store } = current();
        const original = record();
        await store.create(original);
        const tokens = { ...newTokens('routes'), routes: { '/api/orders': { accessToken: 'orders-access', expiresAt: 1_900_000_000_000 } } };

        expect(await store.replaceTokens(original.id, original.version, tokens, original.claims)).toBe('replaced');
        expect((await store.get(original.id))?.tokens).toStrictEqual(tokens);
        expect(await store.replaceTokens(original.id, original.version, newTokens('stale'), original.claims)).toBe('conflict');
        expect((await store.get(original.id))?.tokens.routes).toStrictEqual(tokens.routes);
      });

      it('refuses a second refresher that started from the same version (conflict), keeping the first one\'s tokens', async () => {
        const { store } = current();
        const original = record();
        await store.create(original);
        const first = newTokens('first');

        expect(await store.replaceTokens(original.id, original.version, first, original.claims)).toBe('replaced');
        expect(await store.replaceTokens(original.id, original.version, newTokens('stale'), original.claims)).toBe('conflict');
        expect((await store.get(original.id))?.tokens).toStrictEqual(first);
      });

      it('keeps the idle expiry a slide wrote between the refresher\'s read and its write', async () => {
        const { store, clock } = current();
        const original = record({ idleExpiresAt: clock.now() + SHORT_MS * 4 });
        await store.create(original);
        const readByRefresher = await store.get(original.id);
        const slidTo = original.absoluteExpiresAt - 1;
        expect(await store.touch(original.id, slidTo)).toBe(true);

        expect(await store.replaceTokens(original.id, readByRefresher?.version ?? -1, newTokens('next'), original.claims)).toBe('replaced');
        expect((await store.get(original.id))?.idleExpiresAt).toBe(slidTo);
      });

      it('answers missing for a deleted or unknown session and does not bring it back', async () => {
        const { store } = current();
        const session = record();
        await store.create(session);
        await store.delete(session.id);

        expect(await store.replaceTokens(session.id, session.version, newTokens('late'), session.claims)).toBe('missing');
        expect(await store.get(session.id)).toBeUndefined();
        expect(await store.replaceTokens(newId(), 0, newTokens('late'), {})).toBe('missing');
      });
    });

    describe('interleavings', () => {
      const tokens = (label: string): SessionTokens => ({
        accessToken: `${label}-access`,
        accessTokenExpiresAt: 1_900_000_000_000,
        refreshToken: `${label}-refresh`,
        idToken: `${label}-id`,
        scope: 'openid offline_access',
      });

      async function read(id: string): Promise<SessionRecord> {
        const found = await current().store.get(id);
        if (found === undefined) throw new Error('the session is gone');
        return found;
      }

      it('slide read before a refresh and written after it: the refreshed tokens stay, the slide lands', async () => {
        const { store, clock } = current();
        const original = record({ idleExpiresAt: clock.now() + SHORT_MS * 4 });
        await store.create(original);
        const slideRead = gate();
        const refreshWritten = gate();
        const slidTo = original.absoluteExpiresAt - 1;

        const slide = (async () => {
          const seen = await read(original.id);
          slideRead.open();
          await refreshWritten.passed;
          expect(seen.tokens).toStrictEqual(original.tokens);
          return store.touch(original.id, slidTo);
        })();
        const refresh = (async () => {
          await slideRead.passed;
          const seen = await read(original.id);
          const result = await store.replaceTokens(original.id, seen.version, tokens('refreshed'), { ...original.claims, name: 'Alice Refreshed' });
          refreshWritten.open();
          return result;
        })();

        expect(await Promise.all([slide, refresh])).toEqual([true, 'replaced']);
        expect(await store.get(original.id)).toStrictEqual({
          ...original,
          tokens: tokens('refreshed'),
          claims: { ...original.claims, name: 'Alice Refreshed' },
          version: original.version + 1,
          idleExpiresAt: slidTo,
        });
      });

      it('two refreshers that read the same version: the later write gets conflict and the first tokens stay', async () => {
        const { store } = current();
        const original = record();
        await store.create(original);
        const firstRead = gate();
        const secondRead = gate();
        const firstWritten = gate();

        const first = (async () => {
          const seen = await read(original.id);
          firstRead.open();
          await secondRead.passed;
          const result = await store.replaceTokens(original.id, seen.version, tokens('first'), original.claims);
          firstWritten.open();
          return result;
        })();
        const second = (async () => {
          await firstRead.passed;
          const seen = await read(original.id);
          secondRead.open();
          await firstWritten.passed;
          return store.replaceTokens(original.id, seen.version, tokens('second'), original.claims);
        })();

        expect(await Promise.all([first, second])).toEqual(['replaced', 'conflict']);
        expect(await store.get(original.id)).toStrictEqual({ ...original, tokens: tokens('first'), version: original.version + 1 });
      });

      it('lets exactly one of two simultaneous compare-and-sets from the same version win', async () => {
        const { store } = current();
        const original = record();
        await store.create(original);

        const results = await Promise.all(['a', 'b'].map((label) => store.replaceTokens(original.id, original.version, tokens(label), original.claims)));
        expect([...results].sort()).toEqual(['conflict', 'replaced']);
        const winner = results[0] === 'replaced' ? 'a' : 'b';
        expect((await store.get(original.id))?.tokens).toStrictEqual(tokens(winner));
      });

      it('a refresher whose lock expired and was taken over: held() is false and its write of the old version is refused', async () => {
        const { store } = current();
        const original = record();
        await store.create(original);
        const name = `refresh:${original.id}`;
        const stale = await store.tryLock(name, SHORT_MS);
        if (stale === undefined) throw new Error('the first lock was not granted');
        const staleRead = await read(original.id);

        let owner: StoreLock | undefined;
        await eventually('the lock expires and a second refresher takes it', async () => {
          owner = await store.tryLock(name, LONG_MS);
          return owner !== undefined;
        });
        expect(await stale.held()).toBe(false);
        expect(await owner?.held()).toBe(true);
        const ownerRead = await read(original.id);
        expect(await store.replaceTokens(original.id, ownerRead.version, tokens('owner'), original.claims)).toBe('replaced');

        expect(await store.replaceTokens(original.id, staleRead.version, tokens('stale'), original.claims)).toBe('conflict');
        expect(await store.get(original.id)).toStrictEqual({ ...original, tokens: tokens('owner'), version: original.version + 1 });
        await stale.release();
        expect(await owner?.held()).toBe(true);
        await owner?.release();
      }, WAITING_TEST_TIMEOUT_MS);

      const { makeStoreWithOutage } = options;
      if (makeStoreWithOutage !== undefined) {
        it('a token write that fails after the provider rotated: rejects unavailable, leaves the record unchanged, and the same write succeeds after recovery', async () => {
          const fixture = await makeStoreWithOutage();
          const { store, clock } = fixture;
          try {
            const original = sessionRecord(clock);
            await store.create(original);
            const seen = await store.get(original.id);
            if (seen === undefined) throw new Error('the session is gone');

            await fixture.stopBackend();
            await expect(store.replaceTokens(original.id, seen.version, tokens('rotated'), original.claims)).rejects.toBeInstanceOf(SessionStoreUnavailableError);
            await fixture.startBackend();
            await eventually('the store answers again', () => store.ping().then(() => true, () => false));

            expect(await store.get(original.id)).toStrictEqual(original);
            expect(await store.replaceTokens(original.id, seen.version, tokens('rotated'), original.claims)).toBe('replaced');
            expect(await store.get(original.id)).toStrictEqual({ ...original, tokens: tokens('rotated'), version: original.version + 1 });
          } finally {
            await fixture.cleanup();
          }
        }, WAITING_TEST_TIMEOUT_MS);
      }
    });

    describe('delete', () => {
      it('removes the session', async () => {
        const { store } = current();
        const session = record();
        await store.create(session);
        await store.delete(session.id);

        expect(await store.get(session.id)).toBeUndefined();
      });

      it('accepts an id that does not exist', async () => {
        await expect(current().store.delete(newId())).resolves.toBeUndefined();
      });
    });

    describe('expiry', () => {
      it('ends a session when its idle expiry passes', async () => {
        const { store, clock } = current();
        const session = record({ idleExpiresAt: clock.now() + SHORT_MS });
        await store.create(session);

        expect(await exists(session.id)).toBe(true);
        await eventually('the idle session expires', async () => !(await exists(session.id)));
      }, WAITING_TEST_TIMEOUT_MS);

      it('ends a session at its absolute expiry even while its idle expiry is far away', async () => {
        const { store, clock } = current();
        const session = record({ absoluteExpiresAt: clock.now() + SHORT_MS });
        await store.create(session);

        expect(await exists(session.id)).toBe(true);
        await eventually('the session reaches its absolute expiry', async () => !(await exists(session.id)));
      }, WAITING_TEST_TIMEOUT_MS);

      it('treats a session as missing once the clock passes its expiry, before the store drops it', async () => {
        const { store, clock } = current();
        const session = record();
        await store.create(session);
        clock.advance(LONG_MS + 1);

        expect(await store.get(session.id)).toBeUndefined();
        expect(await store.touch(session.id, clock.now() + LONG_MS)).toBe(false);
      });

      it('does not revive or count an expired session through its indexes', async () => {
        const { store, clock } = current();
        const expiring = record({ idleExpiresAt: clock.now() + SHORT_MS, providerSid: 'op-shared' });
        const live = record({ providerSid: 'op-shared' });
        await store.create(expiring);
        await store.create(live);

        await eventually('the short session expires', async () => !(await exists(expiring.id)));
        expect(await store.touch(expiring.id, clock.now() + LONG_MS)).toBe(false);
        expect(await store.deleteByProviderSid('op-shared')).toBe(1);
        expect(await store.deleteBySubject('alice')).toBe(0);
        expect(await store.get(expiring.id)).toBeUndefined();
        expect(await store.get(live.id)).toBeUndefined();
      }, WAITING_TEST_TIMEOUT_MS);
    });

    describe('deleteBySubject', () => {
      it("ends all of a user's sessions, no one else's, and returns how many", async () => {
        const { store } = current();
        const laptop = record({ sub: 'alice', providerSid: 'op-a1' });
        const phone = record({ sub: 'alice', providerSid: undefined });
        const other = record({ sub: 'bob', providerSid: 'op-b1' });
        for (const session of [laptop, phone, other]) await store.create(session);

        expect(await store.deleteBySubject('alice')).toBe(2);
        expect(await exists(laptop.id)).toBe(false);
        expect(await exists(phone.id)).toBe(false);
        expect(await store.get(other.id)).toStrictEqual(other);
      });

      it('also removes the sessions from the provider-sid index', async () => {
        const { store } = current();
        const session = record({ sub: 'alice', providerSid: 'op-a1' });
        await store.create(session);

        expect(await store.deleteBySubject('alice')).toBe(1);
        expect(await store.deleteBySubject('alice')).toBe(0);
        expect(await store.deleteByProviderSid('op-a1')).toBe(0);
      });

      it('returns 0 for a user without sessions', async () => {
        expect(await current().store.deleteBySubject('nobody')).toBe(0);
      });

      it('does not count a session that was already deleted on its own', async () => {
        const { store } = current();
        const gone = record();
        const kept = record();
        await store.create(gone);
        await store.create(kept);
        await store.delete(gone.id);

        expect(await store.deleteBySubject('alice')).toBe(1);
      });
    });

    describe('deleteByProviderSid', () => {
      it('ends every session bound to the provider session, no others, and returns how many', async () => {
        const { store } = current();
        const first = record({ sub: 'alice', providerSid: 'op-1' });
        const second = record({ sub: 'alice', providerSid: 'op-1' });
        const elsewhere = record({ sub: 'alice', providerSid: 'op-2' });
        const other = record({ sub: 'bob', providerSid: 'op-3' });
        for (const session of [first, second, elsewhere, other]) await store.create(session);

        expect(await store.deleteByProviderSid('op-1')).toBe(2);
        expect(await exists(first.id)).toBe(false);
        expect(await exists(second.id)).toBe(false);
        expect(await store.get(elsewhere.id)).toStrictEqual(elsewhere);
        expect(await store.get(other.id)).toStrictEqual(other);
        expect(await store.deleteBySubject('alice')).toBe(1);
      });

      it('returns 0 for an unknown provider session', async () => {
        expect(await current().store.deleteByProviderSid('op-unknown')).toBe(0);
      });
    });

    describe('tryLock', () => {
      it('is exclusive until released', async () => {
        const { store } = current();
        const lock = await store.tryLock('refresh:a', LONG_MS);
        expect(lock).toBeDefined();
        expect(await store.tryLock('refresh:a', LONG_MS)).toBeUndefined();
        expect(await store.tryLock('refresh:b', LONG_MS)).toBeDefined();

        expect(await lock?.held()).toBe(true);
        await lock?.release();
        expect(await lock?.held()).toBe(false);
        expect(await store.tryLock('refresh:a', LONG_MS)).toBeDefined();
      });

      it("expires after its ttl, and a stale owner's release leaves the new owner's lock in place", async () => {
        const { store } = current();
        const stale = await store.tryLock('refresh:c', SHORT_MS);
        expect(stale).toBeDefined();

        let takeover: StoreLock | undefined;
        await eventually('the lock expires and can be taken over', async () => {
          takeover = await store.tryLock('refresh:c', LONG_MS);
          return takeover !== undefined;
        });
        expect(await stale?.held()).toBe(false);
        expect(await takeover?.held()).toBe(true);
        await stale?.release();
        expect(await store.tryLock('refresh:c', LONG_MS)).toBeUndefined();

        await takeover?.release();
        expect(await store.tryLock('refresh:c', LONG_MS)).toBeDefined();
      }, WAITING_TEST_TIMEOUT_MS);
    });

    describe('markOnce', () => {
      it('returns true the first time and false afterwards', async () => {
        const { store } = current();
        expect(await store.markOnce('jti-1', LONG_MS)).toBe(true);
        expect(await store.markOnce('jti-1', LONG_MS)).toBe(false);
        expect(await store.markOnce('jti-2', LONG_MS)).toBe(true);
      });

      it('forgets a mark after its ttl', async () => {
        const { store } = current();
        expect(await store.markOnce('jti-3', SHORT_MS)).toBe(true);
        await eventually('the mark expires', () => store.markOnce('jti-3', LONG_MS));
      }, WAITING_TEST_TIMEOUT_MS);

      it('isMarked reads a mark without recording one', async () => {
        const { store } = current();
        expect(await store.isMarked('jti-4')).toBe(false);
        expect(await store.isMarked('jti-4')).toBe(false);
        expect(await store.markOnce('jti-4', LONG_MS)).toBe(true);
        expect(await store.isMarked('jti-4')).toBe(true);
      });

      it('isMarked forgets a mark after its ttl', async () => {
        const { store } = current();
        expect(await store.markOnce('jti-5', SHORT_MS)).toBe(true);
        await eventually('the mark expires', async () => !(await store.isMarked('jti-5')));
      }, WAITING_TEST_TIMEOUT_MS);
    });

    it('answers ping', async () => {
      await expect(current().store.ping()).resolves.toBeUndefined();
    });
  });
}
