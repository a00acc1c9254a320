import { createHash } from 'node:crypto';
import { acceptsHtml } from '../common/request-class.js';
import { decodeSpaPath, isDotfilePath, isGatewayPath, isHashedAsset, isNavigation, isUnderPrefix } from './spa-paths.js';

const HTML = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

/** `count` pseudo-random hashes, the same on every run: `alphabet`-encoded digests of a counter. */
function sampleHashes(count: number, encode: (digest: Buffer) => string): string[] {
  return Array.from({ length: count }, (_, i) => encode(createHash('sha256').update(`asset ${i}`).digest()));
}
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

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
    // Vite/Rollup base64url hashes without a digit
    'hero-CLDdwZDr.png',
    'index-BpQxrTzK.css',
    'react-vendor-Ab_cDeF-.js',
    // esbuild and Angular CLI's application builder: base32, upper case, maybe without a digit
    'chunk-ABCDEFGH.js',
    'main-KQXRPLMN.js',
    'polyfills-FFHMD2TL.js',
    'styles-5INURTSO.css',
    // webpack 5 (xxhash64, 16 hex) and Angular CLI's webpack builder
    'main.7a3f2c9e1b4d6f80.js',
    'runtime.deadbeefcafebabe.js',
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
    'api-getUsers.js',
    'page-Settings.js',
    'nav-my_homePage.js',
    'site.webmanifest',
    'apple-touch-icon.png',
  ])('treats %s as a file that may change under its name', (name) => {
    expect(isHashedAsset(name)).toBe(false);
  });

  // the few that read like camelCase words (`UuhrMywg`) are left to SPA_IMMUTABLE_PATHS (/assets/)
  it('recognises 99% of Vite\'s 8-character base64url hashes and 97% of the quarter without a digit', () => {
    const hashes = sampleHashes(4000, (digest) => digest.toString('base64url').slice(0, 8));
    const withoutDigit = hashes.filter((hash) => !/\d/.test(hash));
    expect(withoutDigit.length).toBeGreaterThan(800);
    const missed = withoutDigit.filter((hash) => !isHashedAsset(`hero-${hash}.png`));
    expect(missed.length / withoutDigit.length).toBeLessThan(0.03);
    expect(hashes.filter((hash) => !isHashedAsset(`index-${hash}.js`)).length / hashes.length).toBeLessThan(0.01);
  });

  it('recognises every esbuild base32 hash, with or without a digit', () => {
    const hashes = sampleHashes(2000, (digest) => Array.from(digest.subarray(0, 8), (byte) => BASE32[byte % 32]).join(''));
    expect(hashes.filter((hash) => !/\d/.test(hash)).length).toBeGreaterThan(200);
    expect(hashes.filter((hash) => !isHashedAsset(`chunk-${hash}.js`))).toEqual([]);
  });
});

describe('isUnderPrefix', () => {
  it('matches files inside the hashed-output folders only', () => {
    expect(isUnderPrefix('/assets/index-CLDdwZDr.js', ['/assets/'])).toBe(true);
    expect(isUnderPrefix('/static/js/main.js', ['/assets/', '/static/'])).toBe(true);
    expect(isUnderPrefix('/assets', ['/assets/'])).toBe(false);
    expect(isUnderPrefix('/assetsx/a.js', ['/assets/'])).toBe(false);
    expect(isUnderPrefix('/assets/a.js', [])).toBe(false);
  });
});

describe('acceptsHtml', () => {
  it.each([HTML, 'text/html', 'TEXT/HTML; charset=utf-8', 'application/xhtml+xml', '*/*, text/html;q=0.1'])('finds HTML in %s', (accept) => {
    expect(acceptsHtml(accept)).toBe(true);
  });

  it.each([undefined, '', '*/*', 'application/json', 'image/avif,image/webp,*/*;q=0.8', 'text/css,*/*;q=0.1', 'text/html;q=0', 'text/htmlx'])('finds no HTML in %s', (accept) => {
    expect(acceptsHtml(accept)).toBe(false);
  });
});

describe('isNavigation', () => {
  it.each(['/orders/42', '/settings/', '/users/john.doe', '/releases/v1.2', '/people/ann@example.com', '/files/report.pdf'])(
    'treats a browser navigation to %s as a navigation, whatever its last segment looks like',
    (path) => {
      expect(isNavigation({ method: 'GET', path, accept: HTML })).toBe(true);
      expect(isNavigation({ method: 'HEAD', path, accept: HTML })).toBe(true);
    },
  );

  it('does not treat a request that does not accept HTML as a navigation', () => {
    expect(isNavigation({ method: 'GET', path: '/assets/app.js', accept: '*/*' })).toBe(false);
    expect(isNavigation({ method: 'GET', path: '/users/john.doe', accept: 'application/json' })).toBe(false);
    expect(isNavigation({ method: 'GET', path: '/orders/42', accept: undefined })).toBe(false);
  });

  it('does not treat other methods as a navigation', () => {
    expect(isNavigation({ method: 'POST', path: '/orders/42', accept: HTML })).toBe(false);
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
