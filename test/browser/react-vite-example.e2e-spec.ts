import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { Page } from 'playwright-core';
import { isHashedAsset } from '../../src/spa/spa-paths.js';
import { describeWhenInstalled } from '../support/requirements.js';
import { describeInChromium, launchChromium, type ChromiumSession } from '../support/chromium.js';
import { startStack, type Stack } from '../support/stack.js';
import { buildExample, copyReactExample, reactExampleMissing, startViteDevServer, type ExampleCopy, type ViteDevServer } from '../support/vite.js';

const IMMUTABLE = 'public, max-age=31536000, immutable';
// the policy the README recommends for a Vite build (SPA_CSP)
const STRICT_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** Console errors and uncaught exceptions of a page (a CSP violation is a console error). */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    // Chromium logs every 4xx as "Failed to load resource"; a 401 from /auth/me is how the app learns it is signed out
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  return errors;
}

/** From the app's sign-in button through the demo provider's login and consent pages. */
async function signInAtProvider(page: Page, stack: Stack): Promise<void> {
  await page.getByTestId('sign-in').click();
  await page.waitForURL((url) => url.origin === stack.op.issuer && url.pathname.startsWith('/interaction/'));
  await page.locator('input[name="login"]').fill('alice');
  await page.locator('input[name="password"]').fill('any password');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  await page.getByRole('button', { name: 'Continue' }).click();
}

/** Through the app's sign-out button and the provider's end-session page, back to the app signed out. */
async function signOutAtProvider(page: Page, stack: Stack, app: string): Promise<void> {
  await page.getByTestId('sign-out').click();
  await page.waitForURL((url) => url.origin === stack.op.issuer);
  await page.getByRole('button', { name: 'Yes, sign me out' }).click();
  await page.waitForURL((url) => url.href.startsWith(`${app}/`));
  await page.getByTestId('signed-out').waitFor();
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => `/${relative(dir, join(entry.parentPath, entry.name)).split(sep).join('/')}`);
}

