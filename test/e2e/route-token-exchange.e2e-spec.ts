import { startBehaviourUpstream, type TestUpstream } from '../support/fault-upstreams.js';
import { correctIdToken, startRogueStack, type RogueStack } from '../support/rogue-op.js';
import { ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT } from '../support/rogue-token-exchange.js';
import type { BrowserClient } from '../support/browser.js';

const REPORTS = 'https://reports.example';

/**
 * OAuth 2.0 Token Exchange (RFC 8693) for a route with `exchange: true`, against the misbehaving
 * provider, which checks the subject token it issued, its type, the audience and the client.
 */
describe('per-route token exchange', () => {
  let stack: RogueStack;
  let upstream: TestUpstream;

  beforeAll(async () => {
    upstream = await startBehaviourUpstream();
    stack = await startRogueStack({
      UPSTREAM_URL: undefined,
      PROXY_ROUTES: JSON.stringify([
        { prefix: '/api/reports', target: upstream.url, exchange: true, audience: REPORTS },
        { prefix: '/api/elsewhere', target: upstream.url, exchange: true, audience: 'https://unregistered.example' },
        { prefix: '/api', target: upstream.url },
      ]),
      TOKEN_REFRESH_SKEW_S: '0',
    });
  });
  afterAll(async () => {
    await stack.stop();
    await upstream.close();
  });
  beforeEach(() => {
    stack.rogue.reset();
    stack.rogue.tokenExchange.targets.add(REPORTS);
  });
  afterEach(() => stack.gateway.clock.reset());

  async function signIn(): Promise<BrowserClient> {
    stack.rogue.scenario = correctIdToken;
    const { browser, callback } = await stack.startLogin();
    const outcome = await stack.finishLogin(browser, callback);
    expect(outcome.callback.status).toBe(302);
    return browser;
  }

  async function call(browser: BrowserClient, path: string): Promise<{ status: number; code: string | undefined; authorization: string | undefined }> {
    const before = upstream.seen.length;
    const response = await browser.request(`${stack.gateway.url}${path}`, { headers: { 'x-csrf': '1' } });
    const body = await response.text();
    return { status: response.status, code: /"code":"([a-z_]+)"/.exec(body)?.[1], authorization: upstream.seen.slice(before)[0]?.headers.authorization };
  }

  const exchanges = (): Array<Readonly<Record<string, string>>> => stack.rogue.tokenRequests.filter((r) => r.params['grant_type'] === TOKEN_EXCHANGE_GRANT).map((r) => r.params);

  it('warns once at start-up that discovery does not list the token-exchange grant, and serves anyway', () => {
    const warnings = stack.gateway.logLines().filter((line) => line['event'] === 'route_grant_unannounced');
    expect(warnings).toEqual([expect.objectContaining({ grant: TOKEN_EXCHANGE_GRANT, routes: ['/api/elsewhere', '/api/reports'] })]);
  });

  it('exchanges the session\'s access token for one for the route\'s audience, once, with client authentication', async () => {
    const browser = await signIn();
    const sessionToken = (await call(browser, '/api/me')).authorization;
    const answers = await Promise.all([call(browser, '/api/reports/1'), call(browser, '/api/reports/2'), call(browser, '/api/reports/3')]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    const routeToken = answers[0]?.authorization;
    expect(new Set(answers.map((a) => a.authorization))).toEqual(new Set([routeToken]));
    expect(routeToken).not.toBe(sessionToken);
    expect(stack.rogue.tokenExchange.exchanged.get((routeToken ?? '').replace(/^Bearer /, ''))).toBe(REPORTS);
    expect(exchanges()).toEqual([
      { grant_type: TOKEN_EXCHANGE_GRANT, subject_token: (sessionToken ?? '').replace(/^Bearer /, ''), subject_token_type: ACCESS_TOKEN_TYPE, requested_token_type: ACCESS_TOKEN_TYPE, audience: REPORTS },
    ]);
    expect(stack.rogue.tokenRequests.filter((r) => r.params['grant_type'] === TOKEN_EXCHANGE_GRANT).every((r) => r.clientAuthenticated)).toBe(true);
  });

  it('renews by refreshing the session first and exchanging its fresh access token again', async () => {
    const browser = await signIn();
    expect((await call(browser, '/api/reports/1')).status).toBe(200);
    const refreshesBefore = stack.rogue.refreshCount;
    stack.gateway.clock.advance(301_000);
    const renewed = await call(browser, '/api/reports/1');
    expect(renewed.status).toBe(200);
    expect(stack.rogue.refreshCount).toBe(refreshesBefore + 1);
    const [first, second] = exchanges();
    expect(second?.['subject_token']).not.toBe(first?.['subject_token']);
    // the subject of the second exchange is the refreshed session token the /api route now sends
    expect((await call(browser, '/api/me')).authorization).toBe(`Bearer ${second?.['subject_token'] ?? ''}`);
  });

  it('accepts token_type N_A and forwards the issued token', async () => {
    stack.rogue.tokenExchange.response = { token_type: 'N_A' };
    const browser = await signIn();
    const answer = await call(browser, '/api/reports/1');
    expect(answer.status).toBe(200);
    expect(answer.authorization).toMatch(/^Bearer /);
  });

  it('refuses an answer without issued_token_type as an invalid token response, forwarding nothing', async () => {
    stack.rogue.tokenExchange.response = { issued_token_type: undefined };
    const browser = await signIn();
    const answer = await call(browser, '/api/reports/1');
    expect([answer.status, answer.code, answer.authorization]).toEqual([502, 'token_response_invalid', undefined]);
  });

  it('answers 403 route_token_rejected when the provider refuses the audience, and keeps the session for other routes', async () => {
    const browser = await signIn();
    expect(await call(browser, '/api/elsewhere/1')).toMatchObject({ status: 403, code: 'route_token_rejected', authorization: undefined });
    expect(stack.rogue.tokenRequests.at(-1)?.outcome).toBe('invalid_target');
    expect((await call(browser, '/api/me')).status).toBe(200);
    expect((await call(browser, '/api/reports/1')).status).toBe(200);
  });
});
