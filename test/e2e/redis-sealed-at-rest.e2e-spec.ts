import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Environment } from '../../src/config/config.js';
import { sessionKey } from '../../src/session/session-cookie.js';
import { SESSION_STORE, type SessionRecord, type SessionStore } from '../../src/session/session-store.js';
import { BrowserClient } from '../support/browser.js';
import { startGateway, type RunningGateway } from '../support/gateway.js';
import { sessionOf } from '../support/gateway-state.js';
import { startOp, type RunningOp } from '../support/op.js';
import { freePort } from '../support/ports.js';
import { startRedis, type RunningRedis } from '../support/redis.js';
import { TEST_SESSION_SECRET } from '../support/test-env.js';
import { startUpstream, type RunningUpstream } from '../support/upstream.js';
import { waitUntilReady } from '../support/wait.js';

const NEW_SECRET = 'rotated-session-secret-0123456789abcdef';

/** Every key in Redis with everything it holds, as one searchable text per key. */
async function dumpRedis(redis: Redis): Promise<Map<string, string>> {
  const dump = new Map<string, string>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) dump.set(key, await contentOf(redis, key));
  } while (cursor !== '0');
  return dump;
}

async function contentOf(redis: Redis, key: string): Promise<string> {
  const type = await redis.type(key);
  switch (type) {
    case 'string':
      return (await redis.get(key)) ?? '';
    case 'hash':
      return Object.entries(await redis.hgetall(key)).flat().join('\n');
    case 'set':
      return (await redis.smembers(key)).join('\n');
    case 'list':
      return (await redis.lrange(key, 0, -1)).join('\n');
    case 'zset':
      return (await redis.zrange(key, '0', '-1')).join('\n');
    default:
      throw new Error(`unexpected Redis type ${type} at ${key}`);
  }
}

/** Every string a dump must not show: tokens and each of their dot-separated parts, claim values, ids. */
function secretsOf(record: SessionRecord): Map<string, string> {
  const secrets = new Map<string, string>();
  const add = (what: string, value: string | undefined): void => {
    if (value !== undefined && value !== '') secrets.set(value, what);
  };
  for (const [name, token] of [
    ['access token', record.tokens.accessToken],
    ['refresh token', record.tokens.refreshToken],
    ['ID token', record.tokens.idToken],
    ...Object.entries(record.tokens.routes ?? {}).map(([prefix, token]) => [`route token of ${prefix}`, token.accessToken] as const),
  ] as const) {
    add(name, token);
    for (const [i, part] of (token ?? '').split('.').entries()) add(`${name} part ${i}`, part);
  }
  const addClaims = (path: string, value: unknown): void => {
    if (typeof value === 'string') add(`claim ${path}`, value);
    else if (Array.isArray(value)) value.forEach((item, i) => addClaims(`${path}[${i}]`, item));
    else if (typeof value === 'object' && value !== null) for (const [key, item] of Object.entries(value)) addClaims(`${path}.${key}`, item);
  };
  addClaims('', record.claims);
  add('sub', record.sub);
  add('provider sid', record.providerSid);
  add('logout value', record.logoutValue);
  return secrets;
}

