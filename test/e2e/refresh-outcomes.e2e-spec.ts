import type { BrowserClient } from '../support/browser.js';
import { startBehaviourUpstream, type TestUpstream } from '../support/fault-upstreams.js';
import { sessionOf } from '../support/gateway-state.js';
import { answerOf, startRogueStack, type Answer, type RefreshScenario, type RogueStack } from '../support/rogue-op.js';
import { eventually } from '../support/wait.js';

/**
 * Every kind of token-endpoint answer to a refresh, from the rogue provider, through a real gateway:
 * what /api answers, whether the session survives, and how often the provider is called. The code
 * exchange issues 300 s access tokens and TOKEN_REFRESH_SKEW_S is 600, so every /api call needs a
 * refresh until one succeeds with a longer token. Each test gets its own gateway: the back-off is
 * provider-wide per replica.
 */
describe('refresh outcomes against a misbehaving provider', () => {
  let upstream: TestUpstream;
  let stack: RogueStack;
  let browser: BrowserClient;

  beforeAll(async () => {
    upstream = await startBehaviourUpstream();
  });
  afterAll(async () => {
    await upstream.close();
  });
  beforeEach(async () => {
    stack = await startRogueStack({ UPSTREAM_URL: upstream.url, TOKEN_REFRESH_SKEW_S: '600' });
    const login = await stack.startLogin();
    const outcome = await stack.finishLogin(login.browser, login.callback);
    expect(outcome.me.status).toBe(200);
    browser = login.browser;
  });
  afterEach(async () => {
    expect(stack.rogue.failures).toEqual([]);
    await stack.stop();
  });

  const api = async (): Promise<Answer> => answerOf(await browser.request(`${stack.gateway.url}/api/whoami`, { headers: { 'x-csrf': '1' } }));
  const me = async (): Promise<Answer> => answerOf(await browser.request(`${stack.gateway.url}/auth/me`, { headers: { accept: 'application/json' } }));
  const answering = (status: number, body: string, contentType = 'application/json', headers: Record<string, string> = {}): RefreshScenario => () => ({ http: { status, body, contentType, headers } });
  /** A refresh that works and lasts an hour (no further refresh within the skew). */
  const lasting: RefreshScenario = () => ({ response: { expires_in: 3600, id_token: undefined } });

  async function expectKept(status: number, code: string): Promise<Answer> {
    const answer = await api();
    expect(answer).toMatchObject({ status, problem: { code } });
    expect((await me()).status).toBe(200);
    return answer;
  }

  async function expectEnded(): Promise<void> {
    expect(await api()).toMatchObject({ status: 401, problem: { code: 'session_expired' } });
    expect(await me()).toMatchObject({ status: 401, problem: { code: 'session_required' } });
  }

  it('answers a 429 slow_down with 503 and the provider\'s Retry-After and keeps the session (a JSON 4xx used to sign the user out)', async () => {
    stack.rogue.refreshScenario = answering(429, '{"error":"slow_down"}', 'application/json', { 'retry-after': '7' });
    const answer = await expectKept(503, 'provider_unavailable');
    expect(answer.retryAfter).toBe('7');
  });

  it('answers a 503 from the provider with 503 provider_unavailable and keeps the session', async () => {
    stack.rogue.refreshScenario = answering(503, '<h1>maintenance</h1>', 'text/html');
    const answer = await expectKept(503, 'provider_unavailable');
    expect(answer.retryAfter).toBe('1');
  });

  it('answers a WAF\'s HTML 403 with 503 provider_unavailable and keeps the session', async () => {
    stack.rogue.refreshScenario = answering(403, '<html>Request blocked</html>', 'text/html');
    await expectKept(503, 'provider_unavailable');
  });

  it('ends the session on an empty 400 (glewlwyd\'s answer to a revoked refresh token; it used to count as an outage)', async () => {
    stack.rogue.refreshScenario = answering(400, '', 'text/plain');
    await expectEnded();
  });

  it('ends the session on invalid_grant', async () => {
    stack.rogue.refreshScenario = answering(400, '{"error":"invalid_grant"}');
    await expectEnded();
  });

  it('ends the session on a 403 carrying an OAuth error', async () => {
    stack.rogue.refreshScenario = answering(403, '{"error":"invalid_code"}');
    await expectEnded();
  });

  it('answers 401 invalid_client with 502 client_authentication_failed, keeps the session and logs it at error', async () => {
    stack.rogue.refreshScenario = answering(401, '{"error":"invalid_client"}');
    await expectKept(502, 'client_authentication_failed');
    const logged = stack.gateway.logLines().filter((line) => line['code'] === 'client_authentication_failed' && line['level'] === 50);
    expect(logged.length).toBeGreaterThan(0);
  });

  it('answers a 200 that is not a token response with 502 token_response_invalid and keeps the session', async () => {
    stack.rogue.refreshScenario = answering(200, '<html>Welcome</html>', 'text/html');
    await expectKept(502, 'token_response_invalid');
  });

  it('backs off after an outage: 10 calls during the wait reach the provider once, and the first success after it resets', async () => {
    stack.rogue.refreshScenario = answering(503, '');
    // held: however slow the machine, the 10 calls fall inside the first 1 s wait
    stack.gateway.clock.hold();
    const answers: Answer[] = [];
    for (let i = 0; i < 10; i++) answers.push(await api());
    expect(answers.map((a) => a.status)).toEqual(Array.from({ length: 10 }, () => 503));
    expect(stack.rogue.refreshCount).toBe(1);
    stack.rogue.refreshScenario = lasting;
    stack.gateway.clock.advance(999);
    expect((await api()).status).toBe(503);
    expect(stack.rogue.refreshCount).toBe(1);
    stack.gateway.clock.advance(2);
    expect((await api()).status).toBe(200);
    expect(stack.rogue.refreshCount).toBe(2);
    expect((await api()).status).toBe(200);
    expect(stack.rogue.refreshCount).toBe(2);
  });

  it('logs every refresh attempt once, without tokens: failures at warn with their outcome, successes at debug', async () => {
    stack.rogue.refreshScenario = answering(503, '');
    await api();
    stack.rogue.refreshScenario = lasting;
    await eventually(async () => ((await api()).status === 200 ? true : undefined), 5_000, '/api 200 after the back-off');
    const lines = stack.gateway.logLines();
    const failed = lines.filter((line) => line['event'] === 'token_refresh_failed');
    const succeeded = lines.filter((line) => line['event'] === 'token_refresh_succeeded');
    expect(failed).toEqual([expect.objectContaining({ level: 40, outcome: 'provider_unavailable', sidHash: expect.stringMatching(/^[0-9a-f]{8}$/) })]);
    expect(succeeded).toEqual([expect.objectContaining({ level: 20 })]);
    const { record } = await sessionOf(stack.gateway.app, browser, stack.gateway.url);
    const text = stack.gateway.logText();
    for (const token of [record.tokens.accessToken, record.tokens.refreshToken ?? '', record.tokens.idToken]) expect(text).not.toContain(token);
  });

  it('ends the session when a refreshed ID token names another sub (OIDC Core §12.2)', async () => {
    stack.rogue.refreshScenario = () => ({ claims: { sub: 'someone-else' } });
    await expectEnded();
  });

  it('answers 502 and stores nothing when a refreshed ID token\'s signature does not verify', async () => {
    const before = (await sessionOf(stack.gateway.app, browser, stack.gateway.url)).record;
    stack.rogue.refreshScenario = () => ({ key: 'unpublished', response: { expires_in: 3600 } });
    await expectKept(502, 'token_response_invalid');
    const after = (await sessionOf(stack.gateway.app, browser, stack.gateway.url)).record;
    expect({ tokens: after.tokens, claims: after.claims, version: after.version }).toEqual({ tokens: before.tokens, claims: before.claims, version: before.version });
  });

  it('replaces the session\'s claims with those of a valid refreshed ID token', async () => {
    stack.rogue.refreshScenario = () => ({ claims: { name: 'Renamed User' }, response: { expires_in: 3600 } });
    expect((await api()).status).toBe(200);
    expect((await me()).json).toMatchObject({ sub: 'rogue-user', claims: { name: 'Renamed User' } });
  });
});
