import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SAMPLE_SPA_DIR } from '../../src/spa/spa.routes.js';
import { startBehaviourUpstream, type TestUpstream } from '../support/fault-upstreams.js';
import { startGateway, type RunningGateway } from '../support/gateway.js';
import { freePort } from '../support/ports.js';
import { rawRequest, upgradeAndEcho } from '../support/raw-http.js';

const NAVIGATION = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'sec-fetch-mode': 'navigate' };
const INDEX_HTML = '<!doctype html><title>test spa</title><p>index-marker</p>';
const SECRET = 'outside-the-spa-folder-marker';

describe('the SPA from SPA_DIR', () => {
  let folder: string;
  let gateway: RunningGateway;

  beforeAll(async () => {
    // <tmp>/package.json sits next to the SPA folder: what a traversal would reach for
    folder = await mkdtemp(join(tmpdir(), 'bff-spa-'));
    const dir = join(folder, 'public');
    await mkdir(join(dir, 'assets'), { recursive: true });
    await mkdir(join(dir, '.git'), { recursive: true });
    await writeFile(join(folder, 'package.json'), JSON.stringify({ name: SECRET }));
    await writeFile(join(dir, 'index.html'), INDEX_HTML);
    await writeFile(join(dir, 'assets', 'app.3f9a1c2b.js'), 'console.log("hashed");');
    await writeFile(join(dir, 'assets', 'index-DsQ3aZ1x.css'), 'body{}');
    await writeFile(join(dir, 'robots.txt'), 'User-agent: *');
    await writeFile(join(dir, 'report'), 'an extensionless file');
    await writeFile(join(dir, '.env'), `SECRET=${SECRET}`);
    await writeFile(join(dir, '.git', 'config'), SECRET);
    gateway = await startGateway({ SPA_DIR: dir });
  });

  afterAll(async () => {
    await gateway.close();
    await rm(folder, { recursive: true, force: true });
  });

  it('serves index.html at / with no-cache and the gateway security headers', async () => {
    const res = await fetch(`${gateway.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('etag')).not.toBeNull();
    expect(await res.text()).toBe(INDEX_HTML);
  });

  it('answers a browser navigation to a client-side route with index.html', async () => {
    const res = await fetch(`${gateway.url}/orders/42?tab=items`, { headers: NAVIGATION });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(await res.text()).toBe(INDEX_HTML);
  });

  it('answers HEAD of a client-side route like GET, without a body', async () => {
    const res = await fetch(`${gateway.url}/settings/`, { method: 'HEAD', headers: NAVIGATION });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await res.text()).toBe('');
  });

  it('serves an existing file at an extensionless path instead of index.html', async () => {
    const res = await fetch(`${gateway.url}/report`, { headers: NAVIGATION });
    expect(await res.text()).toBe('an extensionless file');
  });

  it('caches content-hashed assets for a year as immutable', async () => {
    const script = await fetch(`${gateway.url}/assets/app.3f9a1c2b.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    expect(script.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(await script.text()).toBe('console.log("hashed");');
    const style = await fetch(`${gateway.url}/assets/index-DsQ3aZ1x.css`);
    expect(style.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
  });

  it('makes files without a content hash revalidate, and answers a matching ETag with 304', async () => {
    const first = await fetch(`${gateway.url}/robots.txt`);
    expect(first.headers.get('cache-control')).toBe('no-cache');
    const etag = first.headers.get('etag') ?? '';
    // raw: fetch() adds Cache-Control: no-cache to conditional requests, which forces a full answer
    const again = await rawRequest(gateway.url, '/robots.txt', { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
  });

  it('answers a missing asset with a 404 problem, never with index.html', async () => {
    for (const headers of [{ accept: '*/*' }, NAVIGATION]) {
      const res = await fetch(`${gateway.url}/assets/missing.js`, { headers });
      expect(res.status).toBe(404);
      expect(res.headers.get('cache-control') ?? '').not.toContain('immutable');
      expect(await res.text()).not.toContain('index-marker');
    }
    const json = await fetch(`${gateway.url}/assets/missing.js`, { headers: { accept: 'application/json', 'x-request-id': 'spa-404' } });
    expect(json.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await json.json()).toEqual({ type: '/problems/not_found', title: 'Not found', status: 404, code: 'not_found', instance: 'spa-404' });
  });

  it('answers a client-side route requested without accepting HTML with a 404', async () => {
    const res = await fetch(`${gateway.url}/orders/42`, { headers: { accept: 'application/json' } });
    expect(res.status).toBe(404);
  });

  it('keeps unknown gateway paths as 404 problems, even for browser navigations', async () => {
    for (const path of ['/auth/nowhere', '/auth', '/healthz/extra', '/readyz/extra', '/metrics/extra']) {
      const json = await fetch(`${gateway.url}${path}`, { headers: { accept: 'application/json' } });
      expect({ path, status: json.status, type: json.headers.get('content-type') }).toEqual({ path, status: 404, type: expect.stringMatching(/^application\/problem\+json/) });
      expect(((await json.json()) as { code: string }).code).toBe('not_found');
      const page = await fetch(`${gateway.url}${path}`, { headers: NAVIGATION });
      expect(page.status).toBe(404);
      const html = await page.text();
      expect(html).toContain('<h1>Not found</h1>');
      expect(html).not.toContain('index-marker');
    }
  });

  it('answers other methods on SPA paths with a 404 problem', async () => {
    const res = await fetch(`${gateway.url}/orders/42`, { method: 'POST', headers: { accept: 'application/json', 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { code: string }).code).toBe('not_found');
  });

  it('never serves dotfiles', async () => {
    for (const path of ['/.env', '/.git/config', '/.git/', '/.git', '/%2eenv', '/assets/.hidden/route']) {
      for (const headers of [{ accept: '*/*' }, NAVIGATION]) {
        const res = await rawRequest(gateway.url, path, { headers });
        expect({ path, status: res.status }).toEqual({ path, status: 404 });
        expect(res.body).not.toContain(SECRET);
      }
    }
  });

  it('refuses paths that would leave the SPA folder, however they are encoded', async () => {
    const expected = JSON.parse(await readFile(join(folder, 'package.json'), 'utf8')) as { name: string };
    expect(expected.name).toBe(SECRET);
    for (const path of [
      '/../package.json',
      '/%2e%2e/package.json',
      '/%2E%2E%2Fpackage.json',
      '/assets/../../package.json',
      '/assets/..%2f..%2fpackage.json',
      '/assets/%2e%2e/%2e%2e/package.json',
      '/..%5cpackage.json',
      '/..\\package.json',
      '//package.json',
    ]) {
      for (const headers of [{ accept: 'application/json' }, NAVIGATION]) {
        const res = await rawRequest(gateway.url, path, { headers });
        expect({ path, status: res.status }).toEqual({ path, status: 400 });
        expect(res.body).not.toContain(SECRET);
        expect(res.body).not.toContain('index-marker');
      }
    }
    const problem = await rawRequest(gateway.url, '/%2e%2e/package.json', { headers: { accept: 'application/json' } });
    expect(JSON.parse(problem.body)).toMatchObject({ status: 400, code: 'invalid_path' });
  });
});

describe('the bundled sample SPA (neither SPA_DIR nor SPA_UPSTREAM_URL)', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway();
  });

  afterAll(async () => {
    await gateway.close();
  });

  it('is found relative to the module, in demo/spa', async () => {
    expect(SAMPLE_SPA_DIR.replace(/\\/g, '/')).toMatch(/\/demo\/spa\/$/);
    expect(await readFile(join(SAMPLE_SPA_DIR, 'index.html'), 'utf8')).toContain('bff-gateway sample app');
  });

  it('serves the sample app under a strict Content-Security-Policy without inline scripts', async () => {
    const res = await fetch(`${gateway.url}/some/client/route`, { headers: NAVIGATION });
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await res.text();
    expect(html).toContain('bff-gateway sample app');
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/\son[a-z]+=/i);
  });

  it('serves the sample app script and stylesheet', async () => {
    for (const [path, type] of [
      ['/app.js', /javascript/],
      ['/style.css', /^text\/css/],
    ] as const) {
      const res = await fetch(`${gateway.url}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(type);
      expect(res.headers.get('cache-control')).toBe('no-cache');
    }
  });
});

describe('the SPA from a frontend dev server (SPA_UPSTREAM_URL)', () => {
  let devServer: TestUpstream;
  let gateway: RunningGateway;
  const credentials = { cookie: '__Host-bff-session=sealed-session-value; theme=dark', authorization: 'Bearer must-not-leak' };

  beforeAll(async () => {
    devServer = await startBehaviourUpstream();
    gateway = await startGateway({ SPA_UPSTREAM_URL: devServer.url });
  });

  afterAll(async () => {
    await gateway.close();
    await devServer.close();
  });

  it('proxies SPA paths to the dev server with the path and query unchanged and without credentials', async () => {
    const res = await fetch(`${gateway.url}/src/main.ts?t=123`, { headers: { ...credentials, 'x-request-id': 'dev-1' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-upstream')).toBe('behaviour');
    expect(res.headers.get('x-request-id')).toBe('dev-1');
    const seen = devServer.seen.find((entry) => entry.url === '/src/main.ts?t=123');
    expect(seen?.method).toBe('GET');
    expect(seen?.headers.cookie).toBeUndefined();
    expect(seen?.headers.authorization).toBeUndefined();
  });

  it('proxies request bodies to the dev server unread', async () => {
    const body = JSON.stringify({ hello: 'dev server' });
    const res = await fetch(`${gateway.url}/__plugin/endpoint`, { method: 'POST', headers: { ...credentials, 'content-type': 'application/json' }, body });
    expect(res.status).toBe(200);
    const seen = devServer.seen.find((entry) => entry.url === '/__plugin/endpoint');
    expect(seen?.bodyBytes).toBe(Buffer.byteLength(body));
    expect(seen?.headers.cookie).toBeUndefined();
  });

  it('keeps unknown gateway paths as 404 problems instead of proxying them', async () => {
    const before = devServer.seen.length;
    const res = await fetch(`${gateway.url}/auth/nowhere`, { headers: { accept: 'application/json' } });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { code: string }).code).toBe('not_found');
    expect(devServer.seen.length).toBe(before);
  });

  it('proxies the hot-reload WebSocket to the dev server without credentials', async () => {
    const { statusLine, echoed } = await upgradeAndEcho(gateway.url, '/@vite/hmr?token=abc', { ...credentials, origin: gateway.url }, 'hot-reload-ping');
    expect(statusLine).toContain(' 101 ');
    expect(echoed).toBe('hot-reload-ping');
    const seen = devServer.seen.find((entry) => entry.url === '/@vite/hmr?token=abc');
    expect(seen?.headers.upgrade).toBe('websocket');
    expect(seen?.headers.cookie).toBeUndefined();
    expect(seen?.headers.authorization).toBeUndefined();
  });

  it('does not forward WebSocket upgrades on gateway paths to the dev server', async () => {
    const before = devServer.seen.length;
    const { statusLine } = await upgradeAndEcho(gateway.url, '/auth/socket', { origin: gateway.url }, 'x');
    expect(statusLine).toMatch(/^HTTP\/1.1 404 /);
    expect(devServer.seen.length).toBe(before);
  });
});

describe('the SPA dev server when it is down', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway({ SPA_UPSTREAM_URL: `http://127.0.0.1:${await freePort()}` });
  });

  afterAll(async () => {
    await gateway.close();
  });

  it('answers 502 spa_dev_server_unavailable', async () => {
    const res = await fetch(`${gateway.url}/`, { headers: { accept: 'application/json', 'x-request-id': 'dev-down' } });
    expect(res.status).toBe(502);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({
      type: '/problems/spa_dev_server_unavailable',
      title: 'Frontend dev server unavailable',
      status: 502,
      code: 'spa_dev_server_unavailable',
      instance: 'dev-down',
    });
  });
});
