import { randomUUID } from 'node:crypto';
import { startSampleApi, type RunningSampleApi } from '../../demo/sample-api.js';
import { BrowserClient } from '../support/browser.js';
import { startBehaviourUpstream, type TestUpstream } from '../support/fault-upstreams.js';
import { startGateway } from '../support/gateway.js';
import { emulate, ENTRA, type Emulation, type ProviderName } from '../support/provider-emulations.js';
import { answerOf, correctUserinfo, startRogueOp, startRogueStack, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type Answer, type RogueStack } from '../support/rogue-op.js';
import { eventually } from '../support/wait.js';
import { refreshGrantAsClient } from '../support/client-grants.js';

const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** Past the emulations' 300 s access tokens and the default 30 s refresh skew. */
const TOKEN_LIFETIME_MS = 300_000;

/** The upstream behind /api: the sample API verifying JWT access tokens, or an echo for opaque ones. */
interface ApiUpstream {
  readonly url: string;
  /** The Bearer token of the last /api request, and the subject the API verified (undefined: opaque, not verified). */
  last(): { readonly bearer: string | undefined; readonly sub: string | undefined };
  close(): Promise<void>;
}

function bearerOf(header: string | string[] | undefined): string | undefined {
  return typeof header === 'string' ? /^Bearer (.+)$/.exec(header)?.[1] : undefined;
}

async function startApi(emulation: Emulation, issuer: string): Promise<ApiUpstream> {
  if (emulation.apiAudience === undefined) {
    const echo: TestUpstream = await startBehaviourUpstream();
    return { url: echo.url, last: () => ({ bearer: bearerOf(echo.seen.at(-1)?.headers.authorization), sub: undefined }), close: () => echo.close() };
  }
  const api: RunningSampleApi = await startSampleApi({ issuer, audience: emulation.apiAudience, port: 0, host: '127.0.0.1' });
  return {
    url: api.url,
    last: () => {
      const request = api.received.at(-1);
      return { bearer: bearerOf(request?.headers.authorization), sub: request?.sub };
    },
    close: () => api.close(),
  };
}

interface ProviderStack {
  readonly emulation: Emulation;
  readonly stack: RogueStack;
  readonly api: ApiUpstream;
  readonly url: string;
  stop(): Promise<void>;
}

async function startProvider(name: ProviderName): Promise<ProviderStack> {
  const emulation = emulate(name);
  let api: ApiUpstream | undefined;
  const stack = await startRogueStack(async (rogue) => {
    emulation.install(rogue);
    api = await startApi(emulation, emulation.apiIssuer(rogue));
    return { ...emulation.env(rogue), UPSTREAM_URL: api.url };
  }, emulation.behaviour);
  if (api === undefined) throw new Error('the API upstream did not start');
  const started = api;
  const url = stack.gateway.url;
  emulation.registerPostLogoutUri(`${url}/`);
  // time passes for the provider as for the gateway: tokens issued after a jump are valid after it
  stack.rogue.now = () => stack.gateway.clock.now();
  return {
    emulation,
    stack,
    api: started,
    url,
    async stop() {
      await stack.stop();
      await started.close();
    },
  };
}

/** /auth/login (with `query`) through the provider's authorization endpoint, stopped before the callback. */
async function authorize(p: ProviderStack, browser: BrowserClient, query = ''): Promise<URL> {
  const navigation = await browser.navigate(`${p.url}/auth/login${query}`, { stopAt: (url) => url.href.startsWith(`${p.url}/auth/callback`) });
  if (navigation.stoppedAt === undefined) throw new Error(`the provider did not send the browser back: ${navigation.visited.join(' -> ')} (${navigation.response.status})`);
  return new URL(navigation.stoppedAt);
}

async function signIn(p: ProviderStack, query = ''): Promise<BrowserClient> {
  p.stack.gateway.clock.reset();
  const browser = new BrowserClient();
  const callback = await answerOf(await browser.request((await authorize(p, browser, query)).href));
  expect({ status: callback.status, location: callback.location, problem: callback.problem }).toEqual({ status: 302, location: '/', problem: undefined });
  return browser;
}

async function me(p: ProviderStack, browser: BrowserClient): Promise<Answer> {
  return answerOf(await browser.request(`${p.url}/auth/me`, { headers: { accept: 'application/json' } }));
}

