import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBehaviourUpstream, type TestUpstream } from '../support/fault-upstreams.js';
import { startGateway, type RunningGateway } from '../support/gateway.js';
import { freePort } from '../support/ports.js';
import { rawRequest } from '../support/raw-http.js';
import { startStack, type Stack } from '../support/stack.js';

const HTML_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
const NAVIGATION = { accept: HTML_ACCEPT, 'sec-fetch-mode': 'navigate' };
// what Chromium sends for <script type="module">, <img> and <link rel="stylesheet">
const SUBRESOURCES = [{ accept: '*/*' }, { accept: 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8' }, { accept: 'text/css,*/*;q=0.1' }];
const INDEX_HTML = '<!doctype html><title>spa</title><p>index-marker</p>';
const IMMUTABLE = 'public, max-age=31536000, immutable';
const STRICT_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

async function spaFolder(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bff-spa-intent-'));
  await mkdir(join(dir, 'assets'), { recursive: true });
  await writeFile(join(dir, 'index.html'), INDEX_HTML);
  await writeFile(join(dir, 'hero-CLDdwZDr.png'), 'png');
  await writeFile(join(dir, 'chunk-ABCDEFGH.js'), 'esbuild');
  await writeFile(join(dir, 'favicon.svg'), '<svg/>');
  await writeFile(join(dir, 'assets', 'plain.js'), 'no hash in this name');
  await writeFile(join(dir, 'assets', 'index-CLDdwZDr.js'), 'vite');
  await writeFile(join(dir, 'v1.2'), 'a file named like a version');
  return dir;
}

describe('SPA fallback by intent, and cache headers, from SPA_DIR', () => {
  let dir: string;
  let gateway: RunningGateway;

  beforeAll(async () => {
    dir = await spaFolder();
    gateway = await startGateway({ SPA_DIR: dir, SPA_CSP: STRICT_CSP });
  });

  afterAll(async () => {
    await gateway.close();
    await rm(dir, { recursive: true, force: true });
  });

  it.each(['/users/john.doe', '/releases/v1.2', '/people/ann@example.com', '/people/ann%40example.com', '/users/john%2Edoe', '/settings/', '/a/b.c/', '/files/report.pdf?download=1'])(
    'answers a navigation to the deep link %s with index.html',
    async (path) => {
      const res = await rawRequest(gateway.url, path, { headers: NAVIGATION });
      expect({ path, status: res.status, body: res.body }).toEqual({ path, status: 200, body: INDEX_HTML });
      expect(res.headers['cache-control']).toBe('no-cache');
      expect(res.headers['content-type']).toMatch(/^text\/html/);
    },
  );

  it('answers a missing file requested as a script, an image or a stylesheet with 404, never index.html', async () => {
    for (const path of ['/users/john.doe', '/missing.js', '/img/missing-CLDdwZDr.png', '/assets/missing.css']) {
      for (const headers of SUBRESOURCES) {
        const res = await rawRequest(gateway.url, path, { headers });
        expect({ path, accept: headers.accept, status: res.status }).toEqual({ path, accept: headers.accept, status: 404 });
        expect(res.body).not.toContain('index-marker');
      }
    }
  });

  it('answers a navigation to a missing file in the hashed-output folder with 404: a broken deployment, not a route', async () => {
    const res = await rawRequest(gateway.url, '/assets/index-Missing1.js', { headers: NAVIGATION });
    expect(res.status).toBe(404);
    expect(res.body).not.toContain('index-marker');
  });

  it('serves an existing file whose name looks like a version rather than index.html', async () => {
    const res = await rawRequest(gateway.url, '/v1.2', { headers: NAVIGATION });
    expect(res.body).toBe('a file named like a version');
  });

  it('caches hashed files for a year wherever they are, every file in SPA_IMMUTABLE_PATHS, and revalidates the rest', async () => {
    const cacheControl = async (path: string): Promise<string | null> => {
      const res = await fetch(`${gateway.url}${path}`);
      expect({ path, status: res.status }).toEqual({ path, status: 200 });
      return res.headers.get('cache-control');
    };
    expect(await cacheControl('/hero-CLDdwZDr.png')).toBe(IMMUTABLE);
    expect(await cacheControl('/chunk-ABCDEFGH.js')).toBe(IMMUTABLE);
    expect(await cacheControl('/assets/index-CLDdwZDr.js')).toBe(IMMUTABLE);
    expect(await cacheControl('/assets/plain.js')).toBe(IMMUTABLE);
    expect(await cacheControl('/favicon.svg')).toBe('no-cache');
    expect(await cacheControl('/index.html')).toBe('no-cache');
    expect(await cacheControl('/')).toBe('no-cache');
  });

  it('sends SPA_CSP with the app\'s pages, and the gateway\'s other headers', async () => {
    const res = await fetch(`${gateway.url}/users/john.doe`, { headers: NAVIGATION });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toBe(STRICT_CSP);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('x-request-id')).toMatch(/\S/);
    expect(res.headers.get('etag')).toMatch(/\S/);
  });

  it('logs at info where the SPA comes from', () => {
    const line = gateway.logLines().find((l) => l['event'] === 'spa_source');
    expect(line).toMatchObject({ level: 30, source: 'dir', dir, msg: 'serving the SPA from SPA_DIR' });
  });
});

describe('SPA_IMMUTABLE_PATHS set to other folders, and SPA_DIR without SPA_CSP', () => {
  let dir: string;
  let gateway: RunningGateway;

  beforeAll(async () => {
    dir = await spaFolder();
    gateway = await startGateway({ SPA_DIR: dir, SPA_IMMUTABLE_PATHS: '/static/' });
  });

  afterAll(async () => {
    await gateway.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('revalidates an unhashed file outside the configured folders, and still caches hashed names', async () => {
    expect((await fetch(`${gateway.url}/assets/plain.js`)).headers.get('cache-control')).toBe('no-cache');
    expect((await fetch(`${gateway.url}/assets/index-CLDdwZDr.js`)).headers.get('cache-control')).toBe(IMMUTABLE);
  });

  it('keeps the default policy (no framing) when SPA_CSP is unset', async () => {
    const res = await fetch(`${gateway.url}/`, { headers: NAVIGATION });
    expect(res.headers.get('content-security-policy')).toBe("frame-ancestors 'none'");
  });
});

describe('the SPA source at start-up', () => {
  it('logs the bundled sample at info when SPA_DIR is unset', async () => {
    const gateway = await startGateway({ LOG_LEVEL: 'info' });
    try {
      expect(gateway.logLines().find((l) => l['event'] === 'spa_source')).toMatchObject({ level: 30, source: 'sample', msg: 'serving the bundled sample SPA (SPA_DIR is unset)' });
    } finally {
      await gateway.close();
    }
  });

  it('logs the dev server\'s origin at info, never credentials in its URL', async () => {
    const devServer = await startBehaviourUpstream();
    const url = new URL(devServer.url);
    url.username = 'user';
    url.password = 'dev-secret';
    const gateway = await startGateway({ LOG_LEVEL: 'info', SPA_UPSTREAM_URL: url.href });
    try {
      expect(gateway.logLines().find((l) => l['event'] === 'spa_source')).toMatchObject({ level: 30, source: 'dev_server', url: devServer.url });
      expect(gateway.logText()).not.toContain('dev-secret');
    } finally {
      await gateway.close();
      await devServer.close();
    }
  });
});

describe('one canonical host', () => {
  let port: number;
  let publicUrl: string;
  let gateway: RunningGateway;
  let devServer: TestUpstream;
  /** The gateway by another name for the same machine. */
  let otherHost: string;

  beforeAll(async () => {
    port = await freePort();
    publicUrl = `http://localhost:${port}`;
    otherHost = `127.0.0.1:${port}`;
    devServer = await startBehaviourUpstream();
    gateway = await startGateway({ PORT: String(port), PUBLIC_URL: publicUrl, SPA_UPSTREAM_URL: devServer.url });
  });

  afterAll(async () => {
    await gateway.close();
    await devServer.close();
  });

  it.each(['/', '/users/john.doe?tab=1', '/auth/login?returnTo=%2Forders%2F42', '/auth/login'])('redirects a navigation to %s on another host with 308 to PUBLIC_URL', async (path) => {
    const before = devServer.seen.length;
    const res = await rawRequest(gateway.url, path, { headers: { ...NAVIGATION, host: otherHost } });
    expect({ status: res.status, location: res.headers['location'] }).toEqual({ status: 308, location: `${publicUrl}${path}` });
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(devServer.seen.length).toBe(before);
  });

  it('builds the Location from PUBLIC_URL only, whatever the Host header says', async () => {
    for (const host of ['evil.example', 'evil.example:80', `localhost:${port}@evil.example`, '[::1]']) {
      const res = await rawRequest(gateway.url, '/x', { headers: { ...NAVIGATION, host } });
      expect({ host, status: res.status, location: res.headers['location'] }).toEqual({ host, status: 308, location: `${publicUrl}/x` });
    }
  });

  it('serves navigations on the canonical host', async () => {
    const res = await rawRequest(gateway.url, '/users/john.doe', { headers: { ...NAVIGATION, host: `localhost:${port}` } });
    expect(res.status).toBe(200);
    expect(res.headers['x-upstream']).toBe('behaviour');
    expect((await rawRequest(gateway.url, '/x', { headers: { ...NAVIGATION, host: 'LOCALHOST:' + String(port) } })).status).toBe(200);
  });

  it('answers API calls, fetches, the callback and the operations endpoints where they arrive', async () => {
    const host = otherHost;
    expect((await rawRequest(gateway.url, '/healthz', { headers: { ...NAVIGATION, host } })).status).toBe(200);
    expect((await rawRequest(gateway.url, '/metrics', { headers: { ...NAVIGATION, host } })).status).toBe(200);
    expect((await rawRequest(gateway.url, '/api/orders', { headers: { ...NAVIGATION, host, 'x-csrf': '1' } })).status).toBe(401);
    expect((await rawRequest(gateway.url, '/auth/me', { headers: { accept: 'application/json', host } })).status).toBe(401);
    expect((await rawRequest(gateway.url, '/auth/callback?state=x&code=y', { headers: { ...NAVIGATION, host } })).status).not.toBe(308);
    // a fetch() for a module or data is not a navigation: the page that asked is already on some host
    expect((await rawRequest(gateway.url, '/src/main.tsx', { headers: { accept: '*/*', host } })).status).toBe(200);
    expect((await rawRequest(gateway.url, '/', { method: 'POST', headers: { ...NAVIGATION, host, 'content-type': 'text/plain' }, body: 'x' })).status).not.toBe(308);
  });
});

