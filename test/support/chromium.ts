import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { isLoopbackHost } from '../../src/common/loopback.js';
import { describeWhenInstalled } from './requirements.js';

/** Debian's Chromium; playwright-core drives it and never downloads a browser of its own. */
export const CHROMIUM_PATH = '/usr/bin/chromium';
const MISSING = 'chromium not found: apt-get install -y chromium (npm run test:all does this)';

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Nothing resolves but loopback: a test must not depend on (or leak to) the internet.
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1, EXCLUDE localhost',
];

/** `describe` when Chromium is installed (see describeWhenInstalled for what happens otherwise). */
export function describeInChromium(name: string, body: () => void): void {
  describeWhenInstalled(name, existsSync(CHROMIUM_PATH) ? undefined : MISSING, body);
}

export interface ChromiumSession {
  readonly context: BrowserContext;
  /** Requests that were aborted because they would have left the machine. */
  readonly blocked: readonly string[];
  close(): Promise<void>;
}

function staysOnMachine(url: string): boolean {
  const parsed = URL.parse(url);
  if (parsed === null) return false;
  if (parsed.protocol === 'data:' || parsed.protocol === 'blob:') return true;
  return ['http:', 'https:', 'ws:', 'wss:'].includes(parsed.protocol) && isLoopbackHost(parsed.hostname);
}

/** Headless Chromium with a fresh profile (so no cookie survives between test files), offline but for loopback. */
export async function launchChromium(): Promise<ChromiumSession> {
  const profile = await mkdtemp(join(tmpdir(), 'bff-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 960, height: 640 },
    });
  } catch (error) {
    await rm(profile, { recursive: true, force: true });
    throw error;
  }
  const blocked: string[] = [];
  await context.route('**/*', async (route) => {
    const url = route.request().url();
    if (staysOnMachine(url)) {
      await route.continue();
    } else {
      blocked.push(url);
      await route.abort('blockedbyclient');
    }
  });
  return {
    context,
    blocked,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

export interface StaticSite {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  close(): Promise<void>;
}

/** A tiny site on 127.0.0.1 serving fixed pages (an attacker's pages in the cross-site tests). */
export async function serveStaticSite(pages: Readonly<Record<string, { readonly type: string; readonly body: string }>>): Promise<StaticSite> {
  const server = createServer((req, res) => {
    const page = pages[new URL(req.url ?? '/', 'http://site').pathname];
    if (page === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': page.type, 'cache-control': 'no-store' }).end(page.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('static site has no TCP address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error === undefined ? resolve() : reject(error)));
      }),
  };
}
