import { sharesGrant } from './login-flow.service.js';

describe('sharesGrant (whether signing in again may revoke the replaced session\'s refresh token)', () => {
  it('is true only for the same provider session of the same user', () => {
    expect(sharesGrant({ providerSid: 'p1', sub: 'u' }, { providerSid: 'p1', sub: 'u' })).toBe(true);
    expect(sharesGrant({ providerSid: 'p1', sub: 'u' }, { providerSid: 'p2', sub: 'u' })).toBe(false);
    expect(sharesGrant({ providerSid: 'p1', sub: 'u' }, { providerSid: 'p1', sub: 'v' })).toBe(false);
    expect(sharesGrant({ providerSid: undefined, sub: 'u' }, { providerSid: undefined, sub: 'u' })).toBe(false);
  });
});
