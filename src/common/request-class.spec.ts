import { requestClassOf } from './request-class.js';

describe('requestClassOf', () => {
  it.each([
    ['/api', 'api'],
    ['/api/', 'api'],
    ['/api/orders/1?x=1', 'api'],
    ['/apiary', 'spa'],
    ['/api?x', 'api'],
    ['/auth', 'auth'],
    ['/auth/login?returnTo=/api', 'auth'],
    ['/authors', 'spa'],
    ['/healthz', 'ops'],
    ['/readyz?x', 'ops'],
    ['/metrics', 'ops'],
    ['/metrics/x', 'ops'],
    ['/metricsx', 'spa'],
    ['/healthzone', 'spa'],
    ['/', 'spa'],
    ['/users/john.doe', 'spa'],
  ])('classifies %s as %s', (url, expected) => {
    expect(requestClassOf(url)).toBe(expected);
  });
});
