import { hash, randomBytes } from 'node:crypto';
import fastifySecureSession from '@fastify/secure-session';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config/config.js';
import { deriveKeys } from './secret-keys.js';

declare module '@fastify/secure-session' {
  interface SessionData {
    /** The session id (with the store's tag, if any); the server-side store key is its SHA-256 (and the tag). */
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

// `<random>.<tag>`: base64url never contains the separator, and the tag is hex
const TAG_SEPARATOR = '.';
const TAGGED_KEY = /^([^.]+)\.([0-9a-f]{1,128})$/;

/**
 * A new session id: 32 random bytes, then the store's tag when it has one (Redis Cluster's hash
 * slot tag), so that the sealed cookie names where the session lives and a request costs one read.
 */
export function newSessionId(tag: string | undefined): string {
  const random = randomBytes(32).toString('base64url');
  return tag === undefined ? random : `${random}${TAG_SEPARATOR}${tag}`;
}

/**
 * The store key for a session id: the SHA-256 of its random part, so the raw id never leaves the
 * cookie and a store dump holds no usable ids; a tag travels on unchanged.
 */
export function sessionKey(sid: string): string {
  const separator = sid.indexOf(TAG_SEPARATOR);
  if (separator === -1) return hash('sha256', sid, 'hex');
  return `${hash('sha256', sid.slice(0, separator), 'hex')}${sid.slice(separator)}`;
}

/** The hash and the tag of a tagged store key; undefined for an untagged one. */
export function splitSessionKey(storeKey: string): { readonly hash: string; readonly tag: string } | undefined {
  const match = TAGGED_KEY.exec(storeKey);
  return match?.[1] === undefined || match[2] === undefined ? undefined : { hash: match[1], tag: match[2] };
}

/** For logs: the first 8 hex characters of the store key, never the id itself. */
export function sidHash(storeKey: string): string {
  return storeKey.slice(0, 8);
}
