import { Redis } from 'ioredis';
import type { BrowserClient } from '../support/browser.js';
import { startBehaviourUpstream, type TestUpstream } from '../support/fault-upstreams.js';
import { sessionOf } from '../support/gateway-state.js';
import { startRedis, type RunningRedis } from '../support/redis.js';
import { answerOf, startRogueStack, type Answer, type RogueStack, type ScenarioResult } from '../support/rogue-op.js';
import { eventually } from '../support/wait.js';

/** A promise the test resolves: the rogue provider holds its refresh answer until then. */
function barrier(): { wait: Promise<void>; release: () => void } {
  let release = (): void => undefined;
  const wait = new Promise<void>((resolve) => (release = resolve));
  return { wait, release };
}

/**
 * Refreshes that race another writer, ordered with barriers: the rogue provider holds its answer
 * while the test plays the other replica (a refresher whose lock outlived ours) or stops Redis.
 */
describe('refresh races', () => {
  let upstream: TestUpstream;
  let redis: RunningRedis;
  let stack: RogueStack;
  let browser: BrowserClient;

  beforeAll(async () => {
    upstream = await startBehaviourUpstream();
    redis = await startRedis();
  });
  afterAll(async () => {
    await upstream.close();
    await redis.close();
  });
  beforeEach(async () => {
    stack = await startRogueStack({ UPSTREAM_URL: upstream.url, TOKEN_REFRESH_SKEW_S: '600', SESSION_STORE: 'redis', REDIS_URL: redis.url });
    const login = await stack.startLogin();
    expect((await stack.finishLogin(login.browser, login.callback)).me.status).toBe(200);
    browser = login.browser;
  });
  afterEach(async () => {
    redis.thaw();
    expect(stack.rogue.failures).toEqual([]);
    await stack.stop();
  });

  const api = async (): Promise<Answer> => answerOf(await browser.request(`${stack.gateway.url}/api/whoami`, { headers: { 'x-csrf': '1' } }));
  const lastBearer = (): string => String(upstream.seen.at(-1)?.headers.authorization ?? '');

  /** Holds the provider's refresh answer at a barrier; resolves once the gateway's request is there. */
  async function holdRefresh(answer: ScenarioResult): Promise<{ release: () => void }> {
    const gate = barrier();
    const before = stack.rogue.refreshCount;
    stack.rogue.refreshScenario = async () => {
      await gate.wait;
      return answer;
    };
    await eventually(() => Promise.resolve(stack.rogue.refreshCount > before ? true : undefined), 5_000, 'refresh at the provider');
    return { release: gate.release };
  }

  /** What another replica stores while this one's refresh is at the provider. */
  async function otherReplicaRefreshes(): Promise<string> {
    const { store, record } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    const tokens = { ...record.tokens, accessToken: 'from-the-other-replica', refreshToken: 'rotated-by-the-other-replica', accessTokenExpiresAt: Date.now() + 3_600_000 };
    expect(await store.replaceTokens(record.id, record.version, tokens, record.claims)).toBe('replaced');
    return tokens.accessToken;
  }

  it('holds the refresh lock for 2 x OIDC_DISCOVERY_TIMEOUT_S + 5 s while the provider is asked', async () => {
    expect(stack.gateway.config.oidc.httpTimeoutS).toBe(2);
    const pending = api();
    const held = await holdRefresh({ response: { expires_in: 3600, id_token: undefined } });
    const inspect = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    try {
      const locks = await inspect.keys('bff:lock:*');
      expect(locks).toHaveLength(1);
      const ttl = await inspect.pttl(locks[0] ?? '');
      expect(ttl).toBeGreaterThan(7_000);
      expect(ttl).toBeLessThanOrEqual(9_000);
    } finally {
      inspect.disconnect();
      held.release();
    }
    expect((await pending).status).toBe(200);
  });

  it('uses the newer tokens another replica stored when its own compare-and-set loses', async () => {
    const pending = api();
    const held = await holdRefresh({ response: { access_token: 'from-this-replica', expires_in: 3600, id_token: undefined } });
    const theirs = await otherReplicaRefreshes();
    held.release();
    expect((await pending).status).toBe(200);
    expect(lastBearer()).toBe(`Bearer ${theirs}`);
    const { record } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    expect(record.tokens).toMatchObject({ accessToken: theirs, refreshToken: 'rotated-by-the-other-replica' });
  });

  it('keeps the session when invalid_grant answers a refresh token another replica already rotated, and uses its tokens', async () => {
    const pending = api();
    const held = await holdRefresh({ http: { status: 400, body: '{"error":"invalid_grant"}' } });
    const theirs = await otherReplicaRefreshes();
    held.release();
    expect((await pending).status).toBe(200);
    expect(lastBearer()).toBe(`Bearer ${theirs}`);
    expect((await api()).status).toBe(200);
  });

  it('keeps rotated tokens the store could not take, answers 503 meanwhile, and writes them on the next request', async () => {
    const rotated = { access_token: 'after-the-outage', refresh_token: 'rotated-during-the-outage', expires_in: 3600, id_token: undefined };
    const pending = api();
    const held = await holdRefresh({ response: rotated });
    redis.freeze();
    held.release();
    expect(await pending).toMatchObject({ status: 503, problem: { code: 'session_store_unavailable' } });
    redis.thaw();
    const refreshesBefore = stack.rogue.refreshCount;
    await eventually(async () => ((await api()).status === 200 ? true : undefined), 10_000, '/api 200 once Redis is back');
    expect(lastBearer()).toBe('Bearer after-the-outage');
    expect(stack.rogue.refreshCount).toBe(refreshesBefore);
    const { record } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    expect(record.tokens).toMatchObject({ accessToken: 'after-the-outage', refreshToken: 'rotated-during-the-outage' });
  });
});
