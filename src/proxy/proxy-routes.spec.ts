import type { ProxyRoute } from '../config/config.js';
import { matchRoute, normalisePath } from './proxy-routes.js';

const api: ProxyRoute = { prefix: '/api', target: 'http://api:8080', stripPrefix: false };
const orders: ProxyRoute = { prefix: '/api/orders', target: 'http://orders:8080', stripPrefix: true };
const routes = [orders, api];

describe('matchRoute', () => {
  it('forwards the raw path and query unchanged', () => {
    expect(matchRoute([api], '/api/items/a%2Fb?x=1&y=%20')).toEqual({ route: api, upstreamPath: '/api/items/a%2Fb?x=1&y=%20' });
  });

  it('picks the longest prefix and strips it when configured', () => {
    expect(matchRoute(routes, '/api/orders/42?full=1')).toEqual({ route: orders, upstreamPath: '/42?full=1' });
    expect(matchRoute(routes, '/api/orders')).toEqual({ route: orders, upstreamPath: '/' });
    expect(matchRoute(routes, '/api/ordersx')).toEqual({ route: api, upstreamPath: '/api/ordersx' });
  });

  it.each(['/api/../admin', '/api/%2e%2e/admin', '/api/orders/../users', '/api/orders/%2E%2E/x', '/api/..\\admin'])('refuses %s, which leaves its route', (url) => {
    expect(matchRoute(routes, url)).toBe('escapes');
  });

  it('keeps dot segments that stay inside the route', () => {
    expect(matchRoute([api], '/api/a/../b')).toEqual({ route: api, upstreamPath: '/api/a/../b' });
  });

  it('matches nothing outside the configured prefixes', () => {
    expect(matchRoute(routes, '/apix')).toBeUndefined();
    expect(matchRoute(routes, '/other')).toBeUndefined();
  });
});

describe('normalisePath', () => {
  it('resolves plain and encoded dot segments but keeps encoded slashes', () => {
    expect(normalisePath('/api/a/./b/../c')).toBe('/api/a/c');
    expect(normalisePath('/api/%2e%2e/x')).toBe('/x');
    expect(normalisePath('/api/a%2Fb')).toBe('/api/a%2Fb');
  });
});
