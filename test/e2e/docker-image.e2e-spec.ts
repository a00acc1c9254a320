/**
 * There is no Docker engine on the build machines, so the image is proved piece by piece: the
 * Dockerfile's runtime stage is replayed into a temporary folder (its COPY lines, and `npm ci
 * --omit=dev` as a copy of node_modules pruned offline), and that tree runs the gateway with the
 * compose file's environment against test doubles of the other services. The compose file is then
 * checked against the config schema, the demo scripts and the Dockerfile.
 */
import { load as loadYaml } from 'js-yaml';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { loadConfig } from '../../src/config/config.js';
import { variables } from '../../src/config/config.schema.js';
import { BrowserClient } from '../support/browser.js';
import { startOp, type RunningOp } from '../support/op.js';
import { freePort } from '../support/ports.js';
import { startRedis, type RunningRedis } from '../support/redis.js';
import { startUpstream, type RunningUpstream } from '../support/upstream.js';
import { eventually, waitUntilReady } from '../support/wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

// ---------------------------------------------------------------------------------------------
// Dockerfile

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

interface Stage {
  readonly name: string;
  readonly base: string;
  readonly instructions: readonly Instruction[];
}

/** Instructions grouped by stage; comments dropped and `\` continuations joined. */
function parseDockerfile(text: string): Stage[] {
  const logical = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const stages: Array<{ name: string; base: string; instructions: Instruction[] }> = [];
  for (const line of logical) {
    const [keyword = '', ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (keyword.toUpperCase() === 'FROM') {
      const match = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (match?.[1] === undefined) throw new Error(`unreadable FROM: ${line}`);
      stages.push({ name: match[2] ?? String(stages.length), base: match[1], instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (stage === undefined) throw new Error(`instruction before FROM: ${line}`);
    stage.instructions.push({ keyword: keyword.toUpperCase(), args });
  }
  return stages;
}

function stageNamed(stages: readonly Stage[], name: string): Stage {
  const stage = stages.find((candidate) => candidate.name === name);
  if (stage === undefined) throw new Error(`no stage ${name} in the Dockerfile`);
  return stage;
}

function all(stage: Stage, keyword: string): string[] {
  return stage.instructions.filter((instruction) => instruction.keyword === keyword).map((instruction) => instruction.args);
}

function one(stage: Stage, keyword: string): string {
  const found = all(stage, keyword);
  if (found.length !== 1) throw new Error(`expected one ${keyword} in stage ${stage.name}, found ${found.length}`);
  return found[0] ?? '';
}

/** The JSON (exec) form of CMD, ENTRYPOINT or HEALTHCHECK CMD; the shell form would put sh between Docker and node. */
function execForm(args: string): string[] {
  return z.array(z.string()).min(1).parse(JSON.parse(args));
}

// ---------------------------------------------------------------------------------------------
// .dockerignore

interface IgnoreRule {
  readonly negate: boolean;
  readonly pattern: RegExp;
}

function parseDockerignore(text: string): IgnoreRule[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const negate = line.startsWith('!');
      const glob = (negate ? line.slice(1) : line).replace(/^\/+|\/+$/g, '');
      const source = glob
        .split(/(\*\*\/|\*\*|\*|\?)/)
        .map((part) => {
          if (part === '**/') return '(?:.*/)?';
          if (part === '**') return '.*';
          if (part === '*') return '[^/]*';
          if (part === '?') return '[^/]';
          return part.replace(/[.+^${}()|[\]\\]/g, '\\$&');
        })
        .join('');
      return { negate, pattern: new RegExp(`^${source}$`) };
    });
}

/** Docker's rule: the last matching pattern wins, and a pattern matching a parent folder matches its contents. */
function isIgnored(rules: readonly IgnoreRule[], path: string): boolean {
  const segments = path.split('/');
  const candidates = segments.map((_, index) => segments.slice(0, index + 1).join('/'));
  let ignored = false;
  for (const rule of rules) {
    if (candidates.some((candidate) => rule.pattern.test(candidate))) ignored = !rule.negate;
  }
  return ignored;
}

// ---------------------------------------------------------------------------------------------
// docker-compose.yml

const ComposeService = z.looseObject({
  build: z.object({ context: z.string(), target: z.string() }).optional(),
  image: z.string().optional(),
  network_mode: z.string().optional(),
  command: z.array(z.string()).optional(),
  environment: z.record(z.string(), z.string()).optional(),
  depends_on: z.record(z.string(), z.object({ condition: z.string() })).optional(),
  healthcheck: z.looseObject({ test: z.array(z.string()) }).optional(),
  volumes: z.array(z.string()).optional(),
  stop_grace_period: z.string().optional(),
});
type ComposeService = z.infer<typeof ComposeService>;
const ComposeFile = z.looseObject({ services: z.record(z.string(), ComposeService), volumes: z.record(z.string(), z.unknown()).optional() });

/** The compose file, parsed (js-yaml's safe schema by default in v4+), then validated by the zod schema above. */
function parseYaml(text: string): unknown {
  return loadYaml(text);
}

function loadCompose(): Record<string, ComposeService> {
  return ComposeFile.parse(parseYaml(read('docker-compose.yml'))).services;
}

function service(services: Record<string, ComposeService>, name: string): ComposeService & { environment: Record<string, string> } {
  const found = services[name];
  if (found === undefined) throw new Error(`no service ${name} in docker-compose.yml`);
  return { ...found, environment: found.environment ?? {} };
}

function env(environment: Record<string, string>, name: string, fallback?: string): string {
  const value = environment[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Replaying the runtime stage

interface TreeProcess {
  readonly process: ChildProcess;
  output(): string;
  readonly exited: Promise<number | null>;
  stop(): Promise<void>;
}

interface RuntimeTree {
  readonly dir: string;
  readonly env: Record<string, string>;
  readonly entrypoint: string[];
  readonly healthcheck: string[];
}

/** `cp -al` (hard links: fast, no extra space) where the file system allows it, else a real copy. */
function copyNodeModules(to: string): void {
  const linked = spawnSync('cp', ['-al', join(ROOT, 'node_modules'), to], { stdio: 'ignore' });
  if (linked.status !== 0) {
    rmSync(join(to, 'node_modules'), { recursive: true, force: true });
    cpSync(join(ROOT, 'node_modules'), join(to, 'node_modules'), { recursive: true, verbatimSymlinks: true });
  }
  // npm rewrites this file: unlink it so a hard link never lets that write reach the original
  rmSync(join(to, 'node_modules', '.package-lock.json'), { force: true });
}

/** What `RUN npm ci --omit=dev` leaves: the locked production dependencies, no network involved. */
function installProductionDependencies(dir: string): void {
  copyNodeModules(dir);
  const pruned = spawnSync('npm', ['prune', '--omit=dev', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: dir, encoding: 'utf8' });
  if (pruned.status !== 0) throw new Error(`npm prune failed:\n${pruned.stdout}\n${pruned.stderr}`);
}

function buildRuntimeTree(stages: readonly Stage[], ignore: readonly IgnoreRule[]): RuntimeTree {
  const runtime = stages.at(-1);
  if (runtime === undefined) throw new Error('empty Dockerfile');
  const buildWorkdir = one(stageNamed(stages, 'build'), 'WORKDIR');
  const workdir = one(runtime, 'WORKDIR');
  const dir = mkdtempSync(join(tmpdir(), 'bff-runtime-'));
  const imageEnv: Record<string, string> = {};
  for (const { keyword, args } of runtime.instructions) {
    switch (keyword) {
      case 'ENV': {
        const [name = '', ...value] = args.split('=');
        imageEnv[name] = value.join('=');
        break;
      }
      case 'COPY': {
        const words = args.split(/\s+/);
        const from = words.find((word) => word.startsWith('--from='))?.slice('--from='.length);
        const paths = words.filter((word) => !word.startsWith('--'));
        const destination = join(dir, relative(workdir, join(workdir, paths.at(-1) ?? '')));
        for (const source of paths.slice(0, -1)) {
          let origin: string;
          if (from === undefined) {
            if (isIgnored(ignore, source)) throw new Error(`COPY ${source}: excluded by .dockerignore`);
            origin = join(ROOT, source);
          } else {
            if (from !== 'build') throw new Error(`COPY --from=${from}: only the build stage is replayed`);
            // the build stage's output is what `npm run build` (run before the e2e tests) left in the repo
            origin = join(ROOT, relative(buildWorkdir, source));
          }
          const target = paths.length > 2 || paths.at(-1)?.endsWith('/') === true ? join(destination, basename(source)) : destination;
          // files from the context pass through .dockerignore (spec files inside copied folders stay out)
          const inContext = (path: string): boolean => !isIgnored(ignore, relative(ROOT, path));
          cpSync(origin, target, { recursive: true, ...(from === undefined ? { filter: inContext } : {}) });
        }
        break;
      }
      case 'RUN':
        if (!/^npm ci --omit=dev\b/.test(args)) throw new Error(`RUN ${args}: this test only knows how to replay npm ci --omit=dev`);
        installProductionDependencies(dir);
        break;
      default:
        break;
    }
  }
  const healthcheck = one(runtime, 'HEALTHCHECK');
  return { dir, env: imageEnv, entrypoint: execForm(one(runtime, 'ENTRYPOINT')), healthcheck: execForm(healthcheck.slice(healthcheck.indexOf('CMD ') + 4)) };
}

/** Runs an exec-form command of the image in the tree: `node` is this Node, as the image's own. */
function command(argv: readonly string[]): { file: string; args: string[] } {
  const [file, ...args] = argv;
  if (file !== 'node') throw new Error(`the image runs ${file}, not node`);
  return { file: process.execPath, args };
}

/** Starts an exec-form command in the tree with the container's environment only (not this test's), in its own process group. */
function startInTree(tree: RuntimeTree, argv: readonly string[], environment: Record<string, string>): TreeProcess {
  const { file, args } = command(argv);
  const child = spawn(file, args, { cwd: tree.dir, env: { PATH: process.env['PATH'] ?? '', ...environment }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    process: child,
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        process.kill(-child.pid, 'SIGKILL');
        await exited;
      }
    },
  };
}

function runInTree(tree: RuntimeTree, argv: readonly string[], environment: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const { file, args } = command(argv);
  const result = spawnSync(file, args, { cwd: tree.dir, env: { PATH: process.env['PATH'] ?? '', ...environment }, encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

// ---------------------------------------------------------------------------------------------

const stages = parseDockerfile(read('Dockerfile'));
const ignoreRules = parseDockerignore(read('.dockerignore'));

describe('Dockerfile', () => {
  it('passes dockerfilelint', () => {
    const lint = spawnSync(join(ROOT, 'node_modules', '.bin', 'dockerfilelint'), ['-j', 'Dockerfile'], { cwd: ROOT, encoding: 'utf8' });
    const report = z.object({ files: z.array(z.object({ issues_count: z.number(), issues: z.array(z.unknown()) })) }).parse(JSON.parse(lint.stdout));
    expect(report.files.map((file) => file.issues)).toEqual([[]]);
    expect(lint.status).toBe(0);
  });

  it('builds with dev dependencies and runs on an official Node 24 LTS slim image with production dependencies only', () => {
    expect(stages.map((stage) => stage.name)).toEqual(['build', 'demo', 'runtime']);
    for (const stage of stages) expect(stage.base).toMatch(/^node:24-[a-z]+-slim$/);
    const build = stageNamed(stages, 'build');
    expect(all(build, 'RUN')).toEqual([expect.stringMatching(/^npm ci(?! .*--omit)/), 'npm run build']);
    const runtime = stageNamed(stages, 'runtime');
    expect(all(runtime, 'RUN')).toEqual([expect.stringMatching(/^npm ci --omit=dev /)]);
    expect(all(runtime, 'COPY')).toEqual(expect.arrayContaining(['--from=build /app/dist ./dist']));
    expect(all(runtime, 'COPY').filter((args) => args.startsWith('--from=') && !args.startsWith('--from=build /app/dist '))).toEqual([]);
  });

  it('runs as a non-root user, exposes 3000 and the metrics port 9464, checks /healthz, and lets SIGTERM reach node', () => {
    const runtime = stageNamed(stages, 'runtime');
    const user = one(runtime, 'USER');
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    // USER comes after every COPY and RUN: the app files stay root-owned, read-only to the process
    const keywords = runtime.instructions.map((instruction) => instruction.keyword);
    expect(keywords.indexOf('USER')).toBeGreaterThan(keywords.lastIndexOf('COPY'));
    expect(keywords.indexOf('USER')).toBeGreaterThan(keywords.lastIndexOf('RUN'));
    expect(one(runtime, 'EXPOSE')).toBe('3000 9464');
    expect(one(runtime, 'HEALTHCHECK')).toMatch(/ CMD \["node", "dist\/cli\/healthcheck\.js"\]$/);
    expect(one(runtime, 'STOPSIGNAL')).toBe('SIGTERM');
    expect(execForm(one(runtime, 'ENTRYPOINT'))).toEqual(['node', 'dist/main.js']);
    expect(all(runtime, 'CMD')).toEqual([]);
  });

  it('bakes in no secret and no configuration', () => {
    for (const stage of stages) {
      const declared = [...all(stage, 'ENV'), ...all(stage, 'ARG')].map((args) => args.split('=')[0] ?? '');
      expect(declared.filter((name) => /SECRET|PASSWORD|TOKEN|KEY|OIDC_|REDIS_/i.test(name))).toEqual([]);
      // NODE_ENV=production is the image's mode (it turns development defaults into warnings) and METRICS_PORT keeps
      // metrics off the public port where the image ships: defaults of the image, not deployment configuration
      expect(declared.filter((name) => name in variables && name !== 'NODE_ENV' && name !== 'METRICS_PORT')).toEqual([]);
    }
  });

  it('keeps the build context to what the Dockerfile copies: never .env, keys, node_modules, dist or tests', () => {
    for (const path of ['.env', 'secrets/client-secret', 'key.pem', 'node_modules/zod/package.json', 'dist/main.js', 'test/e2e/login.e2e-spec.ts', '.git/config', 'src/config/config.spec.ts']) {
      expect([path, isIgnored(ignoreRules, path)]).toEqual([path, true]);
    }
    const copied = stages.flatMap((stage) =>
      all(stage, 'COPY')
        .filter((args) => !args.startsWith('--from='))
        .flatMap((args) => args.split(/\s+/).slice(0, -1)),
    );
    expect(copied.length).toBeGreaterThan(0);
    for (const path of copied) {
      expect(existsSync(join(ROOT, path))).toBe(true);
      expect([path, isIgnored(ignoreRules, path)]).toEqual([path, false]);
    }
  });
});

describe('the runtime stage replayed in a temporary folder, run with the compose file\'s gateway environment', () => {
  const compose = loadCompose();
  const composeEnv = service(compose, 'gateway').environment;
  let tree: RuntimeTree;
  let redis: RunningRedis;
  let op: RunningOp;
  let upstream: RunningUpstream;
  let gateway: TreeProcess;
  let gatewayUrl: string;
  let metricsUrl: string;
  let environment: Record<string, string>;

  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist', 'main.js'))) throw new Error('dist/main.js is missing: npm run build first');
    tree = buildRuntimeTree(stages, ignoreRules);
    const port = await freePort();
    const metricsPort = await freePort();
    gatewayUrl = `http://127.0.0.1:${port}`;
    metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    redis = await startRedis();
    // the doubles use the compose file's client registration, so a mismatch there fails here
    op = await startOp({ gatewayUrl, clientId: env(composeEnv, 'OIDC_CLIENT_ID'), clientSecret: env(composeEnv, 'OIDC_CLIENT_SECRET') });
    upstream = await startUpstream(op);
    const addresses: Record<string, string> = {
      PORT: String(port),
      PUBLIC_URL: gatewayUrl,
      OIDC_ISSUER: op.issuer,
      UPSTREAM_URL: upstream.url,
      REDIS_URL: redis.url,
      METRICS_PORT: String(metricsPort),
    };
    environment = { ...tree.env, ...composeEnv, ...addresses };
    gateway = startInTree(tree, tree.entrypoint, environment);
    await eventually(async () => ((await fetch(`${gatewayUrl}/healthz`)).status === 200 ? true : undefined), 30_000, `the gateway from the runtime tree on ${gatewayUrl}\n${gateway.output()}`);
  });
  afterAll(async () => {
    await gateway.stop();
    await upstream.close();
    await op.stop();
    await redis.close();
    rmSync(tree.dir, { recursive: true, force: true });
  });

  it('replaces exactly the compose file\'s service addresses, nothing else', () => {
    const composePorts = ['3000', '4000', '4001', '6379', '9464'];
    const pointingAtServices = Object.entries(composeEnv)
      .filter(([, value]) => composePorts.some((port) => value === port || value.includes(`:${port}`)))
      .map(([name]) => name)
      .sort();
    expect(pointingAtServices).toEqual(['METRICS_PORT', 'OIDC_ISSUER', 'PORT', 'PUBLIC_URL', 'REDIS_URL', 'UPSTREAM_URL']);
  });

  it('holds the production dependencies and none of the dev dependencies', () => {
    const pkg = z.object({ dependencies: z.record(z.string(), z.string()), devDependencies: z.record(z.string(), z.string()) }).parse(JSON.parse(read('package.json')));
    const installed = (name: string): boolean => existsSync(join(tree.dir, 'node_modules', name, 'package.json'));
    expect(Object.keys(pkg.dependencies).filter((name) => !installed(name))).toEqual([]);
    expect(Object.keys(pkg.devDependencies).filter(installed)).toEqual([]);
    expect(readdirSync(tree.dir).sort()).toEqual(['demo', 'dist', 'node_modules', 'package-lock.json', 'package.json']);
    expect(statSync(join(tree.dir, 'demo', 'spa', 'index.html')).isFile()).toBe(true);
  });

  it('answers /healthz 200 and /readyz 200 with discovery, JWKS and Redis loaded', async () => {
    expect((await fetch(`${gatewayUrl}/healthz`)).status).toBe(200);
    await waitUntilReady(gatewayUrl);
  });

  it('serves the sample SPA, signs in through the provider and proxies an API call on the Redis store', async () => {
    const page = await fetch(`${gatewayUrl}/`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const browser = new BrowserClient();
    await browser.signIn(gatewayUrl);
    const res = await browser.request(`${gatewayUrl}/api/whoami`, { headers: { 'x-csrf': '1' } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { sub: string }).sub).toBe('alice');
    const client = new Redis(redis.url);
    try {
      expect((await client.keys(`${env(composeEnv, 'REDIS_KEY_PREFIX', 'bff:')}record:*`)).length).toBe(1);
    } finally {
      client.disconnect();
    }
  });

  it('serves /metrics on METRICS_PORT', async () => {
    const res = await fetch(metricsUrl);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('bff_logins_total{outcome="success",code="none"} 1');
  });

  it('passes the image\'s HEALTHCHECK command, which fails when nothing answers', async () => {
    expect(runInTree(tree, tree.healthcheck, environment).status).toBe(0);
    const nothing = runInTree(tree, tree.healthcheck, { ...environment, PORT: String(await freePort()) });
    expect(nothing.status).toBe(1);
    expect(nothing.stderr).toMatch(/^healthcheck: /);
  });

  it('runs --check-config through the entrypoint (docker run <image> --check-config) and exits 0', () => {
    const result = runInTree(tree, [...tree.entrypoint, '--check-config'], environment);
    expect(result.stdout).toContain('result: ok, ready to deploy');
    expect(result.status).toBe(0);
  });

  it('stops on SIGTERM with exit code 0', async () => {
    gateway.process.kill('SIGTERM');
    expect(await gateway.exited).toBe(0);
    expect(gateway.output()).toContain('"event":"shutdown_complete"');
  });
});

describe('docker-compose.yml', () => {
  const services = loadCompose();
  const gateway = service(services, 'gateway');
  const provider = service(services, 'provider');
  const api = service(services, 'api');
  const redis = service(services, 'redis');

  it('runs the gateway from the runtime stage and the demo services from the demo stage', () => {
    expect(Object.keys(services).sort()).toEqual(['api', 'gateway', 'provider', 'redis']);
    expect(gateway.build).toEqual({ context: '.', target: stages.at(-1)?.name });
    for (const demo of [provider, api]) {
      expect(demo.build).toEqual({ context: '.', target: 'demo' });
      const [node, importFlag, loader, script = ''] = demo.command ?? [];
      expect([node, importFlag, loader]).toEqual(['node', '--import', 'tsx']);
      expect(existsSync(join(ROOT, script))).toBe(true);
      expect(all(stageNamed(stages, 'demo'), 'COPY')).toContain('demo ./demo');
    }
  });

  it('sets only variables the config schema defines, and they validate', () => {
    const known = new Set<string>([...Object.keys(variables), ...Object.entries(variables).flatMap(([name, spec]) => ('secret' in spec && spec.secret ? [`${name}_FILE`] : []))]);
    expect(Object.keys(gateway.environment).filter((name) => !known.has(name))).toEqual([]);
    const config = loadConfig(gateway.environment);
    expect(config.session.store).toBe('redis');
    expect(config.session.cookie).toEqual({ name: '__Host-bff-session', secure: true });
  });

  it('uses only variables the README documents', () => {
    const readme = read('README.md');
    expect(Object.keys(gateway.environment).filter((name) => !readme.includes(`\`${name}\``))).toEqual([]);
  });

  it('sets only DEMO_ variables that the demo scripts read', () => {
    for (const demo of [provider, api]) {
      const source = read(demo.command?.at(-1) ?? '');
      expect(Object.keys(demo.environment).filter((name) => !source.includes(`'${name}'`))).toEqual([]);
    }
  });

  it('gives the browser and the gateway the same issuer URL: host networking, loopback addresses', () => {
    for (const each of [gateway, provider, api, redis]) expect(each.network_mode).toBe('host');
    const issuer = env(gateway.environment, 'OIDC_ISSUER');
    // demo/provider.ts announces http://<DEMO_PROVIDER_HOST>:<DEMO_PROVIDER_PORT> as its issuer
    expect(`http://${env(provider.environment, 'DEMO_PROVIDER_HOST')}:${env(provider.environment, 'DEMO_PROVIDER_PORT')}`).toBe(issuer);
    expect(env(api.environment, 'DEMO_ISSUER')).toBe(issuer);
    expect(new URL(issuer).hostname).toBe('127.0.0.1');
  });

  it('agrees on the gateway\'s address, the client registration, the API and Redis', () => {
    const gw = gateway.environment;
    expect(env(provider.environment, 'DEMO_GATEWAY_URL')).toBe(env(gw, 'PUBLIC_URL'));
    expect(new URL(env(gw, 'PUBLIC_URL')).port).toBe(env(gw, 'PORT'));
    expect([env(gw, 'PORT'), env(gw, 'METRICS_PORT')].join(' ')).toBe(one(stageNamed(stages, 'runtime'), 'EXPOSE'));
    expect(env(provider.environment, 'DEMO_CLIENT_ID')).toBe(env(gw, 'OIDC_CLIENT_ID'));
    expect(env(provider.environment, 'DEMO_CLIENT_SECRET')).toBe(env(gw, 'OIDC_CLIENT_SECRET'));
    expect(env(provider.environment, 'DEMO_API_AUDIENCE')).toBe(env(api.environment, 'DEMO_API_AUDIENCE'));
    expect(env(gw, 'UPSTREAM_URL')).toBe(`http://${env(api.environment, 'DEMO_API_HOST')}:${env(api.environment, 'DEMO_API_PORT')}`);
    const redisArgs = redis.command ?? [];
    const flag = (name: string): string | undefined => redisArgs[redisArgs.indexOf(name) + 1];
    expect(env(gw, 'REDIS_URL')).toBe(`redis://${flag('--bind')}:${flag('--port')}`);
    const hostPorts = [env(gw, 'PORT'), env(gw, 'METRICS_PORT'), env(provider.environment, 'DEMO_PROVIDER_PORT'), env(api.environment, 'DEMO_API_PORT'), flag('--port')];
    expect(new Set(hostPorts).size).toBe(hostPorts.length);
  });

  it('keeps Redis data with AOF on a volume and starts the gateway once Redis and the provider are healthy', () => {
    const redisArgs = redis.command ?? [];
    expect(redisArgs[redisArgs.indexOf('--appendonly') + 1]).toBe('yes');
    expect(redis.volumes).toEqual([expect.stringMatching(/^[\w-]+:\/data$/)]);
    expect(redis.healthcheck?.test).toEqual(expect.arrayContaining(['redis-cli']));
    expect(gateway.depends_on).toEqual({ redis: { condition: 'service_healthy' }, provider: { condition: 'service_healthy' }, api: { condition: 'service_started' } });
  });

  it('gives in-flight requests their SHUTDOWN_GRACE_S before Docker kills the gateway', () => {
    const grace = Number(env(gateway.environment, 'SHUTDOWN_GRACE_S'));
    const stopPeriod = /^(\d+)s$/.exec(gateway.stop_grace_period ?? '')?.[1];
    expect(Number(stopPeriod)).toBeGreaterThan(grace);
  });
});