describe('the canonical host behind trusted proxies', () => {
  let gateway: RunningGateway;
  let publicUrl: string;

  beforeAll(async () => {
    const port = await freePort();
    publicUrl = `https://app.example`;
    gateway = await startGateway({ PORT: String(port), PUBLIC_URL: publicUrl, TRUST_PROXY: '127.0.0.1' });
  });

  afterAll(async () => {
    await gateway.close();
  });

  it('compares the forwarded host, and redirects when the proxy forwarded another one', async () => {
    const local = `127.0.0.1:${new URL(gateway.url).port}`;
    const canonical = await rawRequest(gateway.url, '/users/john.doe', { headers: { ...NAVIGATION, host: local, 'x-forwarded-host': 'app.example', 'x-forwarded-proto': 'https' } });
    expect(canonical.status).toBe(200);
    const other = await rawRequest(gateway.url, '/users/john.doe', { headers: { ...NAVIGATION, host: 'app.example', 'x-forwarded-host': 'www.app.example', 'x-forwarded-proto': 'https' } });
    expect({ status: other.status, location: other.headers['location'] }).toEqual({ status: 308, location: `${publicUrl}/users/john.doe` });
  });
});

describe('the canonical host without trusted proxies', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway();
  });

  afterAll(async () => {
    await gateway.close();
  });

  it('ignores X-Forwarded-Host from an untrusted peer', async () => {
    const publicHost = new URL(gateway.config.server.publicUrl).host;
    const res = await rawRequest(gateway.url, '/x', { headers: { ...NAVIGATION, host: 'other.example', 'x-forwarded-host': publicHost } });
    expect({ status: res.status, location: res.headers['location'] }).toEqual({ status: 308, location: `${gateway.config.server.publicUrl}/x` });
  });
});

