import { createHash } from 'node:crypto';
import { loadConfig, type Environment } from '../config/config.js';
import { jwkThumbprint } from '../oidc/dpop.js';
import { buildAuthorizationRequest } from './authorization-request.js';

const env: Environment = {
  OIDC_ISSUER: 'https://op.example',
  OIDC_CLIENT_ID: 'client',
  OIDC_CLIENT_SECRET: 'secret',
  SESSION_SECRET: 'x'.repeat(32),
  UPSTREAM_URL: 'https://api.example',
};
const NOW = 1_700_000_000_000;

function oidc(overrides: Environment = {}) {
  return loadConfig({ ...env, ...overrides }).oidc;
}

describe('buildAuthorizationRequest', () => {
  it('gives each login its own DPoP key under OIDC_DPOP: the transaction keeps it, the request sends its thumbprint as dpop_jkt', () => {
    const first = buildAuthorizationRequest(oidc({ OIDC_DPOP: 'true' }), {}, NOW);
    const second = buildAuthorizationRequest(oidc({ OIDC_DPOP: 'true' }), {}, NOW);
    const key = first.transaction.dpopKey;
    if (key === undefined) throw new Error('no DPoP key in the transaction');
    expect(first.params['dpop_jkt']).toBe(jwkThumbprint(key));
    expect(second.params['dpop_jkt']).not.toBe(first.params['dpop_jkt']);
    expect(buildAuthorizationRequest(oidc(), {}, NOW).transaction.dpopKey).toBeUndefined();
  });

  it('sends a fresh nonce and the S256 challenge of a fresh 256-bit verifier, and keeps them in the transaction', () => {
    const first = buildAuthorizationRequest(oidc(), {}, NOW);
    const second = buildAuthorizationRequest(oidc(), {}, NOW);
    const { transaction, params } = first;
    expect(transaction).toMatchObject({ returnTo: '/', createdAt: NOW });
    for (const value of [transaction.state, transaction.nonce, transaction.codeVerifier]) expect(value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(params).toEqual({
      nonce: transaction.nonce,
      code_challenge: createHash('sha256').update(transaction.codeVerifier).digest('base64url'),
      code_challenge_method: 'S256',
    });
    expect(second.transaction.state).not.toBe(transaction.state);
    expect(second.transaction.nonce).not.toBe(transaction.nonce);
    expect(second.transaction.codeVerifier).not.toBe(transaction.codeVerifier);
  });

  it('keeps a local returnTo and replaces any other with /', () => {
    expect(buildAuthorizationRequest(oidc(), { returnTo: '/orders?x=1' }, NOW).transaction.returnTo).toBe('/orders?x=1');
    expect(buildAuthorizationRequest(oidc(), { returnTo: '//evil.example' }, NOW).transaction.returnTo).toBe('/');
    expect(buildAuthorizationRequest(oidc(), { returnTo: ['/a', '/b'] }, NOW).transaction.returnTo).toBe('/');
  });

  it('passes prompt and login_hint to the strategy and refuses an unknown, repeated or oversized one', () => {
    expect(buildAuthorizationRequest(oidc(), { prompt: 'login', login_hint: 'bob' }, NOW)).toMatchObject({ prompt: 'login', loginHint: 'bob' });
    for (const query of [{ prompt: 'everything' }, { prompt: ['none', 'login'] }, { login_hint: 'x'.repeat(257) }, { login_hint: ['a'] }]) {
      expect(() => buildAuthorizationRequest(oidc(), query, NOW)).toThrow(expect.objectContaining({ code: 'bad_request', status: 400 }));
    }
  });

  it('adds OIDC_EXTRA_AUTH_PARAMS, below the protocol parameters', () => {
    const { params } = buildAuthorizationRequest(oidc({ OIDC_EXTRA_AUTH_PARAMS: 'audience=https://api.example&access_type=offline' }), {}, NOW);
    expect(params).toMatchObject({ audience: 'https://api.example', access_type: 'offline', code_challenge_method: 'S256' });
  });

  it('forwards the parameters OIDC_LOGIN_PARAMS_ALLOWED lists, over OIDC_EXTRA_AUTH_PARAMS, and no others', () => {
    const settings = oidc({ OIDC_LOGIN_PARAMS_ALLOWED: 'kc_idp_hint,ui_locales', OIDC_EXTRA_AUTH_PARAMS: 'ui_locales=en&audience=a' });
    const { params } = buildAuthorizationRequest(settings, { kc_idp_hint: 'github', ui_locales: 'fr', claims: '{}', nonce: 'forged', state: 'forged' }, NOW);
    expect(params).toMatchObject({ kc_idp_hint: 'github', ui_locales: 'fr', audience: 'a' });
    expect(params).not.toHaveProperty('claims');
    expect(params['nonce']).not.toBe('forged');
    for (const query of [{ kc_idp_hint: ['a', 'b'] }, { kc_idp_hint: 'x'.repeat(257) }, { kc_idp_hint: 'a\r\nb' }]) {
      expect(() => buildAuthorizationRequest(settings, query, NOW)).toThrow(expect.objectContaining({ code: 'bad_request' }));
    }
  });

  it('sends and records the step-up acr_values when OIDC_ACR_VALUES_ALLOWED lists each of them', () => {
    const settings = oidc({ OIDC_ACR_VALUES_ALLOWED: 'urn:example:mfa,urn:example:hwk' });
    const { params, transaction } = buildAuthorizationRequest(settings, { acr_values: 'urn:example:hwk  urn:example:mfa urn:example:hwk' }, NOW);
    expect(params['acr_values']).toBe('urn:example:hwk urn:example:mfa');
    expect(transaction.acrValues).toEqual(['urn:example:hwk', 'urn:example:mfa']);
    expect(buildAuthorizationRequest(settings, {}, NOW).transaction).not.toHaveProperty('acrValues');
    // a query value replaces one OIDC_EXTRA_AUTH_PARAMS sets
    const configured = oidc({ OIDC_ACR_VALUES_ALLOWED: 'urn:example:mfa', OIDC_EXTRA_AUTH_PARAMS: 'acr_values=urn:example:pwd' });
    expect(buildAuthorizationRequest(configured, { acr_values: 'urn:example:mfa' }, NOW).params['acr_values']).toBe('urn:example:mfa');
  });

  it('refuses acr_values that OIDC_ACR_VALUES_ALLOWED does not list (all of them when it is empty), repeated, empty or oversized', () => {
    const settings = oidc({ OIDC_ACR_VALUES_ALLOWED: 'urn:example:mfa' });
    for (const query of [{ acr_values: 'urn:example:mfa urn:example:other' }, { acr_values: ['urn:example:mfa', 'urn:example:mfa'] }, { acr_values: '' }, { acr_values: ' ' }, { acr_values: 'urn:example:mfa '.repeat(100) }]) {
      expect(() => buildAuthorizationRequest(settings, query, NOW)).toThrow(expect.objectContaining({ code: 'bad_request', status: 400 }));
    }
    expect(() => buildAuthorizationRequest(oidc(), { acr_values: 'urn:example:mfa' }, NOW)).toThrow(expect.objectContaining({ code: 'bad_request', detail: expect.stringContaining('OIDC_ACR_VALUES_ALLOWED') }));
  });

  it('sends and records max_age from the query, the stricter one when OIDC_EXTRA_AUTH_PARAMS has one too', () => {
    const fromQuery = buildAuthorizationRequest(oidc(), { max_age: '0' }, NOW);
    expect(fromQuery.params['max_age']).toBe('0');
    expect(fromQuery.transaction.maxAgeS).toBe(0);
    const configured = oidc({ OIDC_EXTRA_AUTH_PARAMS: 'max_age=300' });
    expect(buildAuthorizationRequest(configured, { max_age: '60' }, NOW)).toMatchObject({ params: { max_age: '60' }, transaction: { maxAgeS: 60 } });
    expect(buildAuthorizationRequest(configured, { max_age: '3600' }, NOW)).toMatchObject({ params: { max_age: '300' }, transaction: { maxAgeS: 300 } });
    for (const max_age of ['-1', '1.5', '1e3', ' 60', '', '1234567890', ['60', '60']]) {
      expect(() => buildAuthorizationRequest(oidc(), { max_age }, NOW)).toThrow(expect.objectContaining({ code: 'bad_request', status: 400 }));
    }
  });

  it('records max_age from OIDC_EXTRA_AUTH_PARAMS in the transaction, so auth_time is required at the callback', () => {
    expect(buildAuthorizationRequest(oidc({ OIDC_EXTRA_AUTH_PARAMS: 'max_age=300' }), {}, NOW).transaction.maxAgeS).toBe(300);
    expect(buildAuthorizationRequest(oidc(), {}, NOW).transaction).not.toHaveProperty('maxAgeS');
  });
});
