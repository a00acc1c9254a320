import { randomBytes, randomUUID } from 'node:crypto';
import type { BrowserClient } from '../support/browser.js';
import {
  answerOf,
  expectCleanLogs,
  expectStillHealthy,
  startRogueStack,
  type Answer,
  type ClaimOverrides,
  type RogueStack,
  type TokenContext,
} from '../support/rogue-op.js';

const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** A gateway session signed in through the rogue provider, whose ID token carried this sub and sid. */
interface Session {
  readonly browser: BrowserClient;
  readonly sub: string;
  readonly sid: string;
  /** The rogue's token tools (its real keys), captured from this login's code exchange. */
  readonly tokens: TokenContext;
}

/** Replaces a JWS's payload and keeps its signature, as a party in the middle would. */
function withPayload(token: string, claims: Readonly<Record<string, unknown>>): string {
  const [header = '', , signature = ''] = token.split('.');
  return `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
}

/** `overrides` over `base`: a present value replaces, undefined removes. */
function merged(base: Readonly<Record<string, unknown>>, overrides: ClaimOverrides): Record<string, unknown> {
  const result: Record<string, unknown> = { ...base };
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete result[name];
    else result[name] = value;
  }
  return result;
}

const nowS = (): number => Math.floor(Date.now() / 1000);

interface InvalidLogoutToken {
  readonly what: string;
  /** Builds the token aimed at `session`, from `claims`: the correct logout token's claims for it. */
  readonly token: (session: Session, claims: Readonly<Record<string, unknown>>) => string | Promise<string>;
  /** The problem detail must name this reason: a token refused for another reason proves nothing. */
  readonly reason: RegExp;
}

const sign = (session: Session, claims: ClaimOverrides): Promise<string> => session.tokens.sign(claims);

// OpenID Connect Back-Channel Logout 1.0 §2.4 (the logout token) and §2.6 (its validation).
const invalidLogoutTokens: readonly InvalidLogoutToken[] = [
  {
    what: 'whose payload was changed after signing',
    token: async (session, claims) => withPayload(await sign(session, { ...claims, sub: 'someone-else' }), claims),
    reason: /signature/,
  },
  { what: 'signed with a key the provider never published', token: (session, claims) => session.tokens.sign(claims, { key: 'unpublished' }), reason: /does not publish/ },
  { what: 'that is unsigned (alg none)', token: (session, claims) => session.tokens.unsigned(claims), reason: /algorithm/ },
  {
    what: 'signed with HS256 keyed by the RSA public key (key confusion)',
    token: (session, claims) => session.tokens.signWithSecret(claims, Buffer.from(session.tokens.publicKeyPem('rs256')), { kid: session.tokens.kid('rs256') }),
    reason: /algorithm/,
  },
  { what: 'from another issuer (iss)', token: (session, claims) => sign(session, merged(claims, { iss: 'https://op.evil.example' })), reason: /\biss\b/ },
  { what: 'for another client (aud)', token: (session, claims) => sign(session, merged(claims, { aud: 'another-client' })), reason: /\baud\b/ },
  {
    what: 'issued in the future beyond the 60 s skew (iat)',
    token: (session, claims) => sign(session, merged(claims, { iat: nowS() + 120, exp: nowS() + 300 })),
    reason: /\biat\b/,
  },
  {
    what: 'that expired beyond the 60 s skew (exp)',
    token: (session, claims) => sign(session, merged(claims, { iat: nowS() - 300, exp: nowS() - 90 })),
    reason: /expired/,
  },
  {
    what: 'issued more than 10 minutes ago, although its exp is still ahead',
    token: (session, claims) => sign(session, merged(claims, { iat: nowS() - 700, exp: nowS() + 120 })),
    reason: /expired/,
  },
  // Back-Channel Logout 1.0 final §2.4: exp is REQUIRED
  { what: 'without exp', token: (session, claims) => sign(session, merged(claims, { exp: undefined })), reason: /\bexp\b/ },
  { what: 'without events', token: (session, claims) => sign(session, merged(claims, { events: undefined })), reason: /back-channel logout event/ },
  {
    what: 'whose events lack the back-channel logout member',
    token: (session, claims) => sign(session, merged(claims, { events: { 'http://schemas.openid.net/event/another-event': {} } })),
    reason: /back-channel logout event/,
  },
  {
    what: 'whose back-channel logout event is a string, not a JSON object',
    token: (session, claims) => sign(session, merged(claims, { events: { [BACKCHANNEL_LOGOUT_EVENT]: 'logout' } })),
    reason: /JSON object/,
  },
  {
    what: 'whose back-channel logout event is null, not a JSON object',
    token: (session, claims) => sign(session, merged(claims, { events: { [BACKCHANNEL_LOGOUT_EVENT]: null } })),
    reason: /JSON object/,
  },
  {
    what: 'whose back-channel logout event is an array, not a JSON object',
    token: (session, claims) => sign(session, merged(claims, { events: { [BACKCHANNEL_LOGOUT_EVENT]: [] } })),
    reason: /JSON object/,
  },
  { what: 'carrying a nonce', token: (session, claims) => sign(session, merged(claims, { nonce: 'n-0123456789abcdefghij' })), reason: /nonce/ },
  { what: 'naming neither a sid nor a sub', token: (session, claims) => sign(session, merged(claims, { sid: undefined, sub: undefined })), reason: /neither/ },
  { what: 'whose sid and sub are empty strings', token: (session, claims) => sign(session, merged(claims, { sid: '', sub: '' })), reason: /neither/ },
  { what: 'without jti', token: (session, claims) => sign(session, merged(claims, { jti: undefined })), reason: /\bjti\b/ },
  {
    what: 'that is an ID token of the same provider with a jti (nonce, no events)',
    token: (session) => sign(session, { ...session.tokens.claims, iat: nowS(), exp: nowS() + 300, jti: randomUUID() }),
    reason: /back-channel logout event/,
  },
];

describe('back-channel logout token validation against a rogue provider (Back-Channel Logout 1.0 §2.6)', () => {
  let stack: RogueStack;
  /** Every logout token posted, to check none reaches a log. */
  const posted: string[] = [];

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

  /** Signs in through the rogue provider with an ID token carrying `sub` and `sid`. */
  async function signIn(sub = 'rogue-user', sid = randomBytes(8).toString('hex')): Promise<Session> {
    const exchanges: TokenContext[] = [];
    stack.rogue.scenario = (ctx) => {
      exchanges.push(ctx);
      return { claims: { sub, sid } };
    };
    const { browser, callback } = await stack.startLogin();
    const outcome = await stack.finishLogin(browser, callback);
    expect(outcome.callback).toMatchObject({ status: 302, location: '/' });
    expect(outcome.me).toMatchObject({ status: 200, json: { sub } });
    const [tokens] = exchanges;
    if (tokens === undefined) throw new Error('the rogue provider answered no code exchange');
    return { browser, sub, sid, tokens };
  }

  /** The claims of a correct logout token for `session`. */
  function logoutClaims(session: Session): Record<string, unknown> {
    const now = nowS();
    return {
      iss: stack.rogue.issuer,
      aud: stack.rogue.clientId,
      iat: now,
      exp: now + 120,
      jti: randomUUID(),
      events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
      sub: session.sub,
      sid: session.sid,
    };
  }

  /** POSTs `token` as the provider would: a form with a logout_token field, no cookies. */
  async function postLogoutToken(token: string): Promise<Answer> {
    posted.push(token);
    return answerOf(
      await fetch(`${stack.gateway.url}/auth/backchannel-logout`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ logout_token: token }),
      }),
    );
  }

  async function meStatus(session: Session): Promise<number> {
    return (await session.browser.request(`${stack.gateway.url}/auth/me`, { headers: { accept: 'application/json' } })).status;
  }

  function expectRefused(answer: Answer, reason: RegExp): void {
    expect(answer).toMatchObject({
      status: 400,
      contentType: expect.stringMatching(/^application\/problem\+json/),
      problem: { status: 400, code: 'logout_token_invalid', type: '/problems/logout_token_invalid', detail: expect.stringMatching(reason) },
    });
  }

  describe('accepts correct logout tokens', () => {
    it('ends exactly the session a token with sub and sid names, and not the same user\'s session at another provider session', async () => {
      const named = await signIn('ada');
      const otherProviderSession = await signIn('ada');
      const answer = await postLogoutToken(await sign(named, logoutClaims(named)));
      expect(answer.status).toBe(200);
      expect(await meStatus(named)).toBe(401);
      expect(await meStatus(otherProviderSession)).toBe(200);
    });

    it('ends the session a token with only a sid names', async () => {
      const session = await signIn('bea');
      const answer = await postLogoutToken(await sign(session, merged(logoutClaims(session), { sub: undefined })));
      expect(answer.status).toBe(200);
      expect(await meStatus(session)).toBe(401);
    });

    it('ends every session of the user a token with only a sub names, and no other user\'s session', async () => {
      const firstBrowser = await signIn('cleo');
      const secondBrowser = await signIn('cleo');
      const otherUser = await signIn('dora');
      const answer = await postLogoutToken(await sign(firstBrowser, merged(logoutClaims(firstBrowser), { sid: undefined })));
      expect(answer.status).toBe(200);
      expect(await meStatus(firstBrowser)).toBe(401);
      expect(await meStatus(secondBrowser)).toBe(401);
      expect(await meStatus(otherUser)).toBe(200);
    });

    it('accepts a token signed with the provider\'s ES256 key', async () => {
      const session = await signIn();
      const answer = await postLogoutToken(await session.tokens.sign(logoutClaims(session), { key: 'es256' }));
      expect(answer.status).toBe(200);
      expect(await meStatus(session)).toBe(401);
    });

    it('accepts a token whose iat is ahead of the gateway clock by less than the 60 s skew', async () => {
      const session = await signIn();
      const answer = await postLogoutToken(await sign(session, merged(logoutClaims(session), { iat: nowS() + 30 })));
      expect(answer.status).toBe(200);
      expect(await meStatus(session)).toBe(401);
    });
  });

  describe('refuses every bad logout token with 400 logout_token_invalid and ends nothing', () => {
    it.each(invalidLogoutTokens)('refuses a logout token $what', async ({ token, reason }) => {
      const session = await signIn();
      expectRefused(await postLogoutToken(await token(session, logoutClaims(session))), reason);
      expect(await meStatus(session)).toBe(200);
    });

    it('refuses the ID token the provider issued at sign-in, posted as a logout token', async () => {
      const session = await signIn();
      const [idToken] = stack.rogue.issuedIdTokens.slice(-1);
      if (idToken === undefined) throw new Error('the rogue provider issued no ID token');
      // it carries a nonce and no events, and (like many providers' ID tokens) no jti: any of these refuses it
      expectRefused(await postLogoutToken(idToken), /\bjti\b|back-channel logout event|nonce/);
      expect(await meStatus(session)).toBe(200);
    });

    it('refuses a replayed logout token (same jti): the first post ends the session, the second ends nothing', async () => {
      const first = await signIn('eve');
      const token = await sign(first, logoutClaims(first));
      expect((await postLogoutToken(token)).status).toBe(200);
      expect(await meStatus(first)).toBe(401);
      // the user signs in again and the provider reuses its session, so the replayed token names this one too
      const second = await signIn('eve', first.sid);
      expectRefused(await postLogoutToken(token), /already used/);
      expect(await meStatus(second)).toBe(200);
    });
  });

  describe('afterwards', () => {
    it('is still healthy and signs someone in', async () => {
      await expectStillHealthy(stack);
    });

    it('logs nothing at error level and never a logout token', () => {
      expect(posted.length).toBeGreaterThan(invalidLogoutTokens.length);
      expectCleanLogs(stack);
      const text = stack.gateway.logText();
      expect(posted.filter((token) => text.includes(token))).toEqual([]);
    });
  });
});
