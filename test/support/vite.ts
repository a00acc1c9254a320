import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';
import { spawnChild, waitForLine, type Child } from './processes.js';

/** The React + Vite example the README points SPA teams to. */
export const REACT_EXAMPLE_DIR = fileURLToPath(new URL('../../examples/react-vite/', import.meta.url));
const VITE_BIN = join(REACT_EXAMPLE_DIR, 'node_modules', 'vite', 'bin', 'vite.js');

/** Why the example cannot run here, or undefined when its dependencies are installed. */
export function reactExampleMissing(): string | undefined {
  return existsSync(VITE_BIN) ? undefined : 'examples/react-vite has no node_modules: npm ci --prefix examples/react-vite (npm run test:all does this)';
}

export interface ExampleCopy {
  /** A copy of the example's sources (its node_modules linked): tests may edit it. */
  readonly dir: string;
  remove(): Promise<void>;
}

/** A throw-away copy of the example, so a hot-update test never edits the tracked sources. */
export async function copyReactExample(): Promise<ExampleCopy> {
  const dir = await mkdtemp(join(tmpdir(), 'bff-react-vite-'));
  for (const entry of ['index.html', 'package.json', 'vite.config.js', 'src', 'public']) {
    await cp(join(REACT_EXAMPLE_DIR, entry), join(dir, entry), { recursive: true });
  }
  await symlink(join(REACT_EXAMPLE_DIR, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** `vite build` of `dir` into `outDir`, as a team would run it for production. */
export function buildExample(dir: string, outDir: string): void {
  const result = spawnSync(process.execPath, [VITE_BIN, 'build', '--outDir', outDir, '--emptyOutDir'], { cwd: dir, encoding: 'utf8', timeout: 120_000, env: { ...process.env, NO_COLOR: '1' } });
  if (result.status !== 0) throw new Error(`vite build failed (${result.status ?? result.signal ?? '?'}):\n${result.stdout}\n${result.stderr}`);
}

export interface ViteDevServer {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly child: Child;
  stop(): Promise<void>;
}

/** `vite` (the dev server) on 127.0.0.1, with the example's own configuration: nothing gateway-specific. */
export async function startViteDevServer(dir: string): Promise<ViteDevServer> {
  const port = await freePort();
  const child = spawnChild(process.execPath, [VITE_BIN, dir, '--host', '127.0.0.1', '--port', String(port), '--strictPort'], { NO_COLOR: '1', FORCE_COLOR: '0' });
  try {
    await waitForLine(child, /Local:\s+http:\/\/127\.0\.0\.1:\d+/, 30_000);
  } catch (error) {
    await child.stop();
    throw error;
  }
  return { url: `http://127.0.0.1:${port}`, child, stop: () => child.stop() };
}