describeInChromium('the React + Vite example in Chromium', () => {
  describeWhenInstalled('in development: the Vite dev server behind SPA_UPSTREAM_URL', reactExampleMissing(), () => {
    let example: ExampleCopy;
    let vite: ViteDevServer;
    let stack: Stack;
    let browser: ChromiumSession;
    let page: Page;
    let app: string;
    let errors: string[];

    beforeAll(async () => {
      example = await copyReactExample();
      vite = await startViteDevServer(example.dir);
      // PUBLIC_URL on localhost; the gateway also answers on 127.0.0.1, the address Vite users habitually type
      stack = await startStack({ SPA_UPSTREAM_URL: vite.url }, {}, 'localhost');
      app = stack.gateway.config.server.publicUrl;
      browser = await launchChromium();
      page = await browser.context.newPage();
      errors = watchErrors(page);
    });

    afterAll(async () => {
      await browser?.close();
      await stack?.stop();
      await vite?.stop();
      await example?.remove();
    });

    it('moves a deep link opened on 127.0.0.1 to PUBLIC_URL and shows the dotted route', async () => {
      await page.goto(`${stack.gateway.url}/users/john.doe`);
      expect(page.url()).toBe(`${app}/users/john.doe`);
      expect(await page.getByTestId('user-id').textContent()).toBe('john.doe');
      await page.getByTestId('signed-out').waitFor();
    });

    it('signs in through the provider and comes back to the deep link, then calls the API with X-CSRF', async () => {
      await signInAtProvider(page, stack);
      await page.waitForURL(`${app}/users/john.doe`);
      await page.getByTestId('signed-in').waitFor();
      expect(await page.getByTestId('user-name').textContent()).toBe('Alice Example');
      await page.getByTestId('call-api').click();
      expect(await page.getByTestId('api-sub').textContent()).toBe('alice');
      const received = stack.upstream.received.filter((r) => r.url === '/api/whoami');
      expect(received.map((r) => r.sub)).toEqual(['alice']);
      expect(received[0]?.headers.cookie).toBeUndefined();
    });

    it('applies a hot update through the gateway without reloading the page', async () => {
      await page.evaluate('window.__sameDocument = true');
      const source = join(example.dir, 'src', 'App.jsx');
      const original = await readFile(source, 'utf8');
      expect(original).toContain('React + Vite behind bff-gateway</h1>');
      await writeFile(source, original.replace('React + Vite behind bff-gateway</h1>', 'Hot-updated title</h1>'));
      await page.getByTestId('title').filter({ hasText: 'Hot-updated title' }).waitFor();
      expect(await page.evaluate<unknown>('window.__sameDocument')).toBe(true);
      // component state survived too: still signed in, the API answer still on screen
      expect(await page.getByTestId('api-sub').textContent()).toBe('alice');
    });

    it('signs out through logoutUrl and the provider\'s end-session page', async () => {
      await signOutAtProvider(page, stack, app);
      expect(errors).toEqual([]);
      expect(browser.blocked).toEqual([]);
    });
  });

  describeWhenInstalled('in production: the vite build served from SPA_DIR', reactExampleMissing(), () => {
    let example: ExampleCopy;
    let dist: string;
    let stack: Stack;
    let browser: ChromiumSession;
    let page: Page;
    let app: string;
    let errors: string[];

    beforeAll(async () => {
      example = await copyReactExample();
      dist = join(example.dir, 'dist');
      buildExample(example.dir, dist);
      stack = await startStack({ SPA_DIR: dist, SPA_CSP: STRICT_CSP }, {}, 'localhost');
      app = stack.gateway.config.server.publicUrl;
      browser = await launchChromium();
      page = await browser.context.newPage();
      errors = watchErrors(page);
    });

    afterAll(async () => {
      await browser?.close();
      await stack?.stop();
      await example?.remove();
    });

    it('caches every hashed file of the real build output as immutable and revalidates index.html and public files', async () => {
      const files = await filesUnder(dist);
      const assets = files.filter((file) => file.startsWith('/assets/'));
      expect(assets.length).toBeGreaterThanOrEqual(2);
      // the names alone say so too, without SPA_IMMUTABLE_PATHS
      expect(assets.filter((file) => !isHashedAsset(file.slice(file.lastIndexOf('/') + 1)))).toEqual([]);
      const seen = await Promise.all(files.map(async (file) => [file, (await fetch(`${stack.gateway.url}${file}`)).headers.get('cache-control')] as const));
      expect(Object.fromEntries(seen)).toEqual(Object.fromEntries(files.map((file) => [file, file.startsWith('/assets/') ? IMMUTABLE : 'no-cache'])));
      expect(files).toEqual(expect.arrayContaining(['/index.html', '/favicon.svg']));
    });

    it('serves a deep link with a dot, signs in from it and comes back to it', async () => {
      const response = await page.goto(`${app}/users/john.doe`);
      expect(response?.status()).toBe(200);
      expect(response?.headers()['content-security-policy']).toBe(STRICT_CSP);
      expect(await page.getByTestId('user-id').textContent()).toBe('john.doe');
      await page.getByTestId('signed-out').waitFor();
      await signInAtProvider(page, stack);
      await page.waitForURL(`${app}/users/john.doe`);
      await page.getByTestId('signed-in').waitFor();
    });

    it('reloads deep links with dots and @ and keeps the session', async () => {
      await page.reload();
      expect(await page.getByTestId('user-id').textContent()).toBe('john.doe');
      await page.getByTestId('signed-in').waitFor();
      const response = await page.goto(`${app}/users/ann@example.com`);
      expect(response?.status()).toBe(200);
      expect(await page.getByTestId('user-id').textContent()).toBe('ann@example.com');
      await page.goto(`${app}/releases/v1.2`);
      await page.getByTestId('not-found').waitFor();
    });

    it('calls the API with X-CSRF and signs out through logoutUrl', async () => {
      await page.goto(`${app}/users/john.doe`);
      await page.getByTestId('call-api').click();
      expect(await page.getByTestId('api-sub').textContent()).toBe('alice');
      await signOutAtProvider(page, stack, app);
      expect(await page.evaluate(async () => (await fetch('/api/whoami', { headers: { 'X-CSRF': '1' } })).status)).toBe(401);
    });

    it('runs under the strict SPA_CSP without a violation or a script error', () => {
      expect(errors).toEqual([]);
      expect(browser.blocked).toEqual([]);
    });
  });
});
