import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { BrowserClient } from '../support/browser.js';
import { runGatewayToExit } from '../support/gateway-process.js';
import { sessionIdOf } from '../support/gateway-state.js';
import { addressList, startRedisCluster, type RunningRedisCluster } from '../support/redis.js';
import { answerOf, startRogueStack, type RogueStack, type TokenContext } from '../support/rogue-op.js';
import { startStack, type Stack } from '../support/stack.js';
import { testEnvironment } from '../support/test-env.js';

const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/**
 * The gateway on a real 3-master Redis Cluster: a session's keys share the slot its cookie names,
 * and the sessions of a user or of a provider sid are found across the cluster.
 */
describe('sessions on a 3-master Redis Cluster', () => {
  let cluster: RunningRedisCluster;

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
  }, 60_000);
  afterAll(async () => {
    await cluster.close();
  });

  /** How many times each command ran on the masters so far (INFO commandstats, summed). */
  async function commandCounts(): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for (const master of cluster.masters) {
      const client = new Redis(master.port, '127.0.0.1', { maxRetriesPerRequest: 0 });
      try {
        const info = await client.info('commandstats');
        for (const [, name, calls] of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) counts.set(name ?? '', (counts.get(name ?? '') ?? 0) + Number(calls));
      } finally {
        client.disconnect();
      }
    }
    return counts;
  }

  it('passes the store round trip of node dist/main.js --check-config (its probe session carries a slot tag too)', async () => {
    const result = await runGatewayToExit(testEnvironment({ SESSION_STORE: 'redis', REDIS_CLUSTER_NODES: addressList(cluster.masters) }), ['--check-config']);
    expect(result.stdout).toMatch(/^ {2}ok {4}session store +redis store: write, read and delete of a probe session succeeded$/m);
    expect(result.stdout).toContain('sessions   redis cluster 127.0.0.1:');
  });

  describe('with the real provider and upstream', () => {
    let stack: Stack;

    beforeAll(async () => {
      stack = await startStack({ SESSION_STORE: 'redis', REDIS_CLUSTER_NODES: addressList(cluster.masters), REDIS_KEY_PREFIX: 'bff-real:' });
    }, 60_000);
    afterAll(async () => {
      await stack.stop();
    });

    const api = (browser: BrowserClient): Promise<Response> => browser.request(`${stack.gateway.url}/api/whoami`, { headers: { 'x-csrf': '1' } });
    const me = async (browser: BrowserClient): Promise<number> => (await browser.request(`${stack.gateway.url}/auth/me`)).status;

    it('signs in, proxies /api with one store read, and signs out', async () => {
      const browser = await stack.signedIn('alice');
      // the sealed cookie names the slot: the session id ends with its tag
      expect(await sessionIdOf(stack.gateway.app, browser, stack.gateway.url)).toMatch(/^[A-Za-z0-9_-]{43}\.[0-9a-f]{64}$/);

      const before = await commandCounts();
      const res = await api(browser);
      const after = await commandCounts();
      expect(res.status).toBe(200);
      expect(((await res.json()) as { sub: string }).sub).toBe('alice');
      const ran = (name: string): number => (after.get(name) ?? 0) - (before.get(name) ?? 0);
      expect({ hgetall: ran('hgetall'), smembers: ran('smembers') }).toEqual({ hgetall: 1, smembers: 0 });

      const logout = await answerOf(await browser.request(`${stack.gateway.url}/auth/logout`, { method: 'POST', headers: { 'x-csrf': '1', accept: 'application/json' } }));
      expect(logout.status).toBe(200);
      expect(await me(browser)).toBe(401);
      expect((await api(browser)).status).toBe(401);
    });

    it('ends the session when the user signs out at the provider (its back-channel logout token carries sid)', async () => {
      const browser = await stack.signedIn('carol');
      const bystander = await stack.signedIn('dave');
      const page = await browser.navigate(`${stack.op.issuer}/session/end?client_id=${stack.op.clientId}`);
      await browser.confirmProviderLogout(page.response);
      expect(await me(browser)).toBe(401);
      expect(await me(bystander)).toBe(200);
    });
  });

  describe('back-channel logout tokens that carry only sub, or only sid', () => {
    let stack: RogueStack;

    beforeAll(async () => {
      stack = await startRogueStack({ SESSION_STORE: 'redis', REDIS_CLUSTER_NODES: addressList(cluster.masters), REDIS_KEY_PREFIX: 'bff-rogue:' });
    }, 60_000);
    afterAll(async () => {
      await stack.stop();
    });

    /** A session through the rogue provider whose ID token carried `sub` and `sid`, and the rogue's signing tools. */
    async function signIn(sub: string, sid = randomBytes(8).toString('hex')): Promise<{ browser: BrowserClient; tokens: TokenContext }> {
      const exchanges: TokenContext[] = [];
      stack.rogue.scenario = (ctx) => {
        exchanges.push(ctx);
        return { claims: { sub, sid } };
      };
      const { browser, callback } = await stack.startLogin();
      const outcome = await stack.finishLogin(browser, callback);
      expect(outcome.me).toMatchObject({ status: 200, json: { sub } });
      const [tokens] = exchanges;
      if (tokens === undefined) throw new Error('the rogue provider answered no code exchange');
      return { browser, tokens };
    }

    async function postLogout(tokens: TokenContext, claims: Record<string, unknown>): Promise<number> {
      const now = Math.floor(Date.now() / 1000);
      const token = await tokens.sign({ iss: stack.rogue.issuer, aud: stack.rogue.clientId, iat: now, exp: now + 120, jti: randomUUID(), events: { [BACKCHANNEL_LOGOUT_EVENT]: {} }, ...claims });
      const res = await fetch(`${stack.gateway.url}/auth/backchannel-logout`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ logout_token: token }) });
      return res.status;
    }

    const me = async (browser: BrowserClient): Promise<number> => (await browser.request(`${stack.gateway.url}/auth/me`, { headers: { accept: 'application/json' } })).status;

    it('ends every session of the user named by sub, and no one else\'s', async () => {
      const laptop = await signIn('ivy');
      const phone = await signIn('ivy');
      const bystander = await signIn('jack');

      expect(await postLogout(laptop.tokens, { sub: 'ivy' })).toBe(200);
      expect(await me(laptop.browser)).toBe(401);
      expect(await me(phone.browser)).toBe(401);
      expect(await me(bystander.browser)).toBe(200);
    });

    it('ends the sessions of the provider sid, found without the sub that names their slot', async () => {
      const sid = randomBytes(8).toString('hex');
      const ended = await signIn('kate', sid);
      const sameUserOtherSid = await signIn('kate');

      expect(await postLogout(ended.tokens, { sid })).toBe(200);
      expect(await me(ended.browser)).toBe(401);
      expect(await me(sameUserOtherSid.browser)).toBe(200);
    });
  });
});
