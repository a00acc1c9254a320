import { z } from 'zod';
import { DpopPrivateJwkSchema } from '../oidc/dpop.js';
import { LoginStateMismatchError } from './auth.errors.js';

/** How long a started login may take at the provider. */
export const LOGIN_TRANSACTION_TTL_MS = 10 * 60 * 1000;
/** Parallel logins kept per browser (several tabs); the oldest is dropped beyond this. */
const MAX_PENDING_LOGINS = 3;

const LoginTransactionSchema = z.object({
  state: z.string(),
  nonce: z.string(),
  codeVerifier: z.string(),
  returnTo: z.string(),
  createdAt: z.number(),
  /** The max_age the login sent (the query's or OIDC_EXTRA_AUTH_PARAMS's): auth_time is then required. */
  maxAgeS: z.number().optional(),
  /** The query's acr_values (step-up): the ID token's acr must be one of them. */
  acrValues: z.array(z.string()).optional(),
  /**
   * OIDC_DPOP: this login's own DPoP private key (RFC 9449 §10: the authorization request sent its
   * thumbprint as dpop_jkt). It travels only here, in the sealed cookie, until the callback moves it
   * into the session record.
   */
  dpopKey: DpopPrivateJwkSchema.optional(),
});
export type LoginTransaction = z.infer<typeof LoginTransactionSchema>;
const PendingSchema = z.array(LoginTransactionSchema);

/** The part of the sealed session cookie that holds pending logins (secure-session's get/set). */
export interface TransactionCookie {
  get(key: 'login'): unknown;
  set(key: 'login', value: unknown): void;
}

/**
 * Step 2 of a login: the transaction goes into the sealed session cookie, bound to the browser that
 * started the login and unable to crowd out real sessions (nothing is stored server-side until the
 * ID token is valid).
 */
export function storeTransaction(cookie: TransactionCookie, transaction: LoginTransaction, now: number): void {
  cookie.set('login', [...pending(cookie, now).slice(-(MAX_PENDING_LOGINS - 1)), transaction]);
}

/**
 * At the callback: the transaction `state` names, removed from the cookie whatever happens next.
 * LoginStateMismatchError when it names none (forged, stale, or already used).
 */
export function takeTransaction(cookie: TransactionCookie, state: string, now: number): LoginTransaction {
  const all = pending(cookie, now);
  const transaction = all.find((t) => t.state === state);
  // consumed before the code exchange: a callback must not be replayable
  cookie.set('login', all.filter((t) => t !== transaction));
  if (transaction === undefined) throw new LoginStateMismatchError();
  return transaction;
}

/** Unexpired transactions from the cookie; anything malformed counts as none. */
function pending(cookie: TransactionCookie, now: number): LoginTransaction[] {
  const parsed = PendingSchema.safeParse(cookie.get('login'));
  if (!parsed.success) return [];
  const oldest = now - LOGIN_TRANSACTION_TTL_MS;
  return parsed.data.filter((t) => t.createdAt > oldest);
}
