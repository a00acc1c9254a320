import { BrowserClient } from '../support/browser.js';
import { answerOf, correctIdToken, correctUserinfo, expectSignedIn, startRogueStack, type RogueStack } from '../support/rogue-op.js';

/**
 * What real providers do that the specifications allow or that they simply do (see the README's
 * provider sections), against the rogue provider: each is either accepted or refused clearly.
 */
describe('deviations every provider may show', () => {
  describe('a discovery document with only the required fields and odd values in optional ones', () => {
    let stack: RogueStack;
    beforeAll(async () => {
      stack = await startRogueStack({}, {
        discovery: (document, path) =>
          path === '/.well-known/openid-configuration'
            ? {
                issuer: document['issuer'],
                authorization_endpoint: document['authorization_endpoint'],
                token_endpoint: document['token_endpoint'],
                jwks_uri: document['jwks_uri'],
                // odd values in optional fields: ignored as if absent
                end_session_endpoint: '',
                revocation_endpoint: 42,
                code_challenge_methods_supported: 'S256',
                backchannel_logout_supported: 'yes',
                response_types_supported: 'code',
              }
            : undefined,
      });
    });
    afterAll(async () => {
      await stack.stop();
    });

    it('loads, signs in, and logs out locally: nothing to revoke, no end-session page, back on the post-logout URI', async () => {
      const { browser, callback } = await stack.startLogin();
      expectSignedIn(await stack.finishLogin(browser, callback));
      const me = await answerOf(await browser.request(`${stack.gateway.url}/auth/me`));
      const logoutUrl = typeof me.json === 'object' && me.json !== null && 'logoutUrl' in me.json ? String(me.json.logoutUrl) : '';
      const logout = await answerOf(await browser.request(`${stack.gateway.url}${logoutUrl}`));
      expect({ status: logout.status, location: logout.location }).toEqual({ status: 302, location: `${stack.gateway.url}/` });
      expect(stack.rogue.revocationRequests).toEqual([]);
      expect(stack.rogue.endSessionRequests).toEqual([]);
      expect((await answerOf(await browser.request(`${stack.gateway.url}/auth/me`))).status).toBe(401);
    });
  });

  describe('an authorization endpoint outside ASCII, with its own query', () => {
    let stack: RogueStack;
    beforeAll(async () => {
      stack = await startRogueStack({}, {
        // the rogue serves the percent-encoded path; its discovery document names it in raw UTF-8
        paths: { authorize: '/autori%C5%BEe', endSession: '/odhl%C3%A1%C5%A1enie' },
        discovery: (document, path) =>
          path === '/.well-known/openid-configuration'
            ? {
                ...document,
                // RFC 6749 §3.1: the endpoint may carry a query, which must be kept
                authorization_endpoint: `${String(document['authorization_endpoint']).replace('%C5%BE', 'ž')}?tenant=café`,
                end_session_endpoint: String(document['end_session_endpoint']).replace('%C3%A1%C5%A1', 'áš'),
              }
            : undefined,
      });
    });
    afterAll(async () => {
      await stack.stop();
    });

    it('redirects to it percent-encoded, keeps its query, and signs in (never a 500 for a header Node refuses)', async () => {
      const login = await answerOf(await new BrowserClient().request(`${stack.gateway.url}/auth/login`, { headers: { accept: 'text/html' } }));
      expect(login.status).toBe(302);
      expect(login.location).toMatch(/\/autori%C5%BEe\?tenant=caf%C3%A9&/);
      const { browser, callback } = await stack.startLogin();
      expectSignedIn(await stack.finishLogin(browser, callback));
      expect(stack.rogue.authorizationRequests.at(-1)?.params['tenant']).toBe('café');
    });

    it('sends the browser to an end-session endpoint outside ASCII percent-encoded too', async () => {
      const { browser, callback } = await stack.startLogin();
      const { me } = await stack.finishLogin(browser, callback);
      const logoutUrl = typeof me.json === 'object' && me.json !== null && 'logoutUrl' in me.json ? String(me.json.logoutUrl) : '';
      const logout = await answerOf(await browser.request(`${stack.gateway.url}${logoutUrl}`));
      expect(logout.status).toBe(302);
      expect(logout.location).toMatch(/\/odhl%C3%A1%C5%A1enie\?/);
    });
  });

  describe('the token and authorization responses', () => {
    let stack: RogueStack;
    beforeAll(async () => {
      stack = await startRogueStack();
    });
    afterAll(async () => {
      await stack.stop();
    });
    afterEach(() => {
      expect(stack.rogue.failures).toEqual([]);
      stack.rogue.reset();
    });

    it.each(['BEARER', 'bearer', 'Bearer'])('accepts token_type %s (RFC 6749 §7.1: case-insensitive)', async (tokenType) => {
      expectSignedIn(await stack.login(() => ({ response: { token_type: tokenType } })));
    });

    it.each([
      ['without auth_time', { auth_time: undefined }],
      ['with auth_time 0', { auth_time: 0 }],
    ])('accepts an ID token %s when max_age was not requested', async (_name, claims) => {
      expectSignedIn(await stack.login(() => ({ claims })));
    });

    it('ignores callback parameters it does not know (session_state and others)', async () => {
      stack.rogue.scenario = correctIdToken;
      const { browser, callback } = await stack.startLogin();
      callback.searchParams.set('session_state', 'a1b2c3.d4e5');
      callback.searchParams.set('x-vendor', 'anything');
      expectSignedIn(await stack.finishLogin(browser, callback));
    });

    it('names a non-standard error code: 400 login_failed, as JSON for a fetch and as a page for a navigation', async () => {
      for (const accept of ['application/json', 'text/html']) {
        const { browser, callback } = await stack.startLogin();
        callback.searchParams.delete('code');
        callback.searchParams.set('error', 'AADSTS50105');
        callback.searchParams.set('error_description', 'The signed in user is not assigned to a role');
        const outcome = await stack.finishLogin(browser, callback, accept);
        expect(outcome.callback.status).toBe(400);
        if (accept === 'application/json') expect(outcome.callback.problem).toMatchObject({ code: 'login_failed', detail: expect.stringContaining('AADSTS50105') });
        else expect(outcome.callback).toMatchObject({ contentType: expect.stringMatching(/^text\/html/), body: expect.stringContaining('AADSTS50105') });
        expect(outcome.sessionsCreated).toBe(0);
      }
    });
  });

  describe('max_age in OIDC_EXTRA_AUTH_PARAMS', () => {
    let stack: RogueStack;
    beforeAll(async () => {
      stack = await startRogueStack({ OIDC_EXTRA_AUTH_PARAMS: 'max_age=300' });
    });
    afterAll(async () => {
      await stack.stop();
    });

    it('sends max_age and requires a recent auth_time: absent, 0 or too old is 401 id_token_invalid', async () => {
      expectSignedIn(await stack.login());
      expect(stack.rogue.authorizationRequests.at(-1)?.params['max_age']).toBe('300');
      for (const authTime of [undefined, 0, Math.floor(Date.now() / 1000) - 3600]) {
        const outcome = await stack.login(() => ({ claims: { auth_time: authTime } }));
        expect({ authTime, status: outcome.callback.status, code: outcome.callback.problem?.code, sessions: outcome.sessionsCreated }).toEqual({ authTime, status: 401, code: 'id_token_invalid', sessions: 0 });
      }
    });
  });

  describe('OIDC_USERINFO=true', () => {
    let stack: RogueStack;
    beforeAll(async () => {
      stack = await startRogueStack({ OIDC_USERINFO: 'true' });
    });
    afterAll(async () => {
      await stack.stop();
    });
    afterEach(() => {
      stack.rogue.userinfoScenario = correctUserinfo;
    });

    it('merges the userinfo claims into /auth/me, keeping the ID token\'s where both have one', async () => {
      stack.rogue.userinfoScenario = (claims) => ({ status: 200, body: { sub: claims['sub'], name: 'Userinfo Name', locale: 'de-CH', sid: 'forged' } });
      const outcome = await stack.login(() => ({ claims: { name: 'ID Token Name' } }));
      expect(outcome.me).toMatchObject({ status: 200, json: { claims: { name: 'ID Token Name', locale: 'de-CH' } } });
      expect(JSON.stringify(outcome.me.json)).not.toContain('forged');
    });

    it.each([
      ['another subject', { status: 200, body: { sub: 'someone-else' } }, 502, 'userinfo_invalid'],
      ['no JSON object', { status: 200, body: ['not', 'an', 'object'] }, 502, 'userinfo_invalid'],
      ['a refusal of the new access token', { status: 401, body: { error: 'invalid_token' } }, 502, 'userinfo_invalid'],
      ['an outage', { status: 503, body: { error: 'temporarily_unavailable' } }, 503, 'provider_unavailable'],
    ])('fails the login without a session when userinfo answers %s', async (_name, answer, status, code) => {
      stack.rogue.userinfoScenario = () => answer;
      const browser = new BrowserClient();
      const { callback } = await stack.startLogin(browser);
      const outcome = await stack.finishLogin(browser, callback);
      expect({ status: outcome.callback.status, code: outcome.callback.problem?.code, sessions: outcome.sessionsCreated }).toEqual({ status, code, sessions: 0 });
    });
  });
});