describe('sessions sealed at rest in Redis', () => {
  let redis: RunningRedis;
  let op: RunningOp;
  let upstream: RunningUpstream;
  let gateway: RunningGateway;
  let port: number;
  let inspect: Redis;

  function startOn(env: Environment = {}): Promise<RunningGateway> {
    return startGateway({
      PORT: String(port),
      OIDC_ISSUER: op.issuer,
      OIDC_CLIENT_ID: op.clientId,
      OIDC_CLIENT_SECRET: op.clientSecret,
      // a route with its own resource: its token is kept in the record too
      PROXY_ROUTES: JSON.stringify([
        { prefix: '/api/own', target: upstream.url, resource: op.audience, scope: 'api' },
        { prefix: '/api', target: upstream.url },
      ]),
      SESSION_STORE: 'redis',
      REDIS_URL: redis.url,
      ...env,
    });
  }

  async function restartWith(env: Environment): Promise<void> {
    await gateway.close();
    gateway = await startOn(env);
    await waitUntilReady(gateway.url);
  }

  async function signIn(login: string): Promise<{ browser: BrowserClient; record: SessionRecord }> {
    const browser = new BrowserClient();
    await browser.signIn(gateway.url, { login });
    return { browser, record: (await sessionOf(gateway.app, browser, gateway.url)).record };
  }

  const store = (): SessionStore => gateway.app.get<SessionStore>(SESSION_STORE);
  const me = async (browser: BrowserClient): Promise<number> => (await browser.request(`${gateway.url}/auth/me`)).status;

  beforeAll(async () => {
    redis = await startRedis();
    port = await freePort();
    op = await startOp({ gatewayUrl: `http://127.0.0.1:${port}` });
    upstream = await startUpstream(op);
    gateway = await startOn();
    await waitUntilReady(gateway.url);
    inspect = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    inspect.disconnect();
    await gateway.close();
    await upstream.close();
    await op.stop();
    await redis.close();
  });

  it('shows no token, token part, claim value, user identifier or logout value in any Redis key or value', async () => {
    const { browser } = await signIn('alice');
    expect((await browser.request(`${gateway.url}/api/whoami`, { headers: { 'x-csrf': '1' } })).status).toBe(200);
    expect((await browser.request(`${gateway.url}/api/own/whoami`, { headers: { 'x-csrf': '1' } })).status).toBe(200);
    const { record } = await sessionOf(gateway.app, browser, gateway.url);
    expect(Object.keys(record.tokens.routes ?? {})).toEqual(['/api/own']);
    // the dump must hold what makes this test meaningful: a refresh token, a provider sid, claims
    expect(record.tokens.refreshToken).toEqual(expect.any(String));
    expect(record.providerSid).toEqual(expect.any(String));
    expect(record.claims).toMatchObject({ name: 'Alice Example', email: 'alice@example.com' });

    const dump = await dumpRedis(inspect);
    expect([...dump.keys()].some((key) => key.includes(record.id))).toBe(true);
    const found: string[] = [];
    for (const [secret, what] of secretsOf(record)) {
      for (const [key, content] of dump) {
        if (key.includes(secret)) found.push(`${what} in the key ${key}`);
        if (content.includes(secret)) found.push(`${what} in the value of ${key}`);
      }
    }
    expect(found).toEqual([]);
  });

  it('does not open a record copied under another session key, even with the session key rewritten inside it', async () => {
    const { record } = await signIn('bob');
    const otherId = sessionKey(randomBytes(32).toString('base64url'));
    const [key] = [...(await dumpRedis(inspect)).keys()].filter((name) => name.includes(record.id) && !name.includes('lock'));
    if (key === undefined) throw new Error('no Redis key names the session');
    const copy = key.replace(record.id, otherId);
    const rewrite = (value: string): string => value.replaceAll(record.id, otherId);
    const type = await inspect.type(key);
    if (type === 'string') await inspect.set(copy, rewrite((await inspect.get(key)) ?? ''));
    else if (type === 'hash') await inspect.hset(copy, Object.fromEntries(Object.entries(await inspect.hgetall(key)).map(([field, value]) => [field, rewrite(value)])));
    else throw new Error(`unexpected record type ${type}`);
    await inspect.pexpire(copy, 60_000);
    const restoredId = sessionKey(randomBytes(32).toString('base64url'));
    await inspect.restore(key.replace(record.id, restoredId), 60_000, await dumpBuffer(inspect, key));

    expect(await store().get(otherId)).toBeUndefined();
    expect(await store().get(restoredId)).toBeUndefined();
    expect(await store().get(record.id)).toStrictEqual(record);
  });

  it('opens records sealed under the old secret after SESSION_SECRET=new,old, and back-channel logout still finds them', async () => {
    const bySub = await signIn('carl');
    const bySid = await signIn('dora');
    await restartWith({ SESSION_SECRET: `${NEW_SECRET},${TEST_SESSION_SECRET}` });
    const fresh = await signIn('carl');

    expect(await me(bySub.browser)).toBe(200);
    expect(await me(bySid.browser)).toBe(200);
    // the provider's back-channel logout carries its sid: found under the old secret's index
    const page = await bySid.browser.navigate(`${op.issuer}/session/end?client_id=${op.clientId}`);
    await bySid.browser.confirmProviderLogout(page.response);
    expect(await me(bySid.browser)).toBe(401);
    // a logout token carrying only sub ends the sessions indexed under either secret
    expect(await store().deleteBySubject('carl')).toBe(2);
    expect(await me(bySub.browser)).toBe(401);
    expect(await me(fresh.browser)).toBe(401);
    await restartWith({});
  });
});

async function dumpBuffer(redis: Redis, key: string): Promise<Buffer> {
  const dumped = await redis.dumpBuffer(key);
  if (dumped === null) throw new Error(`${key} vanished`);
  return dumped;
}
