import { DpopKey } from '../oidc/dpop.js';
import { SessionExpiredError } from './session.errors.js';
import type { SessionRecord } from './session-store.js';

/**
 * The DPoP key (RFC 9449) a session's tokens are bound to, under OIDC_DPOP; undefined without it. A
 * session that began before OIDC_DPOP was switched on has none and holds bearer tokens: it ends
 * (401 session_expired) rather than go on unbound.
 */
export function sessionDpopKey(record: Pick<SessionRecord, 'dpopKey'>, enabled: boolean): DpopKey | undefined {
  if (!enabled) return undefined;
  if (record.dpopKey === undefined) throw new SessionExpiredError('This session began before DPoP was switched on; sign in again.');
  return DpopKey.fromJwk(record.dpopKey);
}