async function callApi(p: ProviderStack, browser: BrowserClient): Promise<Answer> {
  return answerOf(await browser.request(`${p.url}/api/whoami`, { headers: { 'x-csrf': '1', accept: 'application/json' } }));
}

function logoutUrlOf(answer: Answer): string {
  const json = answer.json;
  if (typeof json !== 'object' || json === null || !('logoutUrl' in json) || typeof json.logoutUrl !== 'string') throw new Error('no logoutUrl in /auth/me');
  return json.logoutUrl;
}

/** The refresh tokens the gateway sent, in order. */
function refreshTokensSent(p: ProviderStack): string[] {
  return p.stack.rogue.tokenRequests.filter((r) => r.params['grant_type'] === 'refresh_token').map((r) => r.params['refresh_token'] ?? '');
}

/**
 * The whole life of a session at this provider: sign in, /auth/me, /api with the provider's token,
 * two silent refreshes, and logout as the provider does it, landing back on the app.
 */
async function fullFlow(p: ProviderStack, options: { readonly loginQuery?: string; readonly rotates: boolean; readonly endSessionPath: string | undefined; readonly revokes: boolean }): Promise<void> {
  const { rogue, gateway } = p.stack;
  const browser = await signIn(p, options.loginQuery);

  const who = await me(p, browser);
  expect(who).toMatchObject({ status: 200, json: { sub: p.emulation.sub } });
  expect(who.body).not.toMatch(/eyJ|opaque-|rt-/);

  const first = await callApi(p, browser);
  expect(first.status).toBe(200);
  const firstCall = p.api.last();
  expect(firstCall.bearer).toBeDefined();
  if (p.emulation.apiAudience !== undefined) expect(firstCall.sub).toBe(p.emulation.sub);

  for (let refresh = 1; refresh <= 2; refresh++) {
    gateway.clock.advance(TOKEN_LIFETIME_MS);
    const answer = await callApi(p, browser);
    expect({ refresh, status: answer.status, problem: answer.problem }).toEqual({ refresh, status: 200, problem: undefined });
    expect(rogue.refreshCount).toBe(refresh);
    const call = p.api.last();
    expect(call.bearer).not.toBe(firstCall.bearer);
    if (p.emulation.apiAudience !== undefined) expect(call.sub).toBe(p.emulation.sub);
  }
  const [sentFirst, sentSecond] = refreshTokensSent(p);
  // a rotating provider gets the rotated token back; Google's one refresh token is sent each time
  if (options.rotates) expect(sentSecond).not.toBe(sentFirst);
  else expect(sentSecond).toBe(sentFirst);

  const revocationsBefore = rogue.revocationRequests.length;
  const logout = await browser.navigate(`${p.url}${logoutUrlOf(await me(p, browser))}`);
  const providerOrigin = new URL(rogue.issuer).origin;
  const atProvider = logout.visited.filter((url) => url.startsWith(providerOrigin)).map((url) => new URL(url).pathname);
  expect(atProvider).toEqual(options.endSessionPath === undefined ? [] : [options.endSessionPath]);
  expect(logout.visited.at(-1)).toBe(`${p.url}/`);
  expect(logout.response.status).toBe(200);
  expect((await me(p, browser)).problem).toMatchObject({ code: 'session_required' });
  expect(rogue.revocationRequests.length - revocationsBefore).toBe(options.revokes ? 1 : 0);
  expect(rogue.failures).toEqual([]);
}

describe('Okta, custom authorization server (/oauth2/default)', () => {
  let p: ProviderStack;
  beforeAll(async () => {
    p = await startProvider('okta');
  });
  afterAll(async () => {
    await p.stop();
  });

  it('signs in with offline_access, calls the API with a verified Okta token, refreshes through rotation, and logs out at /v1/logout', async () => {
    await fullFlow(p, { rotates: true, endSessionPath: '/oauth2/default/v1/logout', revokes: true });
    const [authorization] = p.stack.rogue.authorizationRequests;
    expect(authorization?.params['scope']?.split(' ')).toContain('offline_access');
    const [logout] = p.stack.rogue.endSessionRequests;
    expect(logout?.params).toMatchObject({ id_token_hint: expect.any(String), post_logout_redirect_uri: `${p.url}/` });
  });
});

