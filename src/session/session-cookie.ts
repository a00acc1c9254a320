import { hash } from 'node:crypto';
import fastifySecureSession from '@fastify/secure-session';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config/config.js';
import { deriveKeys } from './secret-keys.js';

declare module '@fastify/secure-session' {
  interface SessionData {
    /** The session id; the server-side store key is its SHA-256. */
    sid: string;
    /** Pending login transactions (auth/login-transaction.store.ts parses them). */
    login: unknown;
  }
}

type SecureSession = FastifyRequest['session'];

/**
 * Registers @fastify/secure-session. The cookie carries only the session id (and, during a login,
 * the login transaction); tokens stay server-side. `__Host-` + Secure on https and loopback origins.
 */
export async function registerSessionCookie(fastify: FastifyInstance, config: Config): Promise<void> {
  const { cookie, absoluteTimeoutS, secrets } = config.session;
  await fastify.register(fastifySecureSession, {
    // derived once: secure-session's own secret+salt mode costs ~0.4 s of CPU per key
    key: deriveKeys(secrets, 'cookie'),
    cookieName: cookie.name,
    expiry: absoluteTimeoutS,
    cookie: { path: '/', httpOnly: true, secure: cookie.secure, sameSite: 'lax', maxAge: absoluteTimeoutS },
  });
}

/** The session id in the cookie, if any. A tampered or foreign cookie never decodes, so it is absent. */
export function readSessionId(session: SecureSession): string | undefined {
  const value = session.get('sid');
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

export function writeSessionId(session: SecureSession, sid: string | undefined): void {
  session.set('sid', sid);
}

/** The store key for a session id: the raw id never leaves the cookie, so a store dump holds no usable ids. */
export function sessionKey(sid: string): string {
  return hash('sha256', sid, 'hex');
}

/** For logs: the first 8 hex characters of the store key, never the id itself. */
export function sidHash(storeKey: string): string {
  return storeKey.slice(0, 8);
}
