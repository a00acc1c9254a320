import { randomBytes, randomUUID } from 'node:crypto';
import type { BrowserClient } from '../support/browser.js';
import { startRedis, type RunningRedis } from '../support/redis.js';
import { eventually } from '../support/wait.js';
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
  /** The reason code of the warn line the gateway logs for the refusal. */
  readonly code: string;
}

const sign = (session: Session, claims: ClaimOverrides): Promise<string> => session.tokens.sign(claims);

// OpenID Connect Back-Channel Logout 1.0 §2.4 (the logout token) and §2.6 (its validation).
const invalidLogoutTokens: readonly InvalidLogoutToken[] = [
  {
    what: 'whose payload was changed after signing',
    token: async (session, claims) => withPayload(await sign(session, { ...claims, sub: 'someone-else' }), claims),
    reason: /signature/,
    code: 'signature',
  },
  { what: 'signed with a key the provider never published', token: (session, claims) => session.tokens.sign(claims, { key: 'unpublished' }), reason: /does not publish/, code: 'unknown_key' },
  { what: 'that is unsigned (alg none)', token: (session, claims) => session.tokens.unsigned(claims), reason: /algorithm/, code: 'algorithm' },
  {
    what: 'signed with HS256 keyed by the RSA public key (key confusion)',
    token: (session, claims) => session.tokens.signWithSecret(claims, Buffer.from(session.tokens.publicKeyPem('rs256')), { kid: session.tokens.kid('rs256') }),
    reason: /algorithm/,
    code: 'algorithm',
  },
  { what: 'from another issuer (iss)', token: (session, claims) => sign(session, merged(claims, { iss: 'https://op.evil.example' })), reason: /\biss\b/, code: 'claim_iss' },
  { what: 'for another client (aud)', token: (session, claims) => sign(session, merged(claims, { aud: 'another-client' })), reason: /\baud\b/, code: 'claim_aud' },
  {
    what: 'issued in the future beyond the 60 s skew (iat)',
    token: (session, claims) => sign(session, merged(claims, { iat: nowS() + 120, exp: nowS() + 300 })),
    reason: /\biat\b/,
    code: 'claim_iat',
  },
  {
    what: 'that expired beyond the 60 s skew (exp)',
    token: (session, claims) => sign(session, merged(claims, { iat: nowS() - 300, exp: nowS() - 90 })),
    reason: /expired/,
    code: 'expired',
  },
  {
    what: 'issued more than 10 minutes ago, although its exp is still ahead',
    token: (session, claims) => sign(session, merged(claims, { iat: nowS() - 700, exp: nowS() + 120 })),
    reason: /expired/,
    code: 'expired',
  },
  // draft-06 providers (glewlwyd) send no exp: the token's age then rests on iat alone
  {
    what: 'without exp, issued more than 10 minutes ago',
    token: (session, claims) => sign(session, merged(claims, { exp: undefined, iat: nowS() - 700 })),
    reason: /expired/,
    code: 'expired',
  },
  { what: 'without events', token: (session, claims) => sign(session, merged(claims, { events: undefined })), reason: /back-channel logout event/, code: 'events' },
  {
    what: 'whose events lack the back-channel logout member',
    token: (session, claims) => sign(session, merged(claims, { events: { 'http://schemas.openid.net/event/another-event': {} } })),
    reason: /back-channel logout event/,
    code: 'events',
  },
  {
    what: 'whose back-channel logout event is a string, not a JSON object',
    token: (session, claims) => sign(session, merged(claims, { events: { [BACKCHANNEL_LOGOUT_EVENT]: 'logout' } })),
    reason: /JSON object/,
    code: 'events',
  },
  {
    what: 'whose back-channel logout event is null, not a JSON object',
    token: (session, claims) => sign(session, merged(claims, { events: { [BACKCHANNEL_LOGOUT_EVENT]: null } })),
    reason: /JSON object/,
    code: 'events',
  },
  {
    what: 'whose back-channel logout event is an array, not a JSON object',
    token: (session, claims) => sign(session, merged(claims, { events: { [BACKCHANNEL_LOGOUT_EVENT]: [] } })),
    reason: /JSON object/,
    code: 'events',
  },
  { what: 'carrying a nonce', token: (session, claims) => sign(session, merged(claims, { nonce: 'n-0123456789abcdefghij' })), reason: /nonce/, code: 'nonce' },
  { what: 'naming neither a sid nor a sub', token: (session, claims) => sign(session, merged(claims, { sid: undefined, sub: undefined })), reason: /neither/, code: 'no_subject' },
  { what: 'whose sid and sub are empty strings', token: (session, claims) => sign(session, merged(claims, { sid: '', sub: '' })), reason: /neither/, code: 'no_subject' },
  { what: 'without jti', token: (session, claims) => sign(session, merged(claims, { jti: undefined })), reason: /\bjti\b/, code: 'claim_jti' },
  {
    what: 'that is an ID token of the same provider with a jti (nonce, no events)',
    token: (session) => sign(session, { ...session.tokens.claims, iat: nowS(), exp: nowS() + 300, jti: randomUUID() }),
    reason: /back-channel logout event/,
    code: 'events',
  },
];