describe('Okta, org authorization server', () => {
  let p: ProviderStack;
  beforeAll(async () => {
    p = await startProvider('okta-org');
  });
  afterAll(async () => {
    await p.stop();
  });

  it('signs in at the org issuer, forwards its opaque access token, refreshes, and logs out at /oauth2/v1/logout', async () => {
    await fullFlow(p, { rotates: true, endSessionPath: '/oauth2/v1/logout', revokes: true });
  });
});

describe('Entra ID v2, multi-tenant (/common)', () => {
  let p: ProviderStack;
  beforeAll(async () => {
    p = await startProvider('entra');
  });
  afterAll(async () => {
    await p.stop();
  });
  afterEach(() => {
    p.emulation.install(p.stack.rogue);
  });

  it('accepts the {tenantid} issuer for an allowed tenant, calls the API with its v2 token, and logs out without revocation', async () => {
    await fullFlow(p, { rotates: true, endSessionPath: '/common/oauth2/v2.0/logout', revokes: false });
    expect(p.stack.rogue.authorizationRequests[0]?.params['scope']).toBe('openid profile email offline_access api://bff-api/.default');
  });

  it('refuses an ID token from a tenant not in OIDC_ALLOWED_TENANTS, and one whose tid disagrees with its issuer', async () => {
    const origin = new URL(p.stack.rogue.issuer).origin;
    const tenantIssuer = (tenant: string): string => `${origin}/${tenant}/v2.0`;
    for (const claims of [
      { iss: tenantIssuer(ENTRA.otherTenant), tid: ENTRA.otherTenant },
      { iss: tenantIssuer(ENTRA.tenant), tid: ENTRA.otherTenant },
      { iss: `${origin}/{tenantid}/v2.0`, tid: ENTRA.tenant },
    ]) {
      const installed = p.stack.rogue.scenario;
      p.stack.rogue.scenario = async (ctx) => ({ ...(await installed(ctx)), claims });
      const outcome = await p.stack.login(p.stack.rogue.scenario);
      expect({ claims, status: outcome.callback.status, code: outcome.callback.problem?.code, sessions: outcome.sessionsCreated }).toEqual({ claims, status: 401, code: 'id_token_invalid', sessions: 0 });
      p.emulation.install(p.stack.rogue);
    }
  });

  it('checks an RFC 9207 iss on the callback against the allowed tenants\' issuers', async () => {
    const origin = new URL(p.stack.rogue.issuer).origin;
    const browser = new BrowserClient();
    const callback = await authorize(p, browser);
    callback.searchParams.set('iss', `${origin}/${ENTRA.otherTenant}/v2.0`);
    const refused = await answerOf(await browser.request(callback.href, { headers: { accept: 'application/json' } }));
    expect(refused).toMatchObject({ status: 400, problem: { code: 'login_issuer_mismatch' } });

    const again = new BrowserClient();
    const allowed = await authorize(p, again);
    allowed.searchParams.set('iss', `${origin}/${ENTRA.tenant}/v2.0`);
    expect(await answerOf(await again.request(allowed.href))).toMatchObject({ status: 302, location: '/' });
  });

  it('validates a logout token against the tenant\'s issuer and tid', async () => {
    const browser = await signIn(p);
    const origin = new URL(p.stack.rogue.issuer).origin;
    const now = Math.floor(p.stack.rogue.now() / 1000);
    const claims = { aud: TEST_CLIENT_ID, iat: now, exp: now + 120, events: { [BACKCHANNEL_LOGOUT_EVENT]: {} }, sub: p.emulation.sub };
    const post = async (extra: Record<string, unknown>): Promise<Answer> =>
      answerOf(
        await fetch(`${p.url}/auth/backchannel-logout`, {
          method: 'POST',
          body: new URLSearchParams({ logout_token: await p.stack.rogue.sign({ ...claims, jti: randomUUID(), ...extra }) }),
        }),
      );
    expect(await post({ iss: `${origin}/${ENTRA.otherTenant}/v2.0`, tid: ENTRA.otherTenant })).toMatchObject({ status: 400, problem: { code: 'logout_token_invalid' } });
    expect(await post({ iss: `${origin}/${ENTRA.tenant}/v2.0`, tid: ENTRA.otherTenant })).toMatchObject({ status: 400, problem: { code: 'logout_token_invalid' } });
    expect((await me(p, browser)).status).toBe(200);
    expect((await post({ iss: `${origin}/${ENTRA.tenant}/v2.0`, tid: ENTRA.tenant })).status).toBe(200);
    expect((await me(p, browser)).problem).toMatchObject({ code: 'session_required' });
  });

  it('ends with 400 login_failed (invalid_scope) when the scopes name two resources: one resource per access token', async () => {
    const emulation = emulate('entra');
    const twoResources = await startRogueStack((rogue) => {
      emulation.install(rogue);
      return Promise.resolve({ ...emulation.env(rogue), OIDC_SCOPES: 'openid offline_access api://bff-api/.default https://graph.microsoft.com/User.Read' });
    }, emulation.behaviour);
    try {
      const { browser, callback } = await twoResources.startLogin();
      const outcome = await twoResources.finishLogin(browser, callback);
      expect(outcome.callback).toMatchObject({ status: 400, problem: { code: 'login_failed', detail: expect.stringContaining('invalid_scope') } });
      expect(outcome.sessionsCreated).toBe(0);
    } finally {
      await twoResources.stop();
    }
  });

  it('stays unready, naming OIDC_ALLOWED_TENANTS, when the issuer is a template and no tenant is allowed', async () => {
    const emulation = emulate('entra');
    const rogue = await startRogueOp({ clientId: TEST_CLIENT_ID, clientSecret: TEST_CLIENT_SECRET, behaviour: emulation.behaviour });
    const gateway = await startGateway({ OIDC_ISSUER: rogue.issuer, OIDC_CLIENT_ID: TEST_CLIENT_ID, OIDC_CLIENT_SECRET: TEST_CLIENT_SECRET });
    try {
      await eventually(() => Promise.resolve(gateway.logText().includes('OIDC_ALLOWED_TENANTS') ? true : undefined), 10_000, 'a discovery warning naming OIDC_ALLOWED_TENANTS');
      expect((await fetch(`${gateway.url}/readyz`)).status).toBe(503);
      const login = await answerOf(await fetch(`${gateway.url}/auth/login`, { headers: { accept: 'application/json' }, redirect: 'manual' }));
      expect(login).toMatchObject({ status: 503, problem: { code: 'provider_unavailable' } });
    } finally {
      await gateway.close();
      await rogue.close();
    }
  });
});

