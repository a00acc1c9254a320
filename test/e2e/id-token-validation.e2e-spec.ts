import {
  expectCleanLogs,
  expectRejectedWithoutSession,
  expectSignedIn,
  startRogueStack,
  type RogueStack,
  type Scenario,
} from '../support/rogue-op.js';

/** Replaces a JWS's payload and keeps its signature, as a party in the middle would. */
function withPayload(token: string, claims: Readonly<Record<string, unknown>>): string {
  const [header = '', , signature = ''] = token.split('.');
  return `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
}

interface InvalidIdToken {
  readonly what: string;
  readonly scenario: Scenario;
  /** The problem detail must name this reason: a token rejected for another reason proves nothing. */
  readonly reason: RegExp;
}

// OIDC Core §3.1.3.7, and the OpenID RP certification's rp-id_token-* and rp-nonce-* plans.
const invalidIdTokens: readonly InvalidIdToken[] = [
  {
    what: 'whose payload was changed after signing',
    scenario: async (ctx) => ({ idToken: withPayload(await ctx.sign(ctx.claims), { ...ctx.claims, sub: 'admin' }) }),
    reason: /signature/,
  },
  { what: 'that is unsigned (alg none)', scenario: (ctx) => ({ idToken: ctx.unsigned(ctx.claims) }), reason: /algorithm/ },
  {
    what: 'signed with HS256 keyed by the RSA public key (key confusion)',
    scenario: async (ctx) => ({ idToken: await ctx.signWithSecret(ctx.claims, Buffer.from(ctx.publicKeyPem('rs256')), { kid: ctx.kid('rs256') }) }),
    reason: /algorithm/,
  },
  { what: 'from another issuer (iss)', scenario: () => ({ claims: { iss: 'https://op.evil.example' } }), reason: /\biss\b/ },
  { what: 'whose aud does not contain this client', scenario: () => ({ claims: { aud: 'another-client' } }), reason: /\baud\b/ },
  { what: 'with several audiences and no azp', scenario: (ctx) => ({ claims: { aud: [ctx.clientId, 'another-client'] } }), reason: /several audiences/ },
  {
    what: 'whose azp names another client',
    scenario: (ctx) => ({ claims: { aud: [ctx.clientId, 'another-client'], azp: 'another-client' } }),
    reason: /\bazp\b/,
  },
  { what: 'whose only audience is this client but whose azp names another', scenario: () => ({ claims: { azp: 'another-client' } }), reason: /\bazp\b/ },
  {
    what: 'that expired beyond the 60 s skew (exp)',
    scenario: (ctx) => ({ claims: { iat: ctx.now - 600, auth_time: ctx.now - 600, exp: ctx.now - 90 } }),
    reason: /expired/,
  },
  { what: 'issued in the future beyond the 60 s skew (iat)', scenario: (ctx) => ({ claims: { iat: ctx.now + 120, exp: ctx.now + 600 } }), reason: /\biat\b/ },
  { what: 'without exp', scenario: () => ({ claims: { exp: undefined } }), reason: /\bexp\b/ },
  { what: 'without iat', scenario: () => ({ claims: { iat: undefined } }), reason: /\biat\b/ },
  { what: 'without sub', scenario: () => ({ claims: { sub: undefined } }), reason: /\bsub\b/ },
  { what: 'with an empty sub', scenario: () => ({ claims: { sub: '' } }), reason: /\bsub\b/ },
  { what: 'without nonce', scenario: () => ({ claims: { nonce: undefined } }), reason: /nonce/ },
  { what: 'carrying the nonce of another login', scenario: () => ({ claims: { nonce: 'nonce-of-another-login-0123456789abcdefghij' } }), reason: /nonce/ },
  { what: 'that is not a JWT at all', scenario: () => ({ idToken: 'not-a-jwt' }), reason: /malformed/ },
];

describe('ID token validation against a rogue provider (OpenID RP conformance)', () => {
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

  describe('accepts correct tokens', () => {
    it('signs in with a correctly signed RS256 ID token', async () => {
      expectSignedIn(await stack.login());
    });

    it('signs in with a correctly signed ES256 ID token', async () => {
      expectSignedIn(await stack.login(() => ({ key: 'es256' })));
    });

    it('signs in with several audiences when azp names this client', async () => {
      expectSignedIn(await stack.login((ctx) => ({ claims: { aud: [ctx.clientId, 'another-client'], azp: ctx.clientId } })));
    });

    it('signs in with a token without kid when exactly one published key fits its algorithm (rp-id_token-kid-absent-single-jwks)', async () => {
      expectSignedIn(await stack.login(() => ({ key: 'es256', header: { kid: undefined } })));
    });

    it('signs in when iat is ahead of the gateway clock by less than the 60 s skew', async () => {
      expectSignedIn(await stack.login((ctx) => ({ claims: { iat: ctx.now + 30, auth_time: ctx.now + 30 } })));
    });

    // OIDC_CLOCK_SKEW_S is documented as the tolerance for exp as well: a provider clock 30 s behind is not an attack.
    it('signs in when exp passed less than the 60 s skew ago', async () => {
      expectSignedIn(await stack.login((ctx) => ({ claims: { iat: ctx.now - 300, auth_time: ctx.now - 300, exp: ctx.now - 30 } })));
    });
  });

  describe('rejects every bad ID token with 401 id_token_invalid and no session', () => {
    it.each(invalidIdTokens)('rejects an ID token $what', async ({ scenario, reason }) => {
      const outcome = await stack.login(scenario);
      expect(outcome.callback.problem?.detail).toMatch(reason);
      await expectRejectedWithoutSession(stack, outcome, 401, 'id_token_invalid');
    });
  });

  describe('key rotation', () => {
    it('accepts a token from a key published after start-up, refetching the JWKS exactly once', async () => {
      stack.rogue.publish('rotated');
      const fetchesBefore = stack.rogue.jwksRequests;
      expectSignedIn(await stack.login(() => ({ key: 'rotated' })));
      expect(stack.rogue.jwksRequests).toBe(fetchesBefore + 1);
      // cached from now on
      expectSignedIn(await stack.login(() => ({ key: 'rotated' })));
      expect(stack.rogue.jwksRequests).toBe(fetchesBefore + 1);
    });

    it('rejects a token whose kid is never published with 401 id_token_invalid after one JWKS refetch', async () => {
      const fetchesBefore = stack.rogue.jwksRequests;
      const outcome = await stack.login(() => ({ key: 'unpublished' }));
      expect(stack.rogue.jwksRequests).toBe(fetchesBefore + 1);
      expect(outcome.callback.problem?.detail).toMatch(/does not publish/);
      await expectRejectedWithoutSession(stack, outcome, 401, 'id_token_invalid');
    });

    it('answers 503 provider_unavailable with Retry-After when the JWKS cannot be refetched for an unknown kid, and keeps the cached keys', async () => {
      stack.rogue.jwksOverride = { status: 500, body: '{"error":"server_error"}' };
      const outcome = await stack.login(() => ({ key: 'unpublished' }));
      expect(outcome.callback.retryAfter).toBe('5');
      await expectRejectedWithoutSession(stack, outcome, 503, 'provider_unavailable');
    });
  });

  it('logs nothing at error level and never an ID token or the client secret', () => {
    expect(stack.rogue.issuedIdTokens.length).toBeGreaterThan(0);
    expectCleanLogs(stack);
  });
});
