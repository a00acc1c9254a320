import { randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { LoginContext, StateStore } from 'passport-openidconnect';
import { z } from 'zod';
import type { Clock } from '../common/clock.js';
import type { LoginAttempt } from './login-attempt.js';

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
});
export type LoginTransaction = z.infer<typeof LoginTransactionSchema>;
const PendingSchema = z.array(LoginTransactionSchema);

type SecureSession = FastifyRequest['session'];

/**
 * passport-openidconnect's state store, kept in the sealed session cookie: bound to the browser that
 * started the login, single use, and unable to crowd out real sessions (nothing is stored server-side
 * until the ID token is valid). Built per request around that request's cookie session.
 */
export class LoginTransactionStore implements StateStore {
  constructor(
    private readonly session: SecureSession,
    private readonly attempt: LoginAttempt,
    private readonly clock: Clock,
  ) {}

  store(_req: unknown, _ctx: LoginContext, _appState: unknown, _meta: unknown, callback: (err: Error | null, state?: string) => void): void {
    const { codeVerifier, nonce } = this.attempt;
    if (codeVerifier === undefined || nonce === undefined) {
      callback(new Error('login attempt started without PKCE verifier or nonce'));
      return;
    }
    const state = randomBytes(32).toString('base64url');
    const transaction: LoginTransaction = { state, nonce, codeVerifier, returnTo: this.attempt.returnTo, createdAt: this.clock.now() };
    this.session.set('login', [...this.pending().slice(-(MAX_PENDING_LOGINS - 1)), transaction]);
    callback(null, state);
  }

  verify(_req: unknown, state: unknown, callback: (err: Error | null, ctx?: LoginContext | false, info?: unknown) => void): void {
    const pending = this.pending();
    const transaction = typeof state === 'string' ? pending.find((t) => t.state === state) : undefined;
    // consumed before the code exchange: a callback must not be replayable
    this.session.set('login', pending.filter((t) => t !== transaction));
    if (transaction === undefined) {
      this.attempt.stateMismatch = true;
      callback(null, false, { message: 'state mismatch' });
      return;
    }
    this.attempt.transaction = transaction;
    callback(null, { nonce: transaction.nonce });
  }

  /** Unexpired transactions from the cookie; anything malformed counts as none. */
  private pending(): LoginTransaction[] {
    const parsed = PendingSchema.safeParse(this.session.get('login'));
    if (!parsed.success) return [];
    const oldest = this.clock.now() - LOGIN_TRANSACTION_TTL_MS;
    return parsed.data.filter((t) => t.createdAt > oldest);
  }
}
