import { authenticationClaims } from './id-token.validator.js';

function jwt(payload: Record<string, unknown>): string {
  const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'RS256' })}.${part(payload)}.signature`;
}

describe('authenticationClaims (what /auth/me shows of how the user signed in)', () => {
  it('reads acr, amr and auth_time from the session\'s ID token', () => {
    expect(authenticationClaims(jwt({ sub: 'u', acr: 'urn:example:mfa', amr: ['pwd', 'otp'], auth_time: 1_700_000_000, nonce: 'n' }))).toEqual({
      acr: 'urn:example:mfa',
      amr: ['pwd', 'otp'],
      auth_time: 1_700_000_000,
    });
  });

  it('leaves out what is absent, malformed, or an auth_time of 0, and reads nothing from a token that is not a JWT', () => {
    expect(authenticationClaims(jwt({ sub: 'u' }))).toEqual({});
    expect(authenticationClaims(jwt({ acr: 2, amr: ['pwd', 1], auth_time: 0 }))).toEqual({});
    expect(authenticationClaims(jwt({ amr: 'pwd', auth_time: '1700000000' }))).toEqual({});
    expect(authenticationClaims('opaque')).toEqual({});
  });
});
