import { decodeJwt, decodeProtectedHeader } from 'jose';
import type { Page } from 'playwright-core';
import { sessionKey } from '../../src/session/session-cookie.js';
import { SESSION_STORE, type SessionRecord, type SessionStore } from '../../src/session/session-store.js';
import { launchChromium, type ChromiumSession } from '../support/chromium.js';
import { startGateway, type RunningGateway } from '../support/gateway.js';
import { runGatewayToExit } from '../support/gateway-process.js';
import { describeWithGlewlwyd, GLEWLWYD_API_RESOURCE, startGlewlwyd, type RunningGlewlwyd } from '../support/glewlwyd.js';
import { freePort } from '../support/ports.js';
import { testEnvironment } from '../support/test-env.js';
import { startUpstream, type RunningUpstream } from '../support/upstream.js';
import { eventually, waitUntilReady } from '../support/wait.js';
import { sessionIdInCookie } from '../support/gateway-state.js';

/**
 * The whole flow against glewlwyd 2.7.5, a production OpenID provider nobody here wrote, driven in
 * headless Chromium through its own login, consent and end-session pages.
 *
 * glewlwyd issues access tokens for at least 60 s; instead of waiting a minute per refresh, the
 * gateway refreshes when the token expires within TOKEN_REFRESH_SKEW_S (56 s): each token is fresh
 * for 4 s on the gateway's clock, which the test moves past them; then the next /api call renews it.
 */
const ACCESS_TOKEN_S = 60;
const REFRESH_SKEW_S = 56;
const REFRESH_ROUNDS = 3;
const CONCURRENT_CALLS = 5;
/** How long a page may take to get where a click sends it (glewlwyd's pages are a React app). */
const PAGE_STEP_MS = 10_000;

interface ApiAnswer {
  readonly status: number;
  readonly body: string;
}

