/**
 * The README's recipe for shipping an SPA in the gateway image ("Shipping the SPA in the image"):
 * without a Docker engine on the build machines, the recipe is linted, checked against the gateway's
 * own Dockerfile, and its ENV lines run the built gateway (`node dist/main.js`) on a build output.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import { eventually } from '../support/wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NAVIGATION = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

interface Stage {
  readonly from: string;
  readonly lines: readonly string[];
}

/** The first ```dockerfile block after the README heading `heading`. */
function readmeDockerfile(readme: string, heading: string): string {
  const start = readme.indexOf(`\n${heading}\n`);
  if (start === -1) throw new Error(`README has no "${heading}"`);
  const block = /```dockerfile\n([\s\S]*?)```/.exec(readme.slice(start));
  if (block?.[1] === undefined) throw new Error(`no dockerfile block under "${heading}"`);
  return block[1];
}

function stagesOf(dockerfile: string): Stage[] {
  const stages: Array<{ from: string; lines: string[] }> = [];
  for (const line of dockerfile.split('\n').map((l) => l.trim())) {
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('FROM ')) stages.push({ from: line.slice('FROM '.length), lines: [] });
    else stages.at(-1)?.lines.push(line);
  }
  return stages;
}

/** `ENV NAME=value` and `ENV NAME="quoted value"` lines of a stage. */
function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of stage.lines) {
    const match = /^ENV ([A-Z_]+)=(?:"((?:[^"\\]|\\.)*)"|(\S+))$/.exec(line);
    if (line.startsWith('ENV ') && match === null) throw new Error(`unreadable ENV line: ${line}`);
    if (match?.[1] !== undefined) env[match[1]] = match[2] ?? match[3] ?? '';
  }
  return env;
}

/** The argument of the last `keyword` line of a stage. */
function last(stage: Stage | undefined, keyword: string): string | undefined {
  return stage?.lines.filter((line) => line.startsWith(`${keyword} `)).at(-1)?.slice(keyword.length + 1);
}

describe('the README\'s recipe for shipping an SPA in the image', () => {
  let recipe: string;
  let stages: Stage[];
  let runtime: Stage | undefined;
  let version: string;

  beforeAll(async () => {
    recipe = readmeDockerfile(await readFile(join(ROOT, 'README.md'), 'utf8'), '### Shipping the SPA in the image');
    stages = stagesOf(recipe);
    runtime = stagesOf(await readFile(join(ROOT, 'Dockerfile'), 'utf8')).at(-1);
    version = z.object({ version: z.string() }).parse(JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8'))).version;
  });

  it('passes dockerfilelint', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bff-spa-recipe-'));
    try {
      await writeFile(join(dir, 'Dockerfile'), recipe);
      const lint = spawnSync(join(ROOT, 'node_modules', '.bin', 'dockerfilelint'), ['-j', 'Dockerfile'], { cwd: dir, encoding: 'utf8' });
      const report = z.object({ files: z.array(z.object({ issues: z.array(z.unknown()) })) }).parse(JSON.parse(lint.stdout));
      expect(report.files.map((file) => file.issues)).toEqual([[]]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('copies the build stage\'s output onto this version of the gateway image and points SPA_DIR at it', () => {
    const [build, final] = stages;
    expect(stages).toHaveLength(2);
    expect(final?.from).toBe(`bff-gateway:${version}`);
    const buildName = /^\S+ AS (\S+)$/.exec(build?.from ?? '')?.[1];
    const buildDir = last(build, 'WORKDIR') ?? '';
    expect(last(build, 'RUN')).toBe('npm run build');
    const copy = /^--from=(\S+) (\S+) (\S+)$/.exec(last(final, 'COPY') ?? '');
    // Vite (and most bundlers) write dist/ in the project folder
    expect({ from: copy?.[1], source: copy?.[2] }).toEqual({ from: buildName, source: posix.join(buildDir, 'dist') });
    const target = copy?.[3] ?? '';
    expect(envOf(final ?? { from: '', lines: [] })['SPA_DIR']).toBe(target);
    // inside the gateway's WORKDIR, beside (never over) what the image itself copies there
    const workdir = last(runtime, 'WORKDIR') ?? '';
    expect(target.startsWith(`${workdir}/`)).toBe(true);
    // (files copied into WORKDIR itself, package.json and the lock, sit beside it)
    const imageOwn = (runtime?.lines ?? [])
      .filter((line) => line.startsWith('COPY '))
      .map((line) => posix.resolve(workdir, line.split(' ').at(-1) ?? ''))
      .filter((path) => path !== workdir);
    expect(imageOwn).toEqual(expect.arrayContaining([`${workdir}/dist`]));
    expect(imageOwn.filter((path) => target === path || target.startsWith(`${path}/`) || path.startsWith(`${target}/`))).toEqual([]);
  });

  describe('the built gateway with the recipe\'s ENV lines', () => {
    let spa: string;
    let gateway: GatewayProcess;
    let env: Record<string, string>;

    beforeAll(async () => {
      spa = await mkdtemp(join(tmpdir(), 'bff-spa-recipe-dist-'));
      await writeFile(join(spa, 'index.html'), '<!doctype html><title>shipped</title><p>shipped-spa-marker</p>');
      env = envOf(stages.at(-1) ?? { from: '', lines: [] });
      gateway = await startGatewayProcess({ ...env, SPA_DIR: spa, NODE_ENV: 'production' });
    });

    afterAll(async () => {
      await gateway?.stop();
      await rm(spa, { recursive: true, force: true });
    });

    it('serves the shipped SPA\'s deep links with the recipe\'s Content-Security-Policy', async () => {
      const res = await fetch(`${gateway.url}/users/john.doe`, { headers: NAVIGATION });
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('shipped-spa-marker');
      expect(env['SPA_CSP']).toMatch(/script-src 'self'/);
      expect(res.headers.get('content-security-policy')).toBe(env['SPA_CSP']);
    });

    it('names the folder in its start-up log at info', async () => {
      const line = await eventually(
        () => Promise.resolve(gateway.child.output().split('\n').find((l) => l.includes('"event":"spa_source"'))),
        10_000,
        'the spa_source log line',
      );
      expect(JSON.parse(line)).toMatchObject({ level: 30, source: 'dir', dir: spa });
    });
  });
});
