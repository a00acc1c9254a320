import fastifySecureSession from '@fastify/secure-session';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import Fastify, { type FastifyInstance } from 'fastify';
import { CONFIG } from '../../src/config/config.module.js';
import type { Config } from '../../src/config/config.js';
import { sessionKey } from '../../src/session/session-cookie.js';
import { deriveKeys } from '../../src/session/secret-keys.js';
import { SESSION_STORE, type SessionRecord, type SessionStore } from '../../src/session/session-store.js';
import type { BrowserClient } from './browser.js';

/**
 * Reads a browser's server-side session straight from the in-process gateway's store, for tests that
 * must observe or age the tokens the browser never sees. Observation only: the gateway runs unmocked.
 */
export async function sessionOf(app: NestFastifyApplication, browser: BrowserClient, gatewayUrl: string, cookieName = '__Host-bff-session'): Promise<{ store: SessionStore; record: SessionRecord }> {
  const store = app.get<SessionStore>(SESSION_STORE);
  const record = await store.get(sessionKey(await sessionIdOf(app, browser, gatewayUrl, cookieName)));
  if (record === undefined) throw new Error('the session cookie names no live session');
  return { store, record };
}

/** The raw session id inside a browser's sealed session cookie, opened with the gateway's own keys (each scope that reads the cookie has its own decoder: none is on the root). */
export async function sessionIdOf(app: NestFastifyApplication, browser: BrowserClient, gatewayUrl: string, cookieName = '__Host-bff-session'): Promise<string> {
  const sealed = (await browser.cookies(gatewayUrl)).find((c) => c.name === cookieName)?.value;
  if (sealed === undefined) throw new Error('the browser holds no session cookie');
  return sessionIdInCookie(app, sealed);
}

/** The session id a sealed session cookie value (as the browser holds it) carries, opened with the gateway's keys. */
export async function sessionIdInCookie(app: NestFastifyApplication, sealed: string): Promise<string> {
  const sid = await withSealer(app.get<Config>(CONFIG).session.secrets, (sealer) => sealer.decodeSecureSession(decodeURIComponent(sealed))?.get('sid'));
  if (typeof sid !== 'string') throw new Error('the session cookie carries no session id');
  return sid;
}

/** Runs `use` with secure-session under the cookie keys of `secrets`, as a gateway with those secrets has it. */
async function withSealer<T>(secrets: readonly string[], use: (sealer: FastifyInstance) => T): Promise<T> {
  const sealer = Fastify();
  await sealer.register(fastifySecureSession, { key: deriveKeys(secrets, 'cookie'), cookieName: 'sealer' });
  await sealer.ready();
  try {
    return use(sealer);
  } finally {
    await sealer.close();
  }
}

/** A session cookie value carrying `sid`, sealed for real under the keys of `secrets` (as a gateway with those secrets would). */
export async function sealSessionCookie(secrets: readonly string[], sid: string): Promise<string> {
  return withSealer(secrets, (sealer) => encodeURIComponent(sealer.encodeSecureSession(sealer.createSecureSession({ sid }))));
}