describeWithGlewlwyd('the gateway in front of glewlwyd (a real OpenID provider), in Chromium', () => {
  let glewlwyd: RunningGlewlwyd;
  let upstream: RunningUpstream;
  let gateway: RunningGateway;
  let chromium: ChromiumSession;
  let page: Page;
  /** http://localhost:PORT: another site than glewlwyd on 127.0.0.1, as an app and its provider are. */
  let app: string;

  beforeAll(async () => {
    const port = await freePort();
    app = `http://localhost:${port}`;
    glewlwyd = await startGlewlwyd({ gatewayUrl: app, accessTokenDurationS: ACCESS_TOKEN_S, refreshTokenOneUse: 'always' });
    upstream = await startUpstream({ issuer: glewlwyd.issuer, audience: GLEWLWYD_API_RESOURCE });
    gateway = await startGateway({
      PORT: String(port),
      PUBLIC_URL: app,
      OIDC_ISSUER: glewlwyd.issuer,
      OIDC_CLIENT_ID: glewlwyd.clientId,
      OIDC_CLIENT_SECRET: glewlwyd.clientSecret,
      // RFC 8707: without a resource, glewlwyd puts the scope list in the access token's `aud`
      OIDC_EXTRA_AUTH_PARAMS: `resource=${GLEWLWYD_API_RESOURCE}`,
      UPSTREAM_URL: upstream.url,
      TOKEN_REFRESH_SKEW_S: String(REFRESH_SKEW_S),
    });
    await waitUntilReady(gateway.url);
    chromium = await launchChromium();
    page = await chromium.context.newPage();
  });

  afterAll(async () => {
    await chromium?.close();
    await gateway?.close();
    await upstream?.close();
    await glewlwyd?.stop();
  });

  /** The browser's server-side session, read from the in-process gateway's store through Chromium's sealed cookie. */
  async function session(): Promise<SessionRecord | undefined> {
    const sealed = (await chromium.context.cookies(app)).find((c) => c.name === gateway.config.session.cookie.name)?.value;
    if (sealed === undefined) return undefined;
    // after a logout the cookie is still there, without an id
    const sid = await sessionIdInCookie(gateway.app, sealed).catch(() => undefined);
    if (sid === undefined) return undefined;
    return gateway.app.get<SessionStore>(SESSION_STORE).get(sessionKey(sid));
  }

  async function requireSession(): Promise<SessionRecord> {
    const record = await session();
    if (record === undefined) throw new Error('Chromium holds no live gateway session');
    return record;
  }

  /** The session, its access token moved into the refresh window (expiry - skew) on the gateway's clock (glewlwyd still honours it). */
  async function dueForRefresh(): Promise<SessionRecord> {
    const record = await requireSession();
    gateway.clock.advance(Math.max(0, record.tokens.accessTokenExpiresAt - REFRESH_SKEW_S * 1000 - gateway.clock.now()));
    return record;
  }

  /** `count` simultaneous fetch() calls from the app's page, as a SPA makes them. */
  async function callApi(count = 1): Promise<ApiAnswer[]> {
    return page.evaluate(async (n) => {
      const calls = Array.from({ length: n }, async (_, i) => {
        const response = await fetch(`/api/orders/${i}`, { headers: { 'X-CSRF': '1' } });
        return { status: response.status, body: await response.text() };
      });
      return Promise.all(calls);
    }, count);
  }

  async function me(): Promise<ApiAnswer> {
    return page.evaluate(async () => {
      const response = await fetch('/auth/me', { headers: { Accept: 'application/json' } });
      return { status: response.status, body: await response.text() };
    });
  }

  async function refreshCount(): Promise<number> {
    const text = await (await fetch(`${gateway.url}/metrics`)).text();
    const match = /^bff_token_refresh_total\{result="refreshed"\} (\d+)$/m.exec(text);
    return match?.[1] === undefined ? 0 : Number(match[1]);
  }

  function bearerTokens(since: number): string[] {
    return upstream.received.slice(since).map((request) => (request.headers.authorization ?? '').replace(/^Bearer /, ''));
  }

  /**
   * Signs in (unless the app already is) from the app through glewlwyd's login page (skipped while its session lives) and its
   * consent page (skipped once the scopes are granted). Returns whether the consent page showed the
   * optional scopes unticked, as glewlwyd renders them.
   */
  async function signIn(): Promise<{ consentUnticked: boolean | undefined }> {
    await page.goto(`${app}/`);
    await page.locator('[data-testid="signed-out"]:visible, [data-testid="signed-in"]:visible').waitFor();
    if (await page.getByTestId('signed-in').isVisible()) return { consentUnticked: undefined };
    await page.getByTestId('sign-in').click();
    await page.waitForURL((url) => url.origin === glewlwyd.url && url.pathname === '/login.html', { timeout: PAGE_STEP_MS });

    const username = page.locator('#username');
    const carryOn = page.getByRole('button', { name: 'Continue' });
    await page.locator('#username:visible, button:visible:has-text("Continue")').first().waitFor({ timeout: PAGE_STEP_MS });
    if (await username.isVisible()) {
      await username.fill(glewlwyd.user.username);
      await page.locator('#password').fill(glewlwyd.user.password);
      await page.locator('#loginbut').click();
    }
    await carryOn.waitFor({ timeout: PAGE_STEP_MS });

    let consentUnticked: boolean | undefined;
    const grant = page.getByRole('button', { name: 'Grant access' });
    if (await grant.isVisible()) {
      const boxes = ['profile', 'email', 'offline_access'].map((scope) => page.locator(`#grant-${scope}`));
      const ticked = await Promise.all(boxes.map((box) => box.isChecked()));
      consentUnticked = ticked.every((checked) => !checked);
      for (const box of boxes) await box.check();
      await grant.click();
      await grant.waitFor({ state: 'hidden', timeout: PAGE_STEP_MS });
    }
    await carryOn.click();
    await page.waitForURL(`${app}/`, { timeout: PAGE_STEP_MS });
    await page.getByTestId('signed-in').waitFor({ timeout: PAGE_STEP_MS });
    return { consentUnticked };
  }

  /** glewlwyd's introspection answer for a refresh token (presenting it at the token endpoint instead would use it up). */
  async function introspected(refreshToken: string | undefined): Promise<unknown> {
    if (refreshToken === undefined) throw new Error('no refresh token to introspect');
    const response = await glewlwyd.introspect(refreshToken, 'refresh_token');
    expect(response.status).toBe(200);
    return response.json();
  }

  /** The gateway's log lines about logout channels, to say why a provider-initiated logout did not end the session. */
  function logoutLog(): string {
    return gateway
      .logLines()
      .filter((line) => [line['event'], line['url']].some((field) => typeof field === 'string' && field.includes('logout')))
      .map((line) => JSON.stringify(line))
      .join('\n');
  }

  it('passes `--check-config` against glewlwyd (discovery and JWKS)', async () => {
    const result = await runGatewayToExit(
      testEnvironment({
        PUBLIC_URL: app,
        OIDC_ISSUER: glewlwyd.issuer,
        OIDC_CLIENT_ID: glewlwyd.clientId,
        OIDC_CLIENT_SECRET: glewlwyd.clientSecret,
        UPSTREAM_URL: upstream.url,
        LOG_LEVEL: 'warn',
      }),
      ['--check-config'],
    );
    // the output rides along so that a failure shows what the check said
    expect({ code: result.code, output: result.stdout + result.stderr }).toMatchObject({ code: 0 });
    expect(result.stdout).toMatch(/^ {2}ok {4}provider +discovery document and JWKS loaded/m);
    expect(result.stdout).toContain('result: ok, ready to deploy');
  });

  it('signs in through glewlwyd\'s login page and its consent page (optional scopes start unticked) and lands back on the app', async () => {
    const { consentUnticked } = await signIn();
    expect(consentUnticked).toBe(true);
    expect(await page.getByTestId('user-name').textContent()).toBe(glewlwyd.user.name);
  });

  it('answers /auth/me with the claims of glewlwyd\'s ID token', async () => {
    const answer = await me();
    expect(answer.status).toBe(200);
    const { idToken } = (await requireSession()).tokens;
    if (idToken === undefined) throw new Error('the session keeps no ID token');
    const idClaims = decodeJwt(idToken);
    expect(idClaims.iss).toBe(glewlwyd.issuer);
    expect(JSON.parse(answer.body)).toMatchObject({
      sub: idClaims.sub,
      claims: { sub: idClaims.sub, name: glewlwyd.user.name, email: glewlwyd.user.email },
      logoutUrl: expect.stringMatching(/^\/auth\/logout\?sid=/),
    });
  });

  it('reaches the API with a glewlwyd access token that the API verified against glewlwyd\'s JWKS', async () => {
    const since = upstream.received.length;
    const [answer] = await callApi();
    expect(answer?.status).toBe(200);
    const sub = decodeJwt((await requireSession()).tokens.idToken ?? '').sub;
    expect(JSON.parse(answer?.body ?? '{}')).toMatchObject({ sub, path: '/api/orders/0' });

    const received = upstream.received.slice(since);
    expect(received).toHaveLength(1);
    // `sub` is set only when the sample API verified the signature with glewlwyd's JWKS, `iss`, `aud` and `typ`
    expect(received[0]?.sub).toBe(sub);
    expect(received[0]?.headers.cookie).toBeUndefined();
    const [token] = bearerTokens(since);
    expect(decodeProtectedHeader(token ?? '')).toMatchObject({ alg: 'RS256', typ: 'at+jwt' });
    expect(decodeJwt(token ?? '')).toMatchObject({ iss: glewlwyd.issuer, aud: GLEWLWYD_API_RESOURCE, client_id: glewlwyd.clientId });
  });

  it(`refreshes transparently with rotating refresh tokens: ${CONCURRENT_CALLS} concurrent calls per expiry, one refresh each time`, async () => {
    for (let round = 1; round <= REFRESH_ROUNDS; round++) {
      const previous = await dueForRefresh();
      const refreshesBefore = await refreshCount();
      const since = upstream.received.length;

      const answers = await callApi(CONCURRENT_CALLS);

      expect(answers.map((a) => a.status)).toEqual(Array.from({ length: CONCURRENT_CALLS }, () => 200));
      const tokens = new Set(bearerTokens(since));
      expect({ round, distinctTokens: tokens.size, refreshes: (await refreshCount()) - refreshesBefore }).toEqual({ round, distinctTokens: 1, refreshes: 1 });
      expect(tokens.has(previous.tokens.accessToken)).toBe(false);
      expect(upstream.received.slice(since).every((request) => request.sub !== undefined)).toBe(true);

      const current = await requireSession();
      expect(current.tokens.accessToken).toBe([...tokens][0]);
      // rotation: glewlwyd answered with a new refresh token and disabled the one presented
      expect(current.tokens.refreshToken).toEqual(expect.any(String));
      expect(current.tokens.refreshToken).not.toBe(previous.tokens.refreshToken);
      expect(await introspected(previous.tokens.refreshToken)).toMatchObject({ active: false });
      expect(await introspected(current.tokens.refreshToken)).toMatchObject({ active: true });
    }
  });

  it('revokes the refresh token at logout: glewlwyd\'s token endpoint refuses it afterwards', async () => {
    const { refreshToken } = (await requireSession()).tokens;
    if (refreshToken === undefined) throw new Error('the session keeps no refresh token');
    await page.getByTestId('sign-out').click();
    // the gateway has ended its session, revoked, and sent the browser to glewlwyd's end-session page
    await page.waitForURL((url) => url.origin === glewlwyd.url && url.searchParams.get('prompt') === 'end_session', { timeout: PAGE_STEP_MS });
    expect(await session()).toBeUndefined();

    const refresh = await glewlwyd.tokenRequest({ grant_type: 'refresh_token', refresh_token: refreshToken });
    // glewlwyd refuses a revoked refresh token with an empty 400 (not RFC 6749's JSON error)
    expect(refresh.status).toBe(400);
    expect(await refresh.text()).not.toContain('access_token');
  });

  it('returns to the app after RP-initiated logout at glewlwyd (its end-session page redirects only when `state` was sent)', async () => {
    // glewlwyd's page is a script app: its Logout button is drawn before its session requests finish,
    // and a click then does nothing (seen once under CI load), so the click waits for them
    await page.waitForLoadState('networkidle', { timeout: PAGE_STEP_MS });
    await page.getByRole('button', { name: 'Logout' }).click();
    // glewlwyd appends the `state` it was given to the post-logout URI
    await page.waitForURL((url) => url.origin === new URL(app).origin && url.pathname === '/', { timeout: PAGE_STEP_MS }).catch((error: unknown) => {
      throw new Error(`glewlwyd did not send the browser back to the app; it shows ${page.url()}\n${String(error)}`);
    });
    await page.getByTestId('signed-out').waitFor({ timeout: PAGE_STEP_MS });
  });

  it('ends the gateway session when the user logs out at glewlwyd (back-channel logout, logout token without `exp`)', async () => {
    await signIn();
    expect((await me()).status).toBe(200);
    const providerSid = decodeJwt((await requireSession()).tokens.idToken ?? '').sid;
    expect(providerSid).toEqual(expect.any(String));

    // what glewlwyd's end-session page does when the user confirms, with the user's glewlwyd session cookie
    const ended = await chromium.context.request.delete(`${glewlwyd.issuer}/session/${encodeURIComponent(String(providerSid))}`);
    expect(ended.status()).toBe(200);

    await eventually(async () => ((await me()).status === 401 ? true : undefined), PAGE_STEP_MS, 'the gateway session ended').catch((error: unknown) => {
      throw new Error(`${String(error)}; the gateway's logout log:\n${logoutLog()}`);
    });
    expect(await session()).toBeUndefined();
    expect((await callApi()).map((a) => a.status)).toEqual([401]);
  });

  it('ends the session with 401 session_expired when glewlwyd refuses the refresh token with an empty 400 (grant revoked at the provider)', async () => {
    await signIn();
    const { refreshToken } = (await requireSession()).tokens;
    if (refreshToken === undefined) throw new Error('the session keeps no refresh token');
    expect((await glewlwyd.revoke(refreshToken, 'refresh_token')).status).toBe(200);
    await dueForRefresh();

    const [answer] = await callApi();
    // RFC 6749 §5.2 wants a JSON error; glewlwyd sends none, yet its refusal still ends the grant
    expect({ status: answer?.status, body: JSON.parse(answer?.body ?? '{}') as unknown }).toMatchObject({ status: 401, body: { code: 'session_expired' } });
    expect((await me()).status).toBe(401);
  });
});
