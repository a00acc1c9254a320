import { decodeSpaPath, isClientRoute, isDotfilePath, isGatewayPath, isHashedAsset } from './spa-paths.js';

const HTML = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

describe('isHashedAsset', () => {
  it.each([
    'app.3f9a1c2b.js',
    'main.3f9a1c2b.chunk.js',
    'main.3f9a1c2b4d5e6f708192.css',
    'index-DsQ3aZ1x.js',
    'index-D_3a-Zx1.js',
    'vendor-react-BxT9u2Qa.js',
    'chunk-ABCD1234.js',
    'logo-5f3e2a1b.svg',
  ])('recognises the content hash in %s', (name) => {
    expect(isHashedAsset(name)).toBe(true);
  });

  it.each([
    'index.html',
    'app.js',
    'favicon.ico',
    'my-component.js',
    'use-settings.js',
    'bootstrap.bundle.min.js',
    'jquery-3.7.1.min.js',
    'font-roboto-v30-latin.woff2',
    'app.deadbeef.js',
    'app.3f9a1c2b',
    'robots.txt',
  ])('treats %s as a file that may change under its name', (name) => {
    expect(isHashedAsset(name)).toBe(false);
  });
});

describe('isClientRoute', () => {
  it('treats a browser navigation to a path without an extension as a client route', () => {
    expect(isClientRoute({ method: 'GET', path: '/orders/42', accept: HTML })).toBe(true);
    expect(isClientRoute({ method: 'HEAD', path: '/settings/', accept: HTML })).toBe(true);
  });

  it('does not treat a file request as a client route', () => {
    expect(isClientRoute({ method: 'GET', path: '/assets/app.js', accept: HTML })).toBe(false);
    expect(isClientRoute({ method: 'GET', path: '/favicon.ico', accept: 'image/*' })).toBe(false);
  });

  it('does not treat a request that does not accept HTML as a client route', () => {
    expect(isClientRoute({ method: 'GET', path: '/orders/42', accept: 'application/json' })).toBe(false);
    expect(isClientRoute({ method: 'GET', path: '/orders/42', accept: undefined })).toBe(false);
  });

  it('does not treat other methods as a client route', () => {
    expect(isClientRoute({ method: 'POST', path: '/orders/42', accept: HTML })).toBe(false);
  });
});

describe('isGatewayPath', () => {
  it.each(['/auth', '/auth/nowhere', '/api', '/api/x', '/healthz', '/readyz', '/metrics', '/metrics/x'])('keeps %s for the gateway', (path) => {
    expect(isGatewayPath(path)).toBe(true);
  });

  it.each(['/', '/authors', '/apiary', '/healthzone', '/orders/auth'])('leaves %s to the SPA', (path) => {
    expect(isGatewayPath(path)).toBe(false);
  });
});

describe('isDotfilePath', () => {
  it.each(['/.env', '/.git/config', '/assets/.hidden/x.js', '/.well-known/'])('recognises %s as a dotfile path', (path) => {
    expect(isDotfilePath(path)).toBe(true);
  });

  it.each(['/', '/app.js', '/assets/app.3f9a1c2b.js', '/orders/42/'])('does not treat %s as a dotfile path', (path) => {
    expect(isDotfilePath(path)).toBe(false);
  });
});

describe('decodeSpaPath', () => {
  it('decodes the path and drops the query', () => {
    expect(decodeSpaPath('/caf%C3%A9/menu?x=1')).toBe('/café/menu');
    expect(decodeSpaPath('/')).toBe('/');
    expect(decodeSpaPath('/settings/')).toBe('/settings/');
  });

  it.each([
    '/../package.json',
    '/%2e%2e/package.json',
    '/%2E%2E%2Fpackage.json',
    '/assets/..%2f..%2fpackage.json',
    '/assets/%2e/app.js',
    '/./index.html',
    '//etc/passwd',
    '/assets//app.js',
    '/..%5cpackage.json',
    '/a%00b',
    '/%E0%A4%A',
  ])('refuses %s', (target) => {
    expect(decodeSpaPath(target)).toBeUndefined();
  });
});
