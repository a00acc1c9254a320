import { parseAcrValues, parseMaxAge, stepUpLoginUrl } from './step-up.js';

describe('step-up parameters', () => {
  it('accepts acr_values only when every value is allowed, once each, in the order given', () => {
    expect(parseAcrValues('b a  b', ['a', 'b'])).toEqual(['b', 'a']);
    for (const raw of ['', '   ', 'a c', 'a'.repeat(257)]) expect(parseAcrValues(raw, ['a', 'b'])).toBeUndefined();
    expect(parseAcrValues('a', [])).toBeUndefined();
  });

  it('accepts max_age as 0 to 999999999 whole seconds', () => {
    expect(parseMaxAge('0')).toBe(0);
    expect(parseMaxAge('999999999')).toBe(999_999_999);
    for (const raw of ['', '-1', '1.0', '1e3', '0x10', '1000000000', ' 1']) expect(parseMaxAge(raw)).toBeUndefined();
  });

  it('builds a login URL asking for exactly the step-up, percent-encoded, without returnTo', () => {
    expect(stepUpLoginUrl({ acrValues: ['urn:example:mfa', 'phr&x=1'], maxAgeS: 60 })).toBe('/auth/login?acr_values=urn%3Aexample%3Amfa%20phr%26x%3D1&max_age=60');
    expect(stepUpLoginUrl({ maxAgeS: 0 })).toBe('/auth/login?max_age=0');
    expect(stepUpLoginUrl({ acrValues: ['a'] })).toBe('/auth/login?acr_values=a');
  });
});
