import { stepUpChallenge } from './step-up-challenge.js';

const ALLOWED = ['urn:example:mfa', 'urn:example:hwk'];

describe('stepUpChallenge', () => {
  it('takes acr_values and max_age from a Bearer or DPoP insufficient_user_authentication challenge (RFC 9470 §3)', () => {
    expect(stepUpChallenge('Bearer error="insufficient_user_authentication", acr_values="urn:example:mfa urn:example:hwk", max_age="300"', ALLOWED)).toEqual({
      acrValues: ['urn:example:mfa', 'urn:example:hwk'],
      maxAgeS: 300,
    });
    expect(stepUpChallenge('dpop algs="ES256", error=insufficient_user_authentication, max_age=0', [])).toEqual({ maxAgeS: 0 });
    // the step-up challenge need not be the first one
    expect(stepUpChallenge('Basic realm="x", Bearer error="insufficient_user_authentication", acr_values="urn:example:mfa"', ALLOWED)).toEqual({ acrValues: ['urn:example:mfa'] });
  });

  it('leaves any other 401 alone: other errors and schemes, values outside OIDC_ACR_VALUES_ALLOWED, bad max_age, nothing asked for, malformed fields', () => {
    for (const header of [
      undefined,
      'Bearer error="invalid_token"',
      'Bearer realm="api"',
      'Basic error="insufficient_user_authentication", acr_values="urn:example:mfa"',
      'Bearer error="insufficient_user_authentication", acr_values="urn:example:mfa urn:example:other"',
      'Bearer error="insufficient_user_authentication", acr_values=""',
      'Bearer error="insufficient_user_authentication", max_age="-1"',
      'Bearer error="insufficient_user_authentication", acr_values="urn:example:mfa", max_age="soon"',
      'Bearer error="insufficient_user_authentication"',
      'Bearer error="insufficient_user_authentication", acr_values="urn:example:mfa',
      'Bearer error="insufficient_user_authentication", acr_values="urn:example:mfa", acr_values="urn:example:hwk"',
    ]) {
      expect([header, stepUpChallenge(header, ALLOWED)]).toEqual([header, undefined]);
    }
    expect(stepUpChallenge('Bearer error="insufficient_user_authentication", acr_values="urn:example:mfa"', [])).toBeUndefined();
  });
});
