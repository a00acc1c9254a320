import { randomBytes } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { CLOCK, type Clock } from '../common/clock.js';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { userClaims, type IdTokenClaims } from '../oidc/id-token.validator.js';
import type { DpopPrivateJwk } from '../oidc/dpop.js';
import type { TokenResponse } from '../oidc/token-client.js';
import { newSessionId, readSessionId, sessionKey, sidHash, writeSessionId, type SessionCookie } from './session-cookie.js';
import { SessionRequiredError } from './session.errors.js';
import { SESSION_STORE, type SessionRecord, type SessionStore } from './session-store.js';
import { accessTokenExpiresAt, slidIdleExpiry } from './session-timing.js';

export interface NewSession {
  readonly claims: IdTokenClaims;
  readonly tokens: TokenResponse & { readonly id_token: string };
  /** OIDC_DPOP: the key the login transaction carried, which the tokens are bound to. */
  readonly dpopKey?: DpopPrivateJwk | undefined;
}

/** What start() did: the new session, and the browser's previous one that it ended. */
export interface StartedSession {
  readonly record: SessionRecord;
  readonly replaced: SessionRecord | undefined;
}

/** Where loading a session logs a cookie that names no live session (the request's own logger). */
export interface SessionLog {
  debug(fields: object, message: string): void;
}

/** Creates, loads, slides and ends sessions: the cookie holds the id, the store holds the rest. */
@Injectable()
export class SessionService {
  private readonly log = new Logger(SessionService.name);

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(SESSION_STORE) private readonly store: SessionStore,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  /**
   * The request's session, or undefined. An unknown, expired or tampered cookie is "no session".
   * Activity slides the idle timeout (throttled) unless `slide` is false.
   */
  load(request: FastifyRequest, slide = true): Promise<SessionRecord | undefined> {
    return this.loadFromCookie(request.session, request.log, slide);
  }

  /**
   * The session a decoded cookie names: what secure-session's hook decoded for a routed request, or
   * SessionCookieCodec for /api (HTTP and WebSocket), so both follow one rule. A cookie naming no
   * live session loses its id (a routed request's answer then clears it in the browser).
   */
  async loadFromCookie(cookie: SessionCookie | undefined, log: SessionLog, slide: boolean): Promise<SessionRecord | undefined> {
    if (cookie === undefined) return undefined;
    const sid = readSessionId(cookie);
    if (sid === undefined) return undefined;
    const record = await this.loadBySid(sid, slide);
    if (record === undefined) {
      log.debug({ event: 'session_unknown' }, 'session cookie names no live session');
      writeSessionId(cookie, undefined);
    }
    return record;
  }

  /** The session of a cookie's id. */
  loadBySid(sid: string, slide: boolean): Promise<SessionRecord | undefined> {
    return this.loadByKey(sessionKey(sid), slide);
  }

  /** The session under its store key (open WebSockets re-check theirs); slides like loadBySid. */
  async loadByKey(key: string, slide: boolean): Promise<SessionRecord | undefined> {
    const record = await this.store.get(key);
    if (record === undefined || !slide) return record;
    const idleExpiresAt = slidIdleExpiry(record, this.clock.now(), this.config.session.idleTimeoutS);
    if (idleExpiresAt === undefined) return record;
    // only the expiry is written: a slide based on this read can never put back older tokens
    return (await this.store.touch(record.id, idleExpiresAt)) ? { ...record, idleExpiresAt } : undefined;
  }

  /** Like load(), but 401 session_required when there is none. */
  async require(request: FastifyRequest, slide = true): Promise<SessionRecord> {
    const record = await this.load(request, slide);
    if (record === undefined) throw new SessionRequiredError();
    return record;
  }

  /**
   * A new session for a completed login, under a new id (never the pre-login cookie's). The
   * browser's previous session, if any, ends only once the new one is stored, so a failure on the
   * way leaves the user signed in as before; it is returned so that its grant can be revoked.
   */
  async start(request: FastifyRequest, login: NewSession): Promise<StartedSession> {
    const previousSid = readSessionId(request.session);
    const replaced = previousSid === undefined ? undefined : await this.store.get(sessionKey(previousSid));
    const sid = newSessionId(this.store.sessionTag(login.claims.sub));
    const now = this.clock.now();
    const { idleTimeoutS, absoluteTimeoutS } = this.config.session;
    const absoluteExpiresAt = now + absoluteTimeoutS * 1000;
    const record: SessionRecord = {
      id: sessionKey(sid),
      sub: login.claims.sub,
      providerSid: login.claims.sid,
      claims: userClaims(login.claims),
      tokens: {
        accessToken: login.tokens.access_token,
        accessTokenExpiresAt: accessTokenExpiresAt(login.tokens.access_token, login.tokens.expires_in, now),
        refreshToken: login.tokens.refresh_token,
        idToken: login.tokens.id_token,
        scope: login.tokens.scope,
      },
      logoutValue: randomBytes(16).toString('base64url'),
      ...(login.dpopKey === undefined ? {} : { dpopKey: login.dpopKey }),
      createdAt: now,
      absoluteExpiresAt,
      idleExpiresAt: Math.min(now + idleTimeoutS * 1000, absoluteExpiresAt),
      version: 0,
    };
    await this.store.create(record);
    writeSessionId(request.session, sid);
    this.log.log(`session started for ${sidHash(record.id)}`);
    if (previousSid !== undefined) {
      // the new session exists: a store hiccup now must not turn a completed login into an error;
      // the old session still expires by itself
      await this.store.delete(sessionKey(previousSid)).catch((error: unknown) => {
        this.log.warn(`previous session ${sidHash(sessionKey(previousSid))} not deleted at sign-in: ${error instanceof Error ? error.message : String(error)}`);
      });
    }
    return { record, replaced };
  }

  /** Ends the session server-side and clears the cookie. */
  async end(request: FastifyRequest, record: SessionRecord): Promise<void> {
    await this.store.delete(record.id);
    request.session.delete();
  }
}