describe('Auth0', () => {
  let p: ProviderStack;
  beforeAll(async () => {
    p = await startProvider('auth0');
  });
  afterAll(async () => {
    await p.stop();
  });
  afterEach(() => {
    p.emulation.install(p.stack.rogue);
  });

  it('keeps the trailing-slash issuer, sends audience for a JWT access token, and logs out at /v2/logout with returnTo', async () => {
    expect(p.stack.rogue.issuer.endsWith('/')).toBe(true);
    await fullFlow(p, { rotates: true, endSessionPath: '/v2/logout', revokes: true });
    expect(p.stack.rogue.authorizationRequests[0]?.params['audience']).toBe('https://api.bff.example');
    expect(p.stack.rogue.endSessionRequests[0]?.params).toMatchObject({ client_id: TEST_CLIENT_ID, returnTo: `${p.url}/` });
  });

  it('ends the session with 401 when reuse detection revoked the refresh token family', async () => {
    const browser = await signIn(p);
    p.stack.gateway.clock.advance(TOKEN_LIFETIME_MS);
    expect((await callApi(p, browser)).status).toBe(200);
    const [leaked] = refreshTokensSent(p).slice(-1);
    // someone else replays the refresh token the gateway already rotated: Auth0 revokes the family
    const replay = await refreshGrantAsClient(new URL('/oauth/token', p.stack.rogue.issuer).href, leaked, { clientId: TEST_CLIENT_ID, secret: TEST_CLIENT_SECRET });
    expect(replay.status).toBe(400);
    p.stack.gateway.clock.advance(TOKEN_LIFETIME_MS);
    const answer = await callApi(p, browser);
    expect(answer.status).toBe(401);
    expect((await me(p, browser)).status).toBe(401);
  });
});

