import { hash, randomBytes } from 'node:crypto';
import fastifySecureSession from '@fastify/secure-session';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config/config.js';
import { setBounded } from '../common/bounded-map.js';
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
    cookie: cookieOptions(config),
  });
}

/** The session cookie's attributes, as the plugin writes them (and SessionCookieCodec, for /api refusals). */
interface CookieOptions {
  readonly path: string;
  readonly httpOnly: boolean;
  readonly secure: boolean;
  readonly sameSite: 'lax';
  readonly maxAge: number;
}

function cookieOptions(config: Config): CookieOptions {
  const { cookie, absoluteTimeoutS } = config.session;
  return { path: '/', httpOnly: true, secure: cookie.secure, sameSite: 'lax', maxAge: absoluteTimeoutS };
}

/** Opened cookies kept by SessionCookieCodec: about 300 bytes each, a few MB at most. */
const OPENED_COOKIES_MAX = 10_000;

/** What an opened cookie said. */
interface OpenedCookie {
  /**
   * Its data as sealed (`__ts` included). Each request gets its own shallow copy, as session
   * writes are top-level (`sid`); nested values (the login list) are only read on /api.
   */
  readonly data: Readonly<Record<string, unknown>>;
  /** Epoch ms from which secure-session no longer opens it (`__ts` + its expiry). */
  readonly expiresAt: number;
  /** Opened with a retired key: the next answer the gateway writes seals it again with the first. */
  readonly rotated: boolean;
}

/**
 * The session cookie as /api reads it, HTTP and WebSocket alike, without secure-session's hooks:
 * they would parse and open the cookie on every request of the scope, and opening it (XSalsa20-
 * Poly1305 after two base64 decodes) is the dearest step of an /api request's own work. The sealed
 * value a browser sends on each call opens once; later calls find what it said, until
 * secure-session's expiry for it. Keyed by the authenticated sealed value, so nothing a client
 * makes up gets in.
 */
export class SessionCookieCodec {
  private readonly opened = new Map<string, OpenedCookie>();

  private constructor(
    private readonly plugin: FastifyInstance,
    private readonly name: string,
    private readonly expiryS: number,
    private readonly options: CookieOptions,
  ) {}

  /**
   * Registers the cookie plugins in a scope of their own under `scope`, with no route: their
   * decoders and encoders serve `scope`'s routes, their hooks never run there.
   */
  static async register(scope: FastifyInstance, config: Config): Promise<SessionCookieCodec> {
    let codec: SessionCookieCodec | undefined;
    await scope.register(async (plugin) => {
      await registerSessionCookie(plugin, config);
      codec = new SessionCookieCodec(plugin, config.session.cookie.name, config.session.absoluteTimeoutS, cookieOptions(config));
    });
    if (codec === undefined) throw new Error('the session cookie plugin did not register');
    return codec;
  }

  /**
   * The session cookie of a Cookie header, decoded as the plugins' hooks decode it elsewhere:
   * @fastify/cookie's parser, then secure-session's decoder (same keys, same expiry). Undefined when
   * absent, tampered, sealed with an unknown key or expired.
   */
  decode(cookieHeader: string | undefined): SessionCookie | undefined {
    if (cookieHeader === undefined) return undefined;
    const sealed = this.plugin.parseCookie(cookieHeader)[this.name];
    if (sealed === undefined) return undefined;
    const known = this.opened.get(sealed);
    // secure-session's own test of the cookie's age, on its own clock
    if (known !== undefined && known.expiresAt - Date.now() > 0) {
      const session = this.plugin.createSecureSession({ ...known.data });
      if (known.rotated) session.changed = true;
      return session;
    }
    const session = this.plugin.decodeSecureSession(sealed) ?? undefined;
    if (session === undefined) {
      this.opened.delete(sealed);
      return undefined;
    }
    this.remember(sealed, session);
    return session;
  }

  /**
   * The Set-Cookie header for an answer the gateway writes itself (a refusal), when the request
   * changed its cookie (a dropped session id, a retired key): what secure-session's onSend hook
   * writes elsewhere.
   */
  setCookie(session: SessionCookie | undefined): string | undefined {
    if (session === undefined || session.changed !== true) return undefined;
    if (session.deleted === true) return this.plugin.serializeCookie(this.name, '', { ...this.options, expires: new Date(0), maxAge: 0 });
    return this.plugin.serializeCookie(this.name, this.plugin.encodeSecureSession(session), this.options);
  }

  private remember(sealed: string, session: SessionCookie): void {
    const ts: unknown = session.get('__ts');
    if (typeof ts !== 'number') return;
    setBounded(this.opened, sealed, { data: { ...session.data(), __ts: ts }, expiresAt: (ts + this.expiryS) * 1000, rotated: session.changed === true }, OPENED_COOKIES_MAX);
  }
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

/** Store keys of recent session ids: a hash per /api request costs more than a lookup. */
const KEYS_REMEMBERED = 10_000;
const keysBySid = new Map<string, string>();

/**
 * The store key for a session id: the SHA-256 of its random part, so the raw id never leaves the
 * cookie (and this process) and a store dump holds no usable ids; a tag travels on unchanged.
 */
export function sessionKey(sid: string): string {
  const known = keysBySid.get(sid);
  if (known !== undefined) return known;
  const separator = sid.indexOf(TAG_SEPARATOR);
  const key = separator === -1 ? hash('sha256', sid, 'hex') : `${hash('sha256', sid.slice(0, separator), 'hex')}${sid.slice(separator)}`;
  setBounded(keysBySid, sid, key, KEYS_REMEMBERED);
  return key;
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
