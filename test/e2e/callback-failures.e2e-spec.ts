import { BrowserClient } from '../support/browser.js';
import { startGateway, type RunningGateway } from '../support/gateway.js';
import {
  answerOf,
  expectCleanLogs,
  expectRejectedWithoutSession,
  expectSignedIn,
  expectStillHealthy,
  startRogueOp,
  startRogueStack,
  TEST_CLIENT_ID,
  TEST_CLIENT_SECRET,
  type RogueOp,
  type RogueStack,
  type Scenario,
} from '../support/rogue-op.js';

/** RFC 6749 §2.3.1, written independently of the gateway's encoder. */
function basicAuthorization(id: string, secret: string): string {
  const encode = (value: string): string => encodeURIComponent(value).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${encode(id)}:${encode(secret)}`).toString('base64')}`;
}

/** Redeems `code` at the rogue's token endpoint directly, as someone other than the gateway. */
async function redeemDirectly(rogue: RogueOp, code: string, options: { verifier: string; secret: string; redirectUri: string }): Promise<Response> {
  return fetch(`${rogue.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuthorization(TEST_CLIENT_ID, options.secret) },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: options.redirectUri, code_verifier: options.verifier }),
  });
}

interface TokenEndpointFailure {
  readonly what: string;
  readonly scenario: Scenario;
  readonly status: number;
  readonly code: string;
  readonly retryAfter: string | null;
}

const tokenEndpointFailures: readonly TokenEndpointFailure[] = [
  { what: 'a token response without id_token', scenario: () => ({ response: { id_token: undefined } }), status: 502, code: 'token_response_invalid', retryAfter: null },
  { what: 'a token response without access_token', scenario: () => ({ response: { access_token: undefined } }), status: 502, code: 'token_response_invalid', retryAfter: null },
  { what: 'a token response whose token_type is not Bearer', scenario: () => ({ response: { token_type: 'N_A' } }), status: 502, code: 'token_response_invalid', retryAfter: null },
  {
    what: 'a 400 invalid_grant error',
    scenario: () => ({ http: { status: 400, body: '{"error":"invalid_grant","error_description":"code expired"}' } }),
    status: 400,
    code: 'login_code_rejected',
    retryAfter: null,
  },
  { what: 'a 500 server_error', scenario: () => ({ http: { status: 500, body: '{"error":"server_error"}' } }), status: 503, code: 'provider_unavailable', retryAfter: '5' },
  {
    what: 'a 503 HTML maintenance page',
    scenario: () => ({ http: { status: 503, body: '<h1>Down for maintenance</h1>', contentType: 'text/html' } }),
    status: 503,
    code: 'provider_unavailable',
    retryAfter: '5',
  },
  // the provider answered, just not with a token response: a retry cannot help, the code is used up
  {
    what: 'a 200 whose body is not JSON',
    scenario: () => ({ http: { status: 200, body: '<html>Welcome to the proxy</html>', contentType: 'text/html' } }),
    status: 502,
    code: 'token_response_invalid',
    retryAfter: null,
  },
  // the token-endpoint outcome table (oidc/token-outcome.ts), code-exchange side
  { what: 'an empty 400', scenario: () => ({ http: { status: 400, body: '', contentType: 'text/plain' } }), status: 400, code: 'login_code_rejected', retryAfter: null },
  {
    what: 'a 403 carrying an OAuth error (glewlwyd\'s invalid_code)',
    scenario: () => ({ http: { status: 403, body: '{"error":"invalid_code"}' } }),
    status: 400,
    code: 'login_code_rejected',
    retryAfter: null,
  },
  {
    what: 'a WAF\'s HTML 403',
    scenario: () => ({ http: { status: 403, body: '<html>Request blocked</html>', contentType: 'text/html' } }),
    status: 503,
    code: 'provider_unavailable',
    retryAfter: '5',
  },
  {
    what: 'a 429 slow_down with Retry-After',
    scenario: () => ({ http: { status: 429, body: '{"error":"slow_down"}', headers: { 'retry-after': '12' } } }),
    status: 503,
    code: 'provider_unavailable',
    retryAfter: '12',
  },
  {
    what: 'a 400 temporarily_unavailable',
    scenario: () => ({ http: { status: 400, body: '{"error":"temporarily_unavailable"}' } }),
    status: 503,
    code: 'provider_unavailable',
    retryAfter: '5',
  },
  // the gateway's own credentials were refused: an operator's problem, not the user's
  {
    what: 'a 401 invalid_client error',
    scenario: () => ({ http: { status: 401, body: '{"error":"invalid_client"}' } }),
    status: 502,
    code: 'client_authentication_failed',
    retryAfter: null,
  },
];

describe('the callback against a rogue provider (OpenID RP conformance)', () => {
  let stack: RogueStack;
  beforeAll(async () => {
    stack = await startRogueStack();
  });
  afterAll(async () => {
    await stack.stop();
  });
  beforeEach(() => {
    stack.rogue.reset();
  });
  afterEach(() => {
    expect(stack.rogue.failures).toEqual([]);
  });

  describe('code exchange', () => {
    it('sends response_type=code with PKCE S256, then exchanges the code with client_secret_basic, the matching verifier and the exact redirect_uri', async () => {
      const { browser, callback } = await stack.startLogin();
      const redirectUri = `${stack.gateway.url}/auth/callback`;
      const [authorization] = stack.rogue.authorizationRequests;
      expect(authorization?.params).toMatchObject({ response_type: 'code', client_id: TEST_CLIENT_ID, redirect_uri: redirectUri, code_challenge_method: 'S256' });
      expectSignedIn(await stack.finishLogin(browser, callback));
      expect(stack.rogue.tokenRequests).toEqual([
        {
          // no client_id or client_secret in the body: the credentials travel in the Basic header only
          params: { grant_type: 'authorization_code', code: authorization?.code, redirect_uri: redirectUri, code_verifier: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) },
          clientAuthentication: 'client_secret_basic',
          clientAuthenticated: true,
          pkceValid: true,
          outcome: 'issued',
        },
      ]);
    });

    it('refuses a wrong code_verifier with invalid_grant and a wrong secret with invalid_client (self-check of the rogue provider)', async () => {
      const redirectUri = `${stack.gateway.url}/auth/callback`;
      const first = (await stack.startLogin()).callback.searchParams.get('code') ?? '';
      const wrongSecret = await redeemDirectly(stack.rogue, first, { verifier: 'v'.repeat(43), secret: 'not-the-secret', redirectUri });
      expect({ status: wrongSecret.status, body: await wrongSecret.json() }).toEqual({ status: 401, body: { error: 'invalid_client' } });
      const wrongVerifier = await redeemDirectly(stack.rogue, first, { verifier: 'v'.repeat(43), secret: TEST_CLIENT_SECRET, redirectUri });
      expect({ status: wrongVerifier.status, body: await wrongVerifier.json() }).toEqual({ status: 400, body: { error: 'invalid_grant' } });
      expect(stack.rogue.tokenRequests.map((request) => [request.clientAuthenticated, request.pkceValid, request.outcome])).toEqual([
        [false, undefined, 'invalid_client'],
        [true, false, 'invalid_grant'],
      ]);
    });

    it('answers 400 login_code_rejected when the provider refuses the code with invalid_grant (burnt by an earlier redemption attempt)', async () => {
      const { browser, callback } = await stack.startLogin();
      await redeemDirectly(stack.rogue, callback.searchParams.get('code') ?? '', { verifier: 'v'.repeat(43), secret: TEST_CLIENT_SECRET, redirectUri: `${stack.gateway.url}/auth/callback` });
      const outcome = await stack.finishLogin(browser, callback);
      expect(stack.rogue.tokenRequests.at(-1)).toMatchObject({ clientAuthenticated: true, pkceValid: true, outcome: 'invalid_grant' });
      await expectRejectedWithoutSession(stack, outcome, 400, 'login_code_rejected');
    });

    it('signs out of a rogue login by revoking with client_secret_basic and redirecting to end_session_endpoint with id_token_hint', async () => {
      const { browser, callback } = await stack.startLogin();
      expectSignedIn(await stack.finishLogin(browser, callback));
      const logout = await answerOf(await browser.request(`${stack.gateway.url}/auth/logout`, { method: 'POST', headers: { 'x-csrf': '1', accept: 'application/json' } }));
      expect(logout.status).toBe(200);
      expect(stack.rogue.revocationRequests).toEqual([{ params: { token: expect.any(String), token_type_hint: 'refresh_token' }, clientAuthenticated: true }]);
      const endSession = new URL(typeof logout.json === 'object' && logout.json !== null && 'redirectTo' in logout.json ? String(logout.json.redirectTo) : '');
      expect(endSession.origin + endSession.pathname).toBe(`${stack.rogue.issuer}/end-session`);
      expect(endSession.searchParams.get('id_token_hint')).toBe(stack.rogue.issuedIdTokens.at(-1));
    });

    it.each(tokenEndpointFailures)('answers $status $code when the token endpoint sends $what', async ({ scenario, status, code, retryAfter }) => {
      const outcome = await stack.login(scenario);
      expect(outcome.callback.retryAfter).toBe(retryAfter);
      await expectRejectedWithoutSession(stack, outcome, status, code);
    });
  });

  describe('state, replay and issuer', () => {
    it('answers a callback without state with 400 login_state_mismatch and never redeems the code', async () => {
      const { browser, callback } = await stack.startLogin();
      callback.searchParams.delete('state');
      const outcome = await stack.finishLogin(browser, callback);
      expect(stack.rogue.tokenRequests).toEqual([]);
      await expectRejectedWithoutSession(stack, outcome, 400, 'login_state_mismatch');
    });

    it('answers a callback carrying the state of a login started in another browser with 400, and the rightful browser can still finish', async () => {
      const victim = await stack.startLogin();
      const attacker = await stack.startLogin();
      const stolen = await stack.finishLogin(attacker.browser, victim.callback);
      const cookieless = await stack.finishLogin(new BrowserClient(), victim.callback);
      expect(stack.rogue.tokenRequests).toEqual([]);
      await expectRejectedWithoutSession(stack, cookieless, 400, 'login_state_mismatch');
      await expectRejectedWithoutSession(stack, stolen, 400, 'login_state_mismatch');
      expectSignedIn(await stack.finishLogin(victim.browser, victim.callback));
    });

    it('answers a replayed callback in the same browser with 400 login_state_mismatch and redeems the code only once', async () => {
      const { browser, callback } = await stack.startLogin();
      expectSignedIn(await stack.finishLogin(browser, callback));
      const replay = await stack.finishLogin(browser, callback);
      expect(replay.callback).toMatchObject({ status: 400, problem: { code: 'login_state_mismatch' } });
      expect(replay.sessionsCreated).toBe(0);
      expect(stack.rogue.tokenRequests).toHaveLength(1);
      await expectStillHealthy(stack);
    });

    it('consumes the login even when the ID token is rejected: retrying that callback is 400 login_state_mismatch', async () => {
      stack.rogue.scenario = () => ({ claims: { nonce: undefined } });
      const { browser, callback } = await stack.startLogin();
      expect((await stack.finishLogin(browser, callback)).callback.problem?.code).toBe('id_token_invalid');
      const retry = await stack.finishLogin(browser, callback);
      expect(stack.rogue.tokenRequests).toHaveLength(1);
      await expectRejectedWithoutSession(stack, retry, 400, 'login_state_mismatch');
    });

    it.each([
      ['access_denied', 401, 'login_denied'],
      ['login_required', 401, 'login_required'],
    ])('answers error=%s from the provider with %i %s and no session', async (error, status, code) => {
      const { browser, callback } = await stack.startLogin();
      const response = new URL(`${stack.gateway.url}/auth/callback`);
      response.searchParams.set('error', error);
      response.searchParams.set('state', callback.searchParams.get('state') ?? '');
      response.searchParams.set('iss', stack.rogue.issuer);
      const outcome = await stack.finishLogin(browser, response);
      expect(stack.rogue.tokenRequests).toEqual([]);
      await expectRejectedWithoutSession(stack, outcome, status, code);
    });

    it('answers an authorization response whose iss names another issuer with 400 login_issuer_mismatch (RFC 9207) and never redeems the code', async () => {
      const { browser, callback } = await stack.startLogin();
      callback.searchParams.set('iss', 'https://op.evil.example');
      const outcome = await stack.finishLogin(browser, callback);
      expect(stack.rogue.tokenRequests).toEqual([]);
      await expectRejectedWithoutSession(stack, outcome, 400, 'login_issuer_mismatch');
    });

    // RFC 9207 §2.4: the discovery document says authorization_response_iss_parameter_supported, so a
    // response without iss MUST be rejected (it may come from a mixed-up provider that does not send it).
    it('answers an authorization response without iss from a provider that advertises it with 400 login_issuer_mismatch', async () => {
      const { browser, callback } = await stack.startLogin();
      callback.searchParams.delete('iss');
      const outcome = await stack.finishLogin(browser, callback);
      expect(stack.rogue.tokenRequests).toEqual([]);
      await expectRejectedWithoutSession(stack, outcome, 400, 'login_issuer_mismatch');
    });
  });

  describe('browser navigations', () => {
    it.each([
      { what: 'an invalid ID token', scenario: (() => ({ claims: { nonce: undefined } })) satisfies Scenario, status: 401, code: 'id_token_invalid', retryAfter: null },
      { what: 'a failing token endpoint', scenario: (() => ({ http: { status: 500, body: '{}' } })) satisfies Scenario, status: 503, code: 'provider_unavailable', retryAfter: '5' },
    ])('shows a navigation to a callback rejected for $what an HTML page with status $status', async ({ scenario, status, code, retryAfter }) => {
      stack.rogue.scenario = scenario;
      const { browser, callback } = await stack.startLogin();
      const page = await answerOf((await browser.navigate(callback.href)).response);
      expect(page).toMatchObject({ status, retryAfter, contentType: expect.stringMatching(/^text\/html/), problem: undefined });
      expect(page.body).toContain(`<code>${code}</code>`);
      expect(page.body).toContain('<a href="/auth/login">');
      const me = await answerOf(await browser.request(`${stack.gateway.url}/auth/me`));
      expect(me).toMatchObject({ status: 401, problem: { code: 'session_required' } });
      await expectStillHealthy(stack);
    });
  });

  it('logs nothing at error level and never an ID token or the client secret', () => {
    expect(stack.rogue.issuedIdTokens.length).toBeGreaterThan(0);
    expectCleanLogs(stack);
  });
});

describe('a provider that stops between the redirect and the code exchange', () => {
  let stack: RogueStack;
  beforeAll(async () => {
    stack = await startRogueStack();
  });
  afterAll(async () => {
    await stack.stop();
  });

  it('answers the callback with 503 provider_unavailable and Retry-After, stays live, and signs in again once the provider is back', async () => {
    const { browser, callback } = await stack.startLogin();
    await stack.rogue.stop();
    const outcome = await stack.finishLogin(browser, callback);
    expect(outcome.callback).toMatchObject({ status: 503, retryAfter: '5', problem: { code: 'provider_unavailable' } });
    expect(outcome.sessionsCreated).toBe(0);
    expect(outcome.me).toMatchObject({ status: 401, problem: { code: 'session_required' } });
    expect((await fetch(`${stack.gateway.url}/healthz`)).status).toBe(200);
    await stack.rogue.restart();
    await expectStillHealthy(stack);
  });
});

describe('a gateway whose provider discovery cannot load', () => {
  let rogue: RogueOp;
  let gateway: RunningGateway;
  beforeAll(async () => {
    // a real provider URL with nothing listening behind it
    rogue = await startRogueOp({ clientId: TEST_CLIENT_ID, clientSecret: TEST_CLIENT_SECRET });
    await rogue.stop();
    gateway = await startGateway({ OIDC_ISSUER: rogue.issuer, OIDC_CLIENT_ID: TEST_CLIENT_ID, OIDC_CLIENT_SECRET: TEST_CLIENT_SECRET });
  });
  afterAll(async () => {
    await gateway.close();
    await rogue.close();
  });

  it('answers /auth/login with 503 provider_unavailable and Retry-After while /healthz is 200 and /readyz is 503', async () => {
    const login = await answerOf(await fetch(`${gateway.url}/auth/login`, { headers: { accept: 'application/json' }, redirect: 'manual' }));
    expect(login).toMatchObject({ status: 503, retryAfter: '5', problem: { status: 503, code: 'provider_unavailable' } });
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
    const ready = await answerOf(await fetch(`${gateway.url}/readyz`));
    expect(ready.status).toBe(503);
    expect(ready.json).toMatchObject({ status: 'not_ready', missing: expect.arrayContaining(['oidc_discovery']) });
  });

  it('answers a callback and a browser navigation to /auth/login with 503 too, never a 500', async () => {
    const callback = await answerOf(await fetch(`${gateway.url}/auth/callback?code=abc&state=def`, { headers: { accept: 'application/json' } }));
    expect(callback).toMatchObject({ status: 503, problem: { code: 'provider_unavailable' } });
    const page = await answerOf((await new BrowserClient().navigate(`${gateway.url}/auth/login`)).response);
    expect(page).toMatchObject({ status: 503, retryAfter: '5', contentType: expect.stringMatching(/^text\/html/) });
    expect(page.body).toContain('<code>provider_unavailable</code>');
    expect(gateway.logLines().filter((line) => typeof line['level'] === 'number' && line['level'] >= 50)).toEqual([]);
  });
});
