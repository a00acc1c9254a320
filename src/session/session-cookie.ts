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

/** The decoded session cookie (secure-session's session object). */
export type SessionCookie = FastifyRequest['session'];

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

/**
 * The session cookie of a request no Fastify hook has seen (a WebSocket handshake), decoded as the
 * plugins' onRequest hooks decode it for routed requests: @fastify/cookie's parser, then
 * secure-session's decoder (same keys, same expiry). Undefined when absent, tampered, sealed with
 * an unknown key or expired.
 */
export function decodeSessionCookie(fastify: FastifyInstance, cookieHeader: string | undefined, cookieName: string): SessionCookie | undefined {
  if (cookieHeader === undefined) return undefined;
  const sealed = fastify.parseCookie(cookieHeader)[cookieName];
  if (sealed === undefined) return undefined;
  return fastify.decodeSecureSession(sealed) ?? undefined;
}

/**
 * The session id in a decoded cookie, if any: the one validity rule, for HTTP and WebSocket alike.
 * A tampered or foreign cookie never decodes, so it is absent.
 */
export function readSessionId(session: SessionCookie): string | undefined {
  const value = session.get('sid');
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

export function writeSessionId(session: SessionCookie, sid: string | undefined): void {
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