/** Signs in through the rogue provider with an ID token carrying `sub` and `sid`. */
async function signIn(stack: RogueStack, sub = 'rogue-user', sid = randomBytes(8).toString('hex')): Promise<Session> {
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
function logoutClaims(stack: RogueStack, session: Session): Record<string, unknown> {
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
async function postLogoutToken(stack: RogueStack, token: string): Promise<Answer> {
  return answerOf(
    await fetch(`${stack.gateway.url}/auth/backchannel-logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ logout_token: token }),
    }),
  );
}

async function meStatus(stack: RogueStack, session: Session): Promise<number> {
  return (await session.browser.request(`${stack.gateway.url}/auth/me`, { headers: { accept: 'application/json' } })).status;
}

/** The gateway's warn lines about refused logout tokens so far. */
function refusalLines(stack: RogueStack): Array<Record<string, unknown>> {
  return stack.gateway.logLines().filter((line) => line['event'] === 'logout_token_refused');
}

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

  const login = (sub?: string, sid?: string): Promise<Session> => signIn(stack, sub, sid);
  const claimsFor = (session: Session): Record<string, unknown> => logoutClaims(stack, session);
  const me = (session: Session): Promise<number> => meStatus(stack, session);
  function post(token: string): Promise<Answer> {
    posted.push(token);
    return postLogoutToken(stack, token);
  }

  /** 400 logout_token_invalid naming `reason`, and exactly one new warn line with `code` (and never the token). */
  function expectRefused(answer: Answer, reason: RegExp, code: string, warnedBefore: number): void {
    expect(answer).toMatchObject({
      status: 400,
      contentType: expect.stringMatching(/^application\/problem\+json/),
      problem: { status: 400, code: 'logout_token_invalid', type: '/problems/logout_token_invalid', detail: expect.stringMatching(reason) },
    });
    expect(refusalLines(stack).slice(warnedBefore)).toEqual([expect.objectContaining({ level: 40, event: 'logout_token_refused', reason: code })]);
  }

  describe('accepts correct logout tokens', () => {
    it('ends exactly the session a token with sub and sid names, and not the same user\'s session at another provider session', async () => {
      const named = await login('ada');
      const otherProviderSession = await login('ada');
      const answer = await post(await sign(named, claimsFor(named)));
      expect(answer.status).toBe(200);
      expect(await me(named)).toBe(401);
      expect(await me(otherProviderSession)).toBe(200);
    });

    it('ends the session a token with only a sid names', async () => {
      const session = await login('bea');
      const answer = await post(await sign(session, merged(claimsFor(session), { sub: undefined })));
      expect(answer.status).toBe(200);
      expect(await me(session)).toBe(401);
    });

    it('ends every session of the user a token with only a sub names, and no other user\'s session', async () => {
      const firstBrowser = await login('cleo');
      const secondBrowser = await login('cleo');
      const otherUser = await login('dora');
      const answer = await post(await sign(firstBrowser, merged(claimsFor(firstBrowser), { sid: undefined })));
      expect(answer.status).toBe(200);
      expect(await me(firstBrowser)).toBe(401);
      expect(await me(secondBrowser)).toBe(401);
      expect(await me(otherUser)).toBe(200);
    });

    it('accepts a token signed with the provider\'s ES256 key', async () => {
      const session = await login();
      const answer = await post(await session.tokens.sign(claimsFor(session), { key: 'es256' }));
      expect(answer.status).toBe(200);
      expect(await me(session)).toBe(401);
    });

    it('accepts a token whose iat is ahead of the gateway clock by less than the 60 s skew', async () => {
      const session = await login();
      const answer = await post(await sign(session, merged(claimsFor(session), { iat: nowS() + 30 })));
      expect(answer.status).toBe(200);
      expect(await me(session)).toBe(401);
    });

    it('judges iat, exp and the token\'s age by the gateway\'s clock alone, here 12 minutes ahead of the process clock', async () => {
      const session = await login('hana');
      const aheadMs = 12 * 60_000;
      stack.gateway.clock.advance(aheadMs);
      try {
        const gatewayNowS = Math.floor(stack.gateway.clock.now() / 1000);
        // fresh by the gateway's clock; issued in the future and beyond its 10-minute age by the process clock's
        const answer = await post(await sign(session, merged(claimsFor(session), { iat: gatewayNowS, exp: gatewayNowS + 120 })));
        expect(answer.status).toBe(200);
        expect(await me(session)).toBe(401);
      } finally {
        stack.gateway.clock.reset();
      }
    });

    it('accepts a draft-06 token without exp (as glewlwyd sends) whose iat is recent, and ends the session', async () => {
      const session = await login('gwen');
      const answer = await post(await sign(session, merged(claimsFor(session), { exp: undefined, iat: nowS() - 5 })));
      expect(answer.status).toBe(200);
      expect(await me(session)).toBe(401);
    });
  });

  describe('refuses every bad logout token with 400 logout_token_invalid, logs why at warn, and ends nothing', () => {
    it.each(invalidLogoutTokens)('refuses a logout token $what', async ({ token, reason, code }) => {
      const session = await login();
      const warnedBefore = refusalLines(stack).length;
      expectRefused(await post(await token(session, claimsFor(session))), reason, code, warnedBefore);
      expect(await me(session)).toBe(200);
    });

    it('refuses the ID token the provider issued at sign-in, posted as a logout token', async () => {
      const session = await login();
      const [idToken] = stack.rogue.issuedIdTokens.slice(-1);
      if (idToken === undefined) throw new Error('the rogue provider issued no ID token');
      const warnedBefore = refusalLines(stack).length;
      // it carries a nonce and no events, and (like many providers' ID tokens) no jti: any of these refuses it
      const answer = await post(idToken);
      expect(answer).toMatchObject({ status: 400, problem: { code: 'logout_token_invalid', detail: expect.stringMatching(/\bjti\b|back-channel logout event|nonce/) } });
      expect(refusalLines(stack).slice(warnedBefore)).toEqual([expect.objectContaining({ level: 40, reason: expect.stringMatching(/^(claim_jti|events|nonce)$/) })]);
      expect(await me(session)).toBe(200);
    });

    it('refuses a replayed logout token (same jti): the first post ends the session, the second ends nothing', async () => {
      const first = await login('eve');
      const token = await sign(first, claimsFor(first));
      expect((await post(token)).status).toBe(200);
      expect(await me(first)).toBe(401);
      // the user signs in again and the provider reuses its session, so the replayed token names this one too
      const second = await login('eve', first.sid);
      const warnedBefore = refusalLines(stack).length;
      expectRefused(await post(token), /already used/, 'replayed', warnedBefore);
      expect(await me(second)).toBe(200);
    });

    it('refuses a form without logout_token and a logout_token that is not a JWT, with a warn line each', async () => {
      const session = await login();
      const warnedBefore = refusalLines(stack).length;
      const missing = await answerOf(
        await fetch(`${stack.gateway.url}/auth/backchannel-logout`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'other=1' }),
      );
      expectRefused(missing, /no logout_token/, 'missing', warnedBefore);
      expectRefused(await post('not-a-jwt'), /not a signed JWT/, 'malformed', warnedBefore + 1);
      expect(await me(session)).toBe(200);
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

describe('back-channel logout while the session store (Redis) is frozen', () => {
  let redis: RunningRedis;
  let stack: RogueStack;

  beforeAll(async () => {
    redis = await startRedis();
    stack = await startRogueStack({ SESSION_STORE: 'redis', REDIS_URL: redis.url });
  });
  afterAll(async () => {
    await stack.stop();
    await redis.close();
  });

  // Back-Channel Logout §2.8 says 400 for a logout that failed; a provider that retries on 5xx
  // (as for any server error) must then find the same token (same jti) still unused.
  it('answers 503 session_store_unavailable and consumes nothing, so the same token ends the session once Redis is back', async () => {
    const session = await signIn(stack, 'hana');
    const token = await sign(session, logoutClaims(stack, session));
    redis.freeze();
    let frozenAnswer: Answer;
    try {
      frozenAnswer = await postLogoutToken(stack, token);
    } finally {
      redis.thaw();
    }
    expect(frozenAnswer).toMatchObject({ status: 503, retryAfter: expect.stringMatching(/^\d+$/), problem: { code: 'session_store_unavailable' } });
    // the provider retries until the store answers again
    const retried = await eventually(
      async () => {
        const answer = await postLogoutToken(stack, token);
        return answer.status === 503 ? undefined : answer;
      },
      15_000,
      'the retried logout token answered without 503',
    );
    expect(retried.status).toBe(200);
    expect(await meStatus(stack, session)).toBe(401);
    // and from then on it is a replay
    expect((await postLogoutToken(stack, token)).problem).toMatchObject({ code: 'logout_token_invalid', detail: expect.stringMatching(/already used/) });
  });
});
