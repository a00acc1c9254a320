import { sessionRecord, T0 } from '../../test/support/session-record.js';
import { accessTokenExpiresAt, needsRefresh, sessionEndsAt, slidIdleExpiry } from './session-timing.js';

const record = sessionRecord;

describe('slidIdleExpiry', () => {
  it('does not extend within a minute of the last extension', () => {
    expect(slidIdleExpiry(record(), T0 + 59_000, 1800)).toBeUndefined();
  });

  it('extends by the idle timeout after a minute', () => {
    expect(slidIdleExpiry(record(), T0 + 61_000, 1800)).toBe(T0 + 61_000 + 1_800_000);
  });

  it('never extends beyond the absolute expiry', () => {
    const r = record({ absoluteExpiresAt: T0 + 1_900_000 });
    expect(slidIdleExpiry(r, T0 + 600_000, 1800)).toBe(T0 + 1_900_000);
    expect(slidIdleExpiry({ ...r, idleExpiresAt: T0 + 1_900_000 }, T0 + 1_000_000, 1800)).toBeUndefined();
  });
});

describe('slidIdleExpiry with a short idle timeout', () => {
  /** A request every `everyMs` for `forMs`, each sliding the record the way SessionService does. */
  function simulate(idleTimeoutS: number, everyMs: number, forMs: number): { alive: boolean; slides: number } {
    let current = record({ idleExpiresAt: T0 + idleTimeoutS * 1000 });
    let slides = 0;
    for (let now = T0 + everyMs; now <= T0 + forMs; now += everyMs) {
      if (sessionEndsAt(current) <= now) return { alive: false, slides };
      const next = slidIdleExpiry(current, now, idleTimeoutS);
      if (next !== undefined) {
        current = { ...current, idleExpiresAt: next };
        slides++;
      }
    }
    return { alive: true, slides };
  }

  it('never lets SESSION_IDLE_TIMEOUT_S=5 expire with a request every second (an idle timeout under a minute used to never slide)', () => {
    expect(simulate(5, 1000, 60_000)).toMatchObject({ alive: true });
  });

  it('throttles the slide to a quarter of the idle timeout', () => {
    const r = record({ idleExpiresAt: T0 + 8000 });
    expect(slidIdleExpiry(r, T0 + 1999, 8)).toBeUndefined();
    expect(slidIdleExpiry(r, T0 + 2000, 8)).toBe(T0 + 10_000);
    // a request every second: one write every 2 s, not one per request
    expect(simulate(8, 1000, 60_000)).toEqual({ alive: true, slides: 30 });
  });

  it('still writes at most once a minute for long idle timeouts', () => {
    expect(simulate(1800, 1000, 600_000)).toEqual({ alive: true, slides: 10 });
  });
});

describe('sessionEndsAt', () => {
  it('is the earlier of idle and absolute expiry', () => {
    expect(sessionEndsAt(record())).toBe(T0 + 1_800_000);
    expect(sessionEndsAt(record({ absoluteExpiresAt: T0 + 1000 }))).toBe(T0 + 1000);
  });
});

describe('needsRefresh', () => {
  it('is true only when the access token expires within the skew', () => {
    expect(needsRefresh(record(), T0, 30)).toBe(false);
    expect(needsRefresh(record(), T0 + 270_000, 30)).toBe(true);
    expect(needsRefresh(record(), T0 + 400_000, 30)).toBe(true);
  });
});

describe('accessTokenExpiresAt', () => {
  it('prefers expires_in', () => {
    expect(accessTokenExpiresAt('opaque', 60, T0)).toBe(T0 + 60_000);
  });

  it('falls back to a JWT access token\'s exp', () => {
    const payload = Buffer.from(JSON.stringify({ exp: 1_900_000_000 })).toString('base64url');
    expect(accessTokenExpiresAt(`h.${payload}.s`, undefined, T0)).toBe(1_900_000_000_000);
  });

  it('assumes an hour for an opaque token without expires_in', () => {
    expect(accessTokenExpiresAt('opaque', undefined, T0)).toBe(T0 + 3_600_000);
    expect(accessTokenExpiresAt('a.!!!.c', undefined, T0)).toBe(T0 + 3_600_000);
  });
});