describe('signing in from another host for the gateway', () => {
  let stack: Stack;
  let publicUrl: string;
  let otherUrl: string;

  beforeAll(async () => {
    // PUBLIC_URL on localhost; the developer opens 127.0.0.1 (the same gateway)
    stack = await startStack({}, {}, 'localhost');
    publicUrl = stack.gateway.config.server.publicUrl;
    otherUrl = stack.gateway.url;
    expect(new URL(otherUrl).host).not.toBe(new URL(publicUrl).host);
  });

  afterAll(async () => {
    await stack.stop();
  });

  it('moves the browser to PUBLIC_URL before sign-in starts, so it ends signed in on the deep link', async () => {
    const browser = stack.browser();
    const start = await browser.navigate(`${otherUrl}/users/john.doe`);
    expect(start.visited).toEqual([`${otherUrl}/users/john.doe`, `${publicUrl}/users/john.doe`]);
    const { final } = await browser.signIn(otherUrl, { returnTo: '/users/john.doe' });
    expect(browser.currentUrl).toBe(`${publicUrl}/users/john.doe`);
    expect(final.status).toBe(200);
    const me = await browser.request(`${publicUrl}/auth/me`);
    expect(me.status).toBe(200);
  });

  it('shows a page naming PUBLIC_URL when a sign-in started on another host fails with login_state_mismatch', async () => {
    const browser = stack.browser();
    // a sign-in started without a navigation (a script's fetch) is not redirected; its login cookie stays on 127.0.0.1
    const login = await browser.request(`${otherUrl}/auth/login`);
    expect(login.status).toBe(302);
    const provider = await browser.navigate(login.headers.get('location') ?? '');
    const end = await browser.completeProviderInteraction(provider);
    expect(end.response.status).toBe(400);
    expect(end.response.headers.get('content-type')).toMatch(/^text\/html/);
    const page = await end.response.text();
    expect(page).toContain('<code>login_state_mismatch</code>');
    expect(page).toContain(`Open <a href="${publicUrl}/">${publicUrl}/</a> in this browser`);
  });
});
