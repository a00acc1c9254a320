import { decodeJwt } from 'jose';
import { DpopKey } from '../oidc/dpop.js';
import { UpstreamDpop } from './upstream-dpop.js';

const NOW = Date.UTC(2026, 11, 1, 12, 0, 0);
const clock = { now: () => NOW };
const target = { protocol: 'https:', host: 'orders.internal:8443' };

describe('UpstreamDpop', () => {
  const key = DpopKey.generate();

  it('signs for the method and the route target\'s origin plus the upstream path, without the query, with ath and the clock\'s iat', () => {
    const binding = new UpstreamDpop(clock).bind(key, 'at-1', 'DELETE', target, '/api/orders/a%2Fb?force=1');
    expect(binding.authorization).toBe('DPoP at-1');
    expect(decodeJwt(binding.proof())).toMatchObject({ htm: 'DELETE', htu: 'https://orders.internal:8443/api/orders/a%2Fb', iat: NOW / 1000, ath: expect.any(String) });
    expect(decodeJwt(binding.proof())).not.toHaveProperty('nonce');
  });

  it('takes the nonce of a successful answer for the next request to that origin only (RFC 9449 §9)', () => {
    const dpop = new UpstreamDpop(clock);
    expect(dpop.bind(key, 'at', 'GET', target, '/a').answered(200, { 'dpop-nonce': 'n-200' })).toBeUndefined();
    expect(decodeJwt(dpop.bind(key, 'at', 'GET', target, '/b').proof())['nonce']).toBe('n-200');
    expect(decodeJwt(dpop.bind(key, 'at', 'GET', { protocol: 'https:', host: 'other.internal' }, '/b').proof())).not.toHaveProperty('nonce');
  });

  it('names the nonce to retry with when the answer is a use_dpop_nonce challenge', () => {
    const binding = new UpstreamDpop(clock).bind(key, 'at', 'GET', target, '/a');
    expect(binding.answered(401, { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': 'n-401' })).toBe('n-401');
    expect(decodeJwt(binding.proof('n-401'))['nonce']).toBe('n-401');
  });
});
