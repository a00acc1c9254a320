import { randomBytes } from 'node:crypto';
import type { BrowserClient } from '../support/browser.js';
import { runGatewayToExit } from '../support/gateway-process.js';
import { answerOf, expectCleanLogs, expectSignedIn, startRogueStack, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type Answer, type RogueStack } from '../support/rogue-op.js';
import { TEST_SESSION_SECRET } from '../support/test-env.js';

/** A sign-in through the rogue provider whose ID token carries this provider `sid`. */
async function signIn(stack: RogueStack, sid: string): Promise<BrowserClient> {
  stack.rogue.scenario = () => ({ claims: { sid } });
  const { browser, callback } = await stack.startLogin();
  expectSignedIn(await stack.finishLogin(browser, callback));
  return browser;
}

async function meStatus(stack: RogueStack, browser: BrowserClient): Promise<number> {
  return (await browser.request(`${stack.gateway.url}/auth/me`, { headers: { accept: 'application/json' } })).status;
}

/** The provider's iframe request: no cookie (it is cross-site, SameSite=Lax), a navigation of a frame. */
async function frontchannel(stack: RogueStack, query: string): Promise<{ answer: Answer; headers: Headers }> {
  const res = await fetch(`${stack.gateway.url}/auth/frontchannel-logout${query}`, { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'iframe' } });
  return { answer: await answerOf(res), headers: res.headers };
}

const newSid = (): string => randomBytes(8).toString('hex');

describe('front-channel logout (OpenID Connect Front-Channel Logout 1.0) over plain HTTP', () => {
  describe('when OIDC_FRONTCHANNEL_LOGOUT is not set', () => {
    let stack: RogueStack;
    beforeAll(async () => {
      stack = await startRogueStack();
    });
    afterAll(async () => {
      await stack.stop();
    });

    it('answers 404 not_found, as for any unknown route, and ends nothing', async () => {
      const sid = newSid();
      const browser = await signIn(stack, sid);
      const res = await fetch(`${stack.gateway.url}/auth/frontchannel-logout?iss=${encodeURIComponent(stack.rogue.issuer)}&sid=${sid}`, { headers: { accept: 'application/json' } });
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ status: 404, code: 'not_found' });
      expect(await meStatus(stack, browser)).toBe(200);
    });
  });

  describe('when OIDC_FRONTCHANNEL_LOGOUT=true', () => {
    let stack: RogueStack;
    let expectedPage: string;
    beforeAll(async () => {
      stack = await startRogueStack({ OIDC_FRONTCHANNEL_LOGOUT: 'true' });
      expectedPage = (await frontchannel(stack, `?iss=${encodeURIComponent(stack.rogue.issuer)}&sid=${newSid()}`)).answer.body;
    });
    afterAll(async () => {
      await stack.stop();
    });
    beforeEach(() => {
      stack.rogue.reset();
    });

    const query = (iss: string | undefined, sid: string | undefined): string => {
      const params = new URLSearchParams();
      if (iss !== undefined) params.set('iss', iss);
      if (sid !== undefined) params.set('sid', sid);
      return `?${params.toString()}`;
    };

    it('ends every session bound to the provider sid, and no other, with a small uncacheable HTML page only the provider may frame', async () => {
      const sid = newSid();
      const first = await signIn(stack, sid);
      const second = await signIn(stack, sid);
      const bystander = await signIn(stack, newSid());
      const { answer, headers } = await frontchannel(stack, query(stack.rogue.issuer, sid));
      expect(answer).toMatchObject({ status: 200, contentType: expect.stringMatching(/^text\/html; charset=utf-8/) });
      expect(answer.body).toBe(expectedPage);
      expect(answer.body.length).toBeLessThan(1024);
      expect(headers.get('cache-control')).toBe('no-store');
      // OIDC Front-Channel Logout §2: the provider renders this URL in an iframe of its own page
      expect(headers.get('content-security-policy')).toBe(`default-src 'none'; frame-ancestors ${new URL(stack.rogue.issuer).origin}`);
      expect(headers.get('x-frame-options')).toBeNull();
      expect(await meStatus(stack, first)).toBe(401);
      expect(await meStatus(stack, second)).toBe(401);
      expect(await meStatus(stack, bystander)).toBe(200);
    });

    it.each([
      ['another issuer', (sid: string): [string | undefined, string | undefined] => ['https://op.evil.example', sid]],
      ['the issuer with a trailing slash', (sid: string): [string | undefined, string | undefined] => [`${stack.rogue.issuer}/`, sid]],
      ['no iss', (sid: string): [string | undefined, string | undefined] => [undefined, sid]],
      ['no sid', (): [string | undefined, string | undefined] => [stack.rogue.issuer, undefined]],
      ['an empty sid', (): [string | undefined, string | undefined] => [stack.rogue.issuer, '']],
      ['an unknown sid', (): [string | undefined, string | undefined] => [stack.rogue.issuer, newSid()]],
    ])('answers %s with the same page and ends nothing', async (_what, params) => {
      const sid = newSid();
      const browser = await signIn(stack, sid);
      const [iss, sidParam] = params(sid);
      const { answer, headers } = await frontchannel(stack, query(iss, sidParam));
      expect(answer).toMatchObject({ status: 200, body: expectedPage });
      expect(headers.get('cache-control')).toBe('no-store');
      expect(await meStatus(stack, browser)).toBe(200);
    });

    it('refuses a repeated sid parameter as missing and ends nothing', async () => {
      const sid = newSid();
      const browser = await signIn(stack, sid);
      const { answer } = await frontchannel(stack, `?iss=${encodeURIComponent(stack.rogue.issuer)}&sid=${sid}&sid=${sid}`);
      expect(answer).toMatchObject({ status: 200, body: expectedPage });
      expect(await meStatus(stack, browser)).toBe(200);
    });

    it('logs each call at info with how many sessions ended, never the sid', async () => {
      const sid = newSid();
      await signIn(stack, sid);
      const before = stack.gateway.logLines().length;
      await frontchannel(stack, query(stack.rogue.issuer, sid));
      await frontchannel(stack, query('https://op.evil.example', sid));
      const lines = stack.gateway.logLines().slice(before).filter((line) => line['event'] === 'frontchannel_logout');
      expect(lines).toEqual([
        expect.objectContaining({ level: 30, outcome: 'accepted', ended: 1, sidHash: expect.stringMatching(/^[0-9a-f]{8}$/) }),
        expect.objectContaining({ level: 30, outcome: 'issuer_mismatch', ended: 0 }),
      ]);
      expect(stack.gateway.logText()).not.toContain(sid);
      expectCleanLogs(stack);
    });
  });

  it('--check-config reports what the provider announces about logout', async () => {
    const stack = await startRogueStack();
    try {
      const result = await runGatewayToExit(
        {
          OIDC_ISSUER: stack.rogue.issuer,
          OIDC_CLIENT_ID: TEST_CLIENT_ID,
          OIDC_CLIENT_SECRET: TEST_CLIENT_SECRET,
          SESSION_SECRET: TEST_SESSION_SECRET,
          UPSTREAM_URL: 'http://127.0.0.1:9',
          OIDC_FRONTCHANNEL_LOGOUT: 'true',
        },
        ['--check-config'],
      );
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(
        /^ +logout announced: backchannel_logout_supported=true, backchannel_logout_session_supported=true, frontchannel_logout_supported=true, frontchannel_logout_session_supported=true$/m,
      );
      expect(result.stdout).not.toContain('OIDC_FRONTCHANNEL_LOGOUT=true, but');
    } finally {
      await stack.stop();
    }
  });
});
