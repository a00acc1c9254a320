import type { SessionRecord } from './session-store.js';

/** Idle expiry is extended at most this often, so the /api hot path rarely writes to the store. */
export const SLIDE_THROTTLE_MS = 60_000;

/**
 * How long after a slide the next one is skipped: a minute, or a quarter of the idle timeout when
 * that is shorter, so a session in use always slides long before its idle expiry.
 */
export function slideThrottleMs(idleTimeoutS: number): number {
  return Math.min(SLIDE_THROTTLE_MS, (idleTimeoutS * 1000) / 4);
}

/**
 * The new idle expiry if this activity should extend it, else undefined: never beyond the
 * absolute expiry, and not within slideThrottleMs() of the last extension.
 */
export function slidIdleExpiry(record: SessionRecord, now: number, idleTimeoutS: number): number | undefined {
  const lastSlideAt = record.idleExpiresAt - idleTimeoutS * 1000;
  if (now - lastSlideAt < slideThrottleMs(idleTimeoutS)) return undefined;
  const next = Math.min(now + idleTimeoutS * 1000, record.absoluteExpiresAt);
  return next > record.idleExpiresAt ? next : undefined;
}

/** When the session ends if nothing happens: the earlier of idle and absolute expiry. */
export function sessionEndsAt(record: SessionRecord): number {
  return Math.min(record.idleExpiresAt, record.absoluteExpiresAt);
}

/** True when the access token expires within the skew (or already has). */
export function needsRefresh(record: SessionRecord, now: number, skewS: number): boolean {
  return record.tokens.accessTokenExpiresAt - now <= skewS * 1000;
}

const DEFAULT_ACCESS_TOKEN_LIFETIME_S = 3600;

/**
 * Expiry of a new access token: `expires_in` (RFC 6749 §5.1), else the `exp` of a JWT access
 * token (read only for scheduling, never trusted for anything else), else an hour.
 */
export function accessTokenExpiresAt(accessToken: string, expiresInS: number | undefined, now: number): number {
  if (expiresInS !== undefined) return now + expiresInS * 1000;
  const payload = accessToken.split('.')[1];
  if (payload !== undefined) {
    try {
      const exp: unknown = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
      if (typeof exp === 'number') return exp * 1000;
    } catch {
      // opaque token: fall through to the default lifetime
    }
  }
  return now + DEFAULT_ACCESS_TOKEN_LIFETIME_S * 1000;
}
