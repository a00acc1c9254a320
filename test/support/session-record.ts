import type { SessionRecord } from '../../src/session/session-store.js';

/** A fixed instant for unit tests that do expiry arithmetic. */
export const T0 = 1_800_000_000_000;

/** A typed session record fixture: signed in at T0, idle 30 min, absolute 8 h, token valid 5 min. */
export function sessionRecord(overrides: Partial<SessionRecord> = {}): SessionRecord {
  return {
    id: 'id',
    sub: 'alice',
    providerSid: undefined,
    claims: {},
    tokens: { accessToken: 'at', accessTokenExpiresAt: T0 + 300_000, refreshToken: 'rt', idToken: 'id', scope: undefined },
    logoutValue: 'lv',
    createdAt: T0,
    absoluteExpiresAt: T0 + 28_800_000,
    idleExpiresAt: T0 + 1_800_000,
    version: 0,
    ...overrides,
  };
}
