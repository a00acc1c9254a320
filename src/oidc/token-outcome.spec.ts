import { classifyTokenAnswer, parseRetryAfter, type TokenAnswer } from './token-outcome.js';

const http = (status: number, error?: string): TokenAnswer => ({ kind: 'http', status, error });

describe('the token-endpoint outcome table', () => {
  describe('row 1: the provider is unavailable (503, session kept)', () => {
    it.each<[string, TokenAnswer]>([
      ['a network error or timeout', { kind: 'network' }],
      ['408', http(408)],
      ['429 with a JSON slow_down', http(429, 'slow_down')],
      ['429 without a body', http(429)],
      ['500', http(500)],
      ['503 with an HTML page', http(503)],
      ['599', http(599)],
      ['400 temporarily_unavailable', http(400, 'temporarily_unavailable')],
      ['400 slow_down', http(400, 'slow_down')],
      ['403 temporarily_unavailable', http(403, 'temporarily_unavailable')],
      ['400 use_dpop_nonce (still, after the retry with the provider\'s nonce)', http(400, 'use_dpop_nonce')],
    ])('%s', (_name, answer) => {
      expect(classifyTokenAnswer(answer)).toEqual({ row: 1, outcome: 'provider_unavailable' });
    });
  });

  describe('row 2: the gateway\'s client credentials were refused (502, session kept)', () => {
    it.each<[string, TokenAnswer]>([
      ['401 without a body', http(401)],
      ['401 invalid_client', http(401, 'invalid_client')],
      ['400 invalid_client', http(400, 'invalid_client')],
      ['400 unauthorized_client', http(400, 'unauthorized_client')],
      ['403 unauthorized_client', http(403, 'unauthorized_client')],
      ['400 invalid_dpop_proof (the gateway\'s key or clock)', http(400, 'invalid_dpop_proof')],
    ])('%s', (_name, answer) => {
      expect(classifyTokenAnswer(answer)).toEqual({ row: 2, outcome: 'client_authentication_failed' });
    });
  });

  describe('row 3: the grant is rejected (a refresh ends the session, a login fails)', () => {
    it.each<[string, TokenAnswer]>([
      ['400 invalid_grant', http(400, 'invalid_grant')],
      ['400 with a non-standard code', http(400, 'token_revoked')],
      ['400 with an empty or non-JSON body (glewlwyd, revoked refresh token)', http(400)],
      ['403 carrying an OAuth error (glewlwyd, bad code)', http(403, 'invalid_code')],
    ])('%s', (_name, answer) => {
      expect(classifyTokenAnswer(answer)).toEqual({ row: 3, outcome: 'grant_rejected' });
    });
  });

  describe('row 4: any other 4xx is the provider (or what is in front of it) being unavailable', () => {
    it.each<[string, TokenAnswer]>([
      ['a WAF\'s HTML 403', http(403)],
      ['404', http(404)],
      ['405 with an OAuth-looking error', http(405, 'invalid_request')],
      ['418', http(418)],
    ])('%s', (_name, answer) => {
      expect(classifyTokenAnswer(answer)).toEqual({ row: 4, outcome: 'provider_unavailable' });
    });
  });

  describe('row 5: a token response that is not DPoP-bound though a proof was sent (502 token_type_invalid, session kept)', () => {
    it('200 with token_type Bearer under OIDC_DPOP', () => {
      expect(classifyTokenAnswer({ kind: 'http', status: 200, error: undefined, unboundToken: true })).toEqual({ row: 5, outcome: 'token_type_invalid' });
    });
  });

  describe('row 6: a 2xx that is not a valid token response (502, session kept)', () => {
    it.each<[string, TokenAnswer]>([
      ['200', http(200)],
      ['201', http(201)],
      ['200 with an error member', http(200, 'invalid_grant')],
    ])('%s', (_name, answer) => {
      expect(classifyTokenAnswer(answer)).toEqual({ row: 6, outcome: 'token_response_invalid' });
    });
  });
});

describe('parseRetryAfter', () => {
  const now = Date.UTC(2026, 11, 1, 9, 0, 0);

  it('reads delta-seconds', () => {
    expect(parseRetryAfter('7', now)).toBe(7);
  });

  it('reads an HTTP-date relative to the clock', () => {
    expect(parseRetryAfter(new Date(now + 42_000).toUTCString(), now)).toBe(42);
  });

  it('caps at 300 seconds and never goes below 0', () => {
    expect(parseRetryAfter('86400', now)).toBe(300);
    expect(parseRetryAfter(new Date(now - 60_000).toUTCString(), now)).toBe(0);
  });

  it('is undefined when absent or unreadable', () => {
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
  });
});