describe('Google', () => {
  let p: ProviderStack;
  beforeAll(async () => {
    p = await startProvider('google');
  });
  afterAll(async () => {
    await p.stop();
  });

  it('asks with access_type=offline (never offline_access), keeps its one refresh token, merges userinfo, and logs out locally', async () => {
    await fullFlow(p, { rotates: false, endSessionPath: undefined, revokes: true });
    const params = p.stack.rogue.authorizationRequests[0]?.params ?? {};
    expect(params).toMatchObject({ access_type: 'offline', prompt: 'consent', scope: 'openid profile email' });
  });

  it('shows the userinfo claims the ID token lacks in /auth/me', async () => {
    const browser = await signIn(p);
    expect(await me(p, browser)).toMatchObject({
      status: 200,
      json: { sub: p.emulation.sub, claims: { email: 'user@gmail.example', name: 'Rogue User', picture: 'https://pictures.example/rogue.png' } },
    });
    expect(p.stack.rogue.userinfoRequests.at(-1)?.params['access_token']).toMatch(/^opaque-/);
  });

  it('lets a prompt on /auth/login override the configured prompt=consent (silent sign-in)', async () => {
    await authorize(p, new BrowserClient(), '?prompt=none');
    const params = p.stack.rogue.authorizationRequests.at(-1)?.params ?? {};
    expect(params).toMatchObject({ prompt: 'none', access_type: 'offline' });
  });

  it('fails the login with 502 userinfo_invalid when userinfo names another subject', async () => {
    p.stack.rogue.userinfoScenario = () => ({ status: 200, body: { sub: 'someone-else', name: 'Mallory' } });
    try {
      const browser = new BrowserClient();
      const callback = await answerOf(await browser.request((await authorize(p, browser)).href, { headers: { accept: 'application/json' } }));
      expect(callback).toMatchObject({ status: 502, problem: { code: 'userinfo_invalid' } });
      expect((await me(p, browser)).status).toBe(401);
    } finally {
      p.stack.rogue.userinfoScenario = correctUserinfo;
    }
  });
});

describe('Keycloak (/realms/demo)', () => {
  let p: ProviderStack;
  beforeAll(async () => {
    p = await startProvider('keycloak');
  });
  afterAll(async () => {
    await p.stop();
  });

  it('forwards kc_idp_hint, ignores session_state, takes a lower-case token_type, and logs out with id_token_hint', async () => {
    await fullFlow(p, { loginQuery: '?kc_idp_hint=github&ui_locales=de&claims=forged', rotates: true, endSessionPath: '/realms/demo/protocol/openid-connect/logout', revokes: true });
    const params = p.stack.rogue.authorizationRequests[0]?.params ?? {};
    expect(params).toMatchObject({ kc_idp_hint: 'github', ui_locales: 'de' });
    expect(params).not.toHaveProperty('claims');
    expect(p.stack.rogue.endSessionRequests[0]?.params).toMatchObject({ id_token_hint: expect.any(String), client_id: TEST_CLIENT_ID });
  });

  it('ends the session by back-channel logout (sid) and by front-channel logout', async () => {
    const sidOfLastLogin = (): string => {
      const [idToken] = p.stack.rogue.issuedIdTokens.slice(-1);
      const payload: unknown = JSON.parse(Buffer.from(idToken?.split('.')[1] ?? '', 'base64url').toString());
      const sid = typeof payload === 'object' && payload !== null && 'sid' in payload ? payload.sid : undefined;
      if (typeof sid !== 'string') throw new Error('the ID token has no sid');
      return sid;
    };
    const back = await signIn(p);
    const now = Math.floor(p.stack.rogue.now() / 1000);
    const token = await p.stack.rogue.sign({ iss: p.stack.rogue.issuer, aud: TEST_CLIENT_ID, iat: now, exp: now + 120, jti: randomUUID(), events: { [BACKCHANNEL_LOGOUT_EVENT]: {} }, sid: sidOfLastLogin() });
    expect(await answerOf(await fetch(`${p.url}/auth/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: token }) }))).toMatchObject({ status: 200 });
    expect((await me(p, back)).status).toBe(401);

    const front = await signIn(p);
    const query = new URLSearchParams({ iss: p.stack.rogue.issuer, sid: sidOfLastLogin() });
    expect((await fetch(`${p.url}/auth/frontchannel-logout?${query.toString()}`)).status).toBe(200);
    expect((await me(p, front)).status).toBe(401);
  });
});
