import type { IdTokenClaims } from '../oidc/id-token.validator.js';
import { ProviderUnavailableError, TokenRequestRejectedError } from '../oidc/oidc.errors.js';
import type { TokenResponse } from '../oidc/token-client.js';
import { exchangeCode, receiveCallback, validateIdToken, type ResponseIssuer } from './login-callback.js';
import type { LoginTransaction } from './login-transaction.store.js';

const ISSUER = 'https://op.example';
const lenient: ResponseIssuer = { accepted: [ISSUER], promised: false };
const strict: ResponseIssuer = { accepted: [ISSUER], promised: true };
const transaction: LoginTransaction = { state: 's', nonce: 'n', codeVerifier: 'v', returnTo: '/x', createdAt: 0 };

describe('receiveCallback', () => {
  it('reads code and state and ignores parameters it does not know (session_state)', () => {
    expect(receiveCallback({ code: 'c', state: 's', session_state: 'abc.def', iss: ISSUER }, lenient)).toEqual({ code: 'c', state: 's' });
  });

  it.each([
    ['another issuer', { code: 'c', state: 's', iss: 'https://evil.example' }, lenient, 'login_issuer_mismatch'],
    ['no iss from a provider that promised one', { code: 'c', state: 's' }, strict, 'login_issuer_mismatch'],
    ['a mix-up attacker\'s error', { error: 'access_denied', iss: 'https://evil.example' }, lenient, 'login_issuer_mismatch'],
    ['access_denied', { error: 'access_denied' }, lenient, 'login_denied'],
    ['interaction_required', { error: 'interaction_required' }, lenient, 'login_required'],
    ['a provider\'s own error code', { error: 'AADSTS50105' }, lenient, 'login_failed'],
    ['no state', { code: 'c' }, lenient, 'login_state_mismatch'],
    ['a repeated code', { code: ['a', 'b'], state: 's' }, lenient, 'bad_request'],
  ])('refuses %s', (_name, query, issuer, code) => {
    expect(() => receiveCallback(query, issuer)).toThrow(expect.objectContaining({ code }));
  });

  it('names a non-standard error code in the problem, and replaces one that is not word-like', () => {
    expect(() => receiveCallback({ error: 'temporarily_unavailable.x' }, lenient)).toThrow(expect.objectContaining({ code: 'login_failed', detail: expect.stringContaining('temporarily_unavailable.x') }));
    expect(() => receiveCallback({ error: '<script>' }, lenient)).toThrow(expect.objectContaining({ detail: expect.stringContaining('invalid_error_code') }));
  });
});

describe('exchangeCode', () => {
  const tokens: TokenResponse = { access_token: 'at', token_type: 'bearer', id_token: 'id' };

  it('sends the transaction\'s PKCE verifier and requires an ID token', async () => {
    const seen: string[] = [];
    await expect(exchangeCode((code, verifier) => (seen.push(code, verifier), Promise.resolve(tokens)), 'c', transaction)).resolves.toMatchObject({ id_token: 'id' });
    expect(seen).toEqual(['c', 'v']);
    await expect(exchangeCode(() => Promise.resolve({ access_token: 'at', token_type: 'Bearer' }), 'c', transaction)).rejects.toMatchObject({ code: 'token_response_invalid', status: 502 });
  });

  it('turns a refused code into login_code_rejected and lets an outage through as 503', async () => {
    await expect(exchangeCode(() => Promise.reject(new TokenRequestRejectedError('invalid_grant', 'authorization_code')), 'c', transaction)).rejects.toMatchObject({ code: 'login_code_rejected', status: 400 });
    await expect(exchangeCode(() => Promise.reject(new ProviderUnavailableError()), 'c', transaction)).rejects.toMatchObject({ code: 'provider_unavailable' });
  });
});

describe('validateIdToken', () => {
  const tokens = { access_token: 'at', token_type: 'Bearer', id_token: 'id' };
  const NOW_S = 1_700_000_000;
  const now = { ms: NOW_S * 1000, skewS: 60 };
  const claimsWith = (extra: Record<string, unknown>): IdTokenClaims => ({ iss: ISSUER, sub: 'u', exp: NOW_S + 300, iat: NOW_S, ...extra });

  it('checks the ID token against the transaction\'s nonce', async () => {
    const claims = claimsWith({});
    const seen: string[] = [];
    await expect(validateIdToken((idToken, nonce) => (seen.push(idToken, nonce), Promise.resolve(claims)), tokens, transaction, now)).resolves.toBe(claims);
    expect(seen).toEqual(['id', 'n']);
  });

  it('tolerates an absent or 0 auth_time when max_age was not requested', async () => {
    for (const claims of [claimsWith({}), claimsWith({ auth_time: 0 })]) {
      await expect(validateIdToken(() => Promise.resolve(claims), tokens, transaction, now)).resolves.toBe(claims);
    }
  });

  it('requires a recent enough auth_time when max_age was requested', async () => {
    const withMaxAge: LoginTransaction = { ...transaction, maxAgeS: 600 };
    const recent = claimsWith({ auth_time: NOW_S - 600 });
    await expect(validateIdToken(() => Promise.resolve(recent), tokens, withMaxAge, now)).resolves.toBe(recent);
    for (const claims of [claimsWith({}), claimsWith({ auth_time: 0 }), claimsWith({ auth_time: NOW_S - 661 })]) {
      await expect(validateIdToken(() => Promise.resolve(claims), tokens, withMaxAge, now)).rejects.toMatchObject({ code: 'id_token_invalid' });
    }
  });

  it('refuses an ID token whose acr is not among the acr_values the step-up asked for', async () => {
    const stepUp: LoginTransaction = { ...transaction, acrValues: ['urn:example:mfa', 'urn:example:hwk'] };
    for (const acr of ['urn:example:mfa', 'urn:example:hwk']) {
      const claims = claimsWith({ acr });
      await expect(validateIdToken(() => Promise.resolve(claims), tokens, stepUp, now)).resolves.toBe(claims);
    }
    for (const claims of [claimsWith({}), claimsWith({ acr: 'urn:example:pwd' }), claimsWith({ acr: ['urn:example:mfa'] }), claimsWith({ acr: '' })]) {
      await expect(validateIdToken(() => Promise.resolve(claims), tokens, stepUp, now)).rejects.toMatchObject({ code: 'id_token_invalid', status: 401 });
    }
    // without acr_values any acr (or none) is the provider's business
    const plain = claimsWith({ acr: 'urn:example:pwd' });
    await expect(validateIdToken(() => Promise.resolve(plain), tokens, transaction, now)).resolves.toBe(plain);
  });
});
