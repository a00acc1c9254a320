import type { ProxyRoute } from '../config/config.js';
import { proxyRoute } from '../config/route-policy.js';
import { matchRoute, normalisePath } from './proxy-routes.js';

const api: ProxyRoute = proxyRoute({ prefix: '/api', target: 'http://api:8080' }, 30);
const orders: ProxyRoute = proxyRoute({ prefix: '/api/orders', target: 'http://orders:8080', stripPrefix: true }, 30);
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

  it.each(['/api//orders/42', '/api/./orders/42', '/api/x/../orders/42', '/api/x/%2E%2e/orders/42', '/api/%2e/orders//42'])('chooses the route on the normalised path: %s goes to /api/orders', (url) => {
    expect(matchRoute(routes, url)).toEqual({ route: orders, upstreamPath: '/42' });
  });

  it('forwards the raw path, empty and dot segments included, on a route that keeps its prefix', () => {
    expect(matchRoute([api], '/api//a/./b/../c?q=1')).toEqual({ route: api, upstreamPath: '/api//a/./b/../c?q=1' });
  });

  it('forwards the normalised remainder on a route that strips its prefix, never decoding %2F', () => {
    expect(matchRoute(routes, '/api/orders//a/./b/../c%2Fd?q=1')).toEqual({ route: orders, upstreamPath: '/a/c%2Fd?q=1' });
  });

  it.each(['/api/../admin', '/api/%2e%2e/admin', '/api/orders/../users', '/api/orders/%2E%2E/x', '/api/..\\admin', '/api//..//../admin', '/api/../../..'])('refuses %s, which leaves its route', (url) => {
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
  it.each([
    ['/api/a/./b/../c', '/api/a/c'],
    ['/api//a///b', '/api/a/b'],
    ['/api/%2e%2e/x', '/x'],
    ['/api/.%2E/x', '/x'],
    ['/api/a%2Fb', '/api/a%2Fb'],
    ['/api/a/', '/api/a/'],
    ['/api/a/.', '/api/a/'],
    ['/api/a/b/..', '/api/a/'],
    ['/', '/'],
    ['//', '/'],
    ['/api/%2e.x/y', '/api/%2e.x/y'],
  ])('normalises %s to %s', (raw, normalised) => {
    expect(normalisePath(raw)).toBe(normalised);
  });

  it('returns undefined for a path that climbs above the root', () => {
    expect(normalisePath('/api/../..')).toBeUndefined();
  });
});
