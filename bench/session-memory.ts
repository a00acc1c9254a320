/**
 * Memory store footprint: RSS per session against the record's own bytes, with the demo provider's
 * real tokens. Signs in once through the built gateway (dist/, run in this process) and the real
 * oidc-provider, reads that session from the store, then fills a fresh memory store with N copies
 * whose every string is distinct (as N users' tokens are), and measures RSS after a full GC.
 *
 *   npm run build && node --expose-gc --import tsx bench/session-memory.ts [--sessions 100000]
 */
import { parseArgs } from 'node:util';
import fastifySecureSession from '@fastify/secure-session';
import Fastify from 'fastify';
import { BrowserClient } from '../test/support/browser.js';
import { startOp } from '../test/support/op.js';
import { freePort } from '../test/support/ports.js';
import { testEnvironment } from '../test/support/test-env.js';
import { waitUntilReady } from '../test/support/wait.js';
import { loadConfig } from '../src/config/config.js';
import { deriveKeys } from '../src/session/secret-keys.js';
import { MemorySessionStore } from '../src/session/memory-session-store.js';
import { sessionKey } from '../src/session/session-cookie.js';
import type { SessionRecord, SessionStore } from '../src/session/session-store.js';

/** The built gateway: Nest's injection needs the decorator metadata tsc emits (tsx does not). */
async function fromDist<T>(path: string): Promise<T> {
  return (await import(new URL(`../dist/${path}`, import.meta.url).href)) as T;
}

const MB = 1024 * 1024;

function collect(): void {
  const gc: unknown = Reflect.get(globalThis, 'gc');
  if (typeof gc !== 'function') throw new Error('run with node --expose-gc');
  for (let i = 0; i < 3; i++) Reflect.apply(gc, globalThis, []);
}

/** The same length, a different string: the last characters carry the copy's number. */
function distinct(value: string, n: number): string {
  // fixed width, so that no two copies end alike
  const tag = n.toString(36).padStart(6, '0');
  return value.length > tag.length + 4 ? `${value.slice(0, value.length - tag.length)}${tag}` : `${value}${tag}`;
}

/** A copy whose strings are flat and its own, as the ones parsed from a provider's answer are (a slice or a concatenation would share the original's characters). */
function copyOf(record: SessionRecord, n: number): SessionRecord {
  return JSON.parse(JSON.stringify(distinctCopy(record, n))) as SessionRecord;
}

function distinctCopy(record: SessionRecord, n: number): SessionRecord {
  return {
    ...record,
    id: distinct(record.id, n),
    sub: distinct(record.sub, n),
    logoutValue: distinct(record.logoutValue, n),
    providerSid: record.providerSid === undefined ? undefined : distinct(record.providerSid, n),
    claims: JSON.parse(JSON.stringify(record.claims).replaceAll(record.sub, distinct(record.sub, n))) as Record<string, unknown>,
    tokens: {
      ...record.tokens,
      accessToken: distinct(record.tokens.accessToken, n),
      refreshToken: record.tokens.refreshToken === undefined ? undefined : distinct(record.tokens.refreshToken, n),
      idToken: distinct(record.tokens.idToken, n),
    },
  };
}

async function demoSession(): Promise<SessionRecord> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const op = await startOp({ gatewayUrl: url });
  const config = loadConfig(testEnvironment({ PORT: String(port), PUBLIC_URL: url, OIDC_ISSUER: op.issuer, OIDC_CLIENT_ID: op.clientId, OIDC_CLIENT_SECRET: op.clientSecret, LOG_LEVEL: 'silent' }));
  const { createGateway } = await fromDist<typeof import('../src/gateway.js')>('gateway.js');
  const { SESSION_STORE } = await fromDist<typeof import('../src/session/session-store.js')>('session/session-store.js');
  const { app } = await createGateway(config);
  await app.listen({ port, host: '127.0.0.1' });
  try {
    await waitUntilReady(url);
    const browser = new BrowserClient();
    await browser.signIn(url, { login: 'alice' });
    const cookie = (await browser.cookies(url)).find((c) => c.name === config.session.cookie.name);
    if (cookie === undefined) throw new Error('the browser holds no session cookie');
    const sealed = decodeURIComponent(cookie.value);
    const opener = Fastify();
    await opener.register(fastifySecureSession, { key: deriveKeys(config.session.secrets, 'cookie'), cookieName: 'opener' });
    await opener.ready();
    const sid: unknown = opener.decodeSecureSession(sealed)?.get('sid');
    await opener.close();
    if (typeof sid !== 'string') throw new Error('no session id in the cookie');
    const record = await app.get<SessionStore>(SESSION_STORE).get(sessionKey(sid));
    if (record === undefined) throw new Error('no session in the store');
    return record;
  } finally {
    await app.close();
    await op.stop();
  }
}

const { values } = parseArgs({ options: { sessions: { type: 'string', default: '100000' } } });
const count = Number(values.sessions);
const record = await demoSession();
const recordBytes = Buffer.byteLength(JSON.stringify(record));
collect();
const before = process.memoryUsage();
const store = new MemorySessionStore(count * 2, { now: () => Date.now() });
// each copy is made as it is stored: what is measured is what the store keeps alive
for (let n = 0; n < count; n++) await store.create(copyOf(record, n));
collect();
const after = process.memoryUsage();
const perSession = (after.rss - before.rss) / count;
console.log(
  JSON.stringify({
    sessions: count,
    recordBytes,
    tokenBytes: { access: record.tokens.accessToken.length, refresh: record.tokens.refreshToken?.length ?? 0, id: record.tokens.idToken.length },
    rssBeforeMb: +(before.rss / MB).toFixed(1),
    rssAfterMb: +(after.rss / MB).toFixed(1),
    rssPerSessionBytes: Math.round(perSession),
    ratio: +(perSession / recordBytes).toFixed(2),
    heapUsedPerSessionBytes: Math.round((after.heapUsed - before.heapUsed) / count),
    sessionsStored: store.size(),
  }),
);
process.exit(0);
