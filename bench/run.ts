/**
 * `npm run bench`: requests/s, latency and CPU per request of three servers on 127.0.0.1, under wrk:
 *
 *   direct     the tiny upstream alone (bench/tiny-upstream.ts)
 *   bareProxy  Fastify + http-proxy adding a fixed Bearer header (bench/bare-proxy.ts): the floor
 *   gateway    `node dist/main.js` /api/* with a signed-in session (cookie + X-CSRF: 1)
 *   gatewayWorkers  with --workers N only: the same gateway with WORKERS=N (node:cluster), measured
 *              right after `gateway`; both then run on a Redis store, which more than one worker needs
 *   gatewayDpop with --dpop only: the same gateway with OIDC_DPOP=true (DPoP-bound tokens, a proof
 *              signed per upstream request), measured right after `gateway`
 *   gatewayCompare  with --compare FILE only: another build of the gateway (a patched copy, another
 *              branch's dist/main.js), measured right after `gateway` in every repetition, so a change
 *              is judged by per-repetition ratios rather than across runs
 *
 * Every server is a fresh process in every repetition and the three are measured one after the other
 * within it, because a restarted Node process can run ±15% faster or slower for its whole life: the
 * gateway is compared with the bare proxy of its own repetition, and the medians of those ratios are
 * reported. Writes bench/results/latest.json (smoke.json for --smoke; or --out).
 *
 *   node --import tsx bench/run.ts [--smoke] [--reps N] [--duration S] [--warmup S] [--connections C]
 *                                  [--log-level L] [--out FILE] [--main FILE] [--gateway-node-arg=ARG ...]
 *                                  [--profile gateway|bareProxy] [--workers N] [--tracing] [--dpop]
 *                                  [--compare FILE]
 *
 * --smoke: 1 repetition of 2 s, no target check; exits non-zero only when something broke.
 * --main FILE: the gateway build to run instead of dist/main.js.
 * --compare FILE: also measure that build right after the gateway in each repetition (a figure, not a target).
 * --gateway-node-arg=ARG: a node option for the gateway process only (repeatable).
 * --tracing: tracing on in the gateway (every span exported to the tiny upstream, which discards it).
 * --dpop: also measure the gateway with OIDC_DPOP=true against the same gateway without (a figure, not a target).
 * --workers N (N ≥ 2): also measure WORKERS=N against WORKERS=1, both on a private redis-server: a figure
 *   (the load generator shares the machine's cores), not a target.
 * --profile gateway|bareProxy: one run of that proxy under `node --cpu-prof` instead; the .cpuprofile
 *   lands in bench/results/profile/ and bench/profile-summary.ts summarises it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BrowserClient } from '../test/support/browser.js';
import { startOp, type RunningOp } from '../test/support/op.js';
import { freePort } from '../test/support/ports.js';
import { cookieHeader } from '../test/support/raw-http.js';
import { startRedis, type RunningRedis } from '../test/support/redis.js';
import { testEnvironment } from '../test/support/test-env.js';
import { eventually } from '../test/support/wait.js';
import { groupCpuTicks, killGroups, startServer, type BenchServer } from './servers.js';
import { runWrk, wrkVersion, type WrkResult } from './wrk.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RESULTS = `${ROOT}bench/results`;
const MAIN = `${ROOT}dist/main.js`;
const PATH = '/api/bench';
const THREADS = 2;
/**
 * Issue 17's targets against the bare proxy of the same repetition: this share of its requests/s
 * (memory store; the Redis store, measured with --workers, has its own), CPU per request and p99
 * at most these multiples of its own.
 */
const TARGET_RPS_RATIO = { memory: 0.75, redis: 0.65 } as const;
const TARGET_CPU_RATIO = 1.35;
const TARGET_P99_RATIO = 1.3;

type ServerName = 'direct' | 'bareProxy' | 'gateway' | 'gatewayWorkers' | 'gatewayDpop' | 'gatewayCompare';
const SERVERS: readonly ServerName[] = ['direct', 'bareProxy', 'gateway'];
/** One repetition: gatewayWorkers only with --workers, gatewayDpop only with --dpop, gatewayCompare only with --compare. */
type Repetition = Record<Exclude<ServerName, 'gatewayWorkers' | 'gatewayDpop' | 'gatewayCompare'>, Measurement> & {
  readonly gatewayWorkers?: Measurement;
  readonly gatewayDpop?: Measurement;
  readonly gatewayCompare?: Measurement;
};

interface Measurement extends WrkResult {
  /** CPU time of the measured server (the upstream for `direct`) per request. */
  readonly cpuUsPerRequest: number;
  /** CPU time of the tiny upstream per request, measured alongside. */
  readonly upstreamCpuUsPerRequest: number;
}

interface Settings {
  readonly smoke: boolean;
  readonly reps: number;
  readonly durationS: number;
  readonly warmupS: number;
  readonly connections: number;
  readonly logLevel: string;
  readonly out: string;
  /** The gateway's entry point: dist/main.js, or another build (a patched copy, another branch). */
  readonly main: string;
  /** Extra node options for the gateway only (`--max-semi-space-size=64`), to compare runtime settings. */
  readonly gatewayNodeArgs: readonly string[];
  /** Which proxy to run under --cpu-prof instead of benchmarking. */
  readonly profile: 'gateway' | 'bareProxy' | undefined;
  /** --workers N: also measure WORKERS=N (both gateways on Redis then). */
  readonly workers: number | undefined;
  /** --tracing: the gateway exports every span (OTLP/HTTP JSON) to the tiny upstream, which discards them. */
  readonly tracing: boolean;
  /** --dpop: also measure the gateway with OIDC_DPOP=true. */
  readonly dpop: boolean;
  /** --compare FILE: another build measured right after the gateway in each repetition. */
  readonly compare: string | undefined;
}

function settings(): Settings {
  const { values } = parseArgs({
    options: {
      smoke: { type: 'boolean', default: false },
      reps: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string', default: '32' },
      'log-level': { type: 'string', default: 'warn' },
      out: { type: 'string' },
      profile: { type: 'string' },
      main: { type: 'string', default: MAIN },
      'gateway-node-arg': { type: 'string', multiple: true, default: [] },
      workers: { type: 'string' },
      tracing: { type: 'boolean', default: false },
      dpop: { type: 'boolean', default: false },
      compare: { type: 'string' },
    },
  });
  // whole numbers only: wrk takes whole seconds, and half a repetition means nothing
  const number = (name: string, raw: string | undefined, fallback: number): number => {
    const value = Number(raw ?? fallback);
    if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} must be a positive whole number (got "${raw}")`);
    return value;
  };
  const smoke = values.smoke;
  return {
    smoke,
    reps: number('reps', values.reps, smoke ? 1 : 5),
    durationS: number('duration', values.duration, smoke ? 2 : 10),
    warmupS: number('warmup', values.warmup, smoke ? 1 : 3),
    connections: number('connections', values.connections, 32),
    logLevel: values['log-level'],
    // a smoke run must not overwrite the figures of the last real run
    out: values.out ?? `${RESULTS}/${smoke ? 'smoke' : 'latest'}.json`,
    profile: profileTarget(values.profile),
    main: values.main,
    gatewayNodeArgs: values['gateway-node-arg'],
    workers: workerCount(values.workers),
    tracing: values.tracing,
    dpop: values.dpop,
    compare: values.compare,
  };
}

function workerCount(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 2) throw new Error(`--workers takes a whole number of at least 2 (got "${raw}")`);
  return value;
}

function profileTarget(raw: string | undefined): Settings['profile'] {
  if (raw === undefined || raw === 'gateway' || raw === 'bareProxy') return raw;
  throw new Error(`--profile takes gateway or bareProxy (got "${raw}")`);
}

const CLOCK_TICKS_PER_S = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const high = sorted[middle] ?? Number.NaN;
  return sorted.length % 2 === 1 ? high : ((sorted[middle - 1] ?? Number.NaN) + high) / 2;
}

const round = (value: number, digits: number): number => Number(value.toFixed(digits));

/** A warm-up run (JIT, agent sockets), then the measured run with CPU time read around it. */
async function measure(config: Settings, target: BenchServer, upstream: BenchServer, headers: readonly string[]): Promise<Measurement> {
  const wrk = { url: `${target.url}${PATH}`, headers, threads: THREADS, connections: config.connections };
  await runWrk({ ...wrk, durationS: config.warmupS });
  // the whole process group: a WORKERS > 1 gateway is a primary and its workers
  const before = { target: groupCpuTicks(target.pid), upstream: groupCpuTicks(upstream.pid) };
  const result = await runWrk({ ...wrk, durationS: config.durationS });
  const after = { target: groupCpuTicks(target.pid), upstream: groupCpuTicks(upstream.pid) };
  for (const server of [target, upstream]) if (server.crashed()) throw new Error(`${server.name} crashed under load:\n${server.logTail()}`);
  if (result.non2xx > 0 || result.socketErrors > 0) {
    throw new Error(`${target.name}: ${result.non2xx} non-2xx responses and ${result.socketErrors} socket errors out of ${result.requests}:\n${target.logTail()}`);
  }
  const usPerRequest = (ticks: number): number => (ticks / CLOCK_TICKS_PER_S) * 1e6 / result.requests;
  return { ...result, cpuUsPerRequest: usPerRequest(after.target - before.target), upstreamCpuUsPerRequest: usPerRequest(after.upstream - before.upstream) };
}

/** One request before wrk: a 401 or 403 measured at full speed would look like a fast gateway. */
async function expectOk(url: string, headers: readonly string[]): Promise<void> {
  const init = new Headers();
  for (const header of headers) {
    const colon = header.indexOf(':');
    init.set(header.slice(0, colon), header.slice(colon + 1).trim());
  }
  const response = await fetch(url, { headers: init });
  await response.arrayBuffer();
  if (response.status !== 200) throw new Error(`${url} answered ${response.status}, not 200`);
}

function tsx(script: string): string[] {
  return ['--import', 'tsx', `${ROOT}bench/${script}`];
}

async function startUpstream(): Promise<BenchServer> {
  const port = await freePort();
  return startServer({ name: 'tiny upstream', args: tsx('tiny-upstream.ts'), env: { BENCH_PORT: String(port) }, port, readyPath: '/healthz', logPath: `${RESULTS}/upstream.log` });
}

async function startBareProxy(upstream: BenchServer, nodeArgs: readonly string[] = []): Promise<BenchServer> {
  const port = await freePort();
  return startServer({
    name: 'bare proxy',
    args: [...nodeArgs, ...tsx('bare-proxy.ts')],
    env: { BENCH_PORT: String(port), BENCH_UPSTREAM_URL: upstream.url },
    port,
    readyPath: '/healthz',
    logPath: `${RESULTS}/bare-proxy.log`,
  });
}

/** WORKERS and the Redis store they need (--workers). */
interface ClusterSetting {
  readonly workers: number;
  readonly redisUrl: string;
}

/** A gateway to measure: its cluster (--workers), whether OIDC_DPOP is on (--dpop), its build (--compare). */
interface GatewayVariant {
  readonly cluster?: ClusterSetting | undefined;
  readonly dpop?: boolean;
  readonly main?: string;
}

async function startGatewayServer(config: Settings, op: RunningOp, port: number, upstream: BenchServer, nodeArgs: readonly string[] = [], { cluster, dpop = false, main = config.main }: GatewayVariant = {}): Promise<BenchServer> {
  const url = `http://127.0.0.1:${port}`;
  const metricsPort = cluster === undefined ? undefined : await freePort();
  const env = testEnvironment({
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_URL: url,
    OIDC_ISSUER: op.issuer,
    OIDC_CLIENT_ID: op.clientId,
    OIDC_CLIENT_SECRET: op.clientSecret,
    UPSTREAM_URL: upstream.url,
    SESSION_STORE: 'memory',
    LOG_LEVEL: config.logLevel,
    OIDC_DISCOVERY_TIMEOUT_S: '10',
    ...(cluster === undefined ? {} : { SESSION_STORE: 'redis', REDIS_URL: cluster.redisUrl, WORKERS: String(cluster.workers), METRICS_PORT: String(metricsPort) }),
    ...(config.tracing ? { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${upstream.url}/v1/traces` } : {}),
    ...(dpop ? { OIDC_DPOP: 'true' } : {}),
  });
  const defined = Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
  const name = `${cluster === undefined || cluster.workers === 1 ? 'gateway' : `gateway WORKERS=${cluster.workers}`}${dpop ? ' OIDC_DPOP' : ''}${main === config.main ? '' : ` ${main}`}`;
  const server = await startServer({ name, args: [...config.gatewayNodeArgs, ...nodeArgs, main], env: defined, port, readyPath: '/readyz', logPath: `${RESULTS}/gateway.log` });
  // /readyz on PORT is one worker's; the primary's on METRICS_PORT says when all of them are
  if (cluster !== undefined && cluster.workers > 1) {
    await eventually(
      async () => {
        const body = (await (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).json()) as { workers?: { status: string }[] };
        return body.workers?.filter((worker) => worker.status === 'ready').length === cluster.workers ? true : undefined;
      },
      30_000,
      `${name}: every worker ready`,
    );
  }
  return server;
}

/** Signs in through the real provider; returns the headers a signed-in SPA's fetch() sends. */
async function signedInHeaders(gateway: BenchServer): Promise<string[]> {
  const browser = new BrowserClient();
  const { final } = await browser.signIn(gateway.url);
  await final.arrayBuffer();
  const cookie = await cookieHeader(browser, gateway.url);
  if (cookie === '') throw new Error('no session cookie after sign-in');
  return [`Cookie: ${cookie}`, 'X-CSRF: 1'];
}

const DIRECT_HEADERS = ['Authorization: Bearer bench-fixed-access-token'];

async function measureGateway(config: Settings, op: RunningOp, gatewayPort: number, upstream: BenchServer, running: BenchServer[], variant: GatewayVariant = {}): Promise<Measurement> {
  const gateway = await startGatewayServer(config, op, gatewayPort, upstream, [], variant);
  running.push(gateway);
  const headers = await signedInHeaders(gateway);
  await expectOk(`${gateway.url}${PATH}`, headers);
  const result = await measure(config, gateway, upstream, headers);
  // the next gateway of the repetition takes the same port (the provider's registration names it)
  await gateway.stop();
  return result;
}

async function repetition(config: Settings, op: RunningOp, gatewayPort: number, redis: RunningRedis | undefined): Promise<Repetition> {
  const running: BenchServer[] = [];
  try {
    const upstream = await startUpstream();
    running.push(upstream);
    await expectOk(`${upstream.url}${PATH}`, DIRECT_HEADERS);
    const direct = await measure(config, upstream, upstream, DIRECT_HEADERS);

    const bare = await startBareProxy(upstream);
    running.push(bare);
    await expectOk(`${bare.url}${PATH}`, []);
    const bareProxy = await measure(config, bare, upstream, []);

    const single = config.workers === undefined || redis === undefined ? undefined : { workers: 1, redisUrl: redis.url };
    const gateway = await measureGateway(config, op, gatewayPort, upstream, running, { cluster: single });
    // DPoP on right after it off, on the same store
    const gatewayDpop = config.dpop ? { gatewayDpop: await measureGateway(config, op, gatewayPort, upstream, running, { cluster: single, dpop: true }) } : {};
    const gatewayCompare = config.compare === undefined ? {} : { gatewayCompare: await measureGateway(config, op, gatewayPort, upstream, running, { cluster: single, main: config.compare }) };
    if (config.workers === undefined || redis === undefined) return { direct, bareProxy, gateway, ...gatewayDpop, ...gatewayCompare };
    const gatewayWorkers = await measureGateway(config, op, gatewayPort, upstream, running, { cluster: { workers: config.workers, redisUrl: redis.url } });
    return { direct, bareProxy, gateway, gatewayWorkers, ...gatewayDpop, ...gatewayCompare };
  } finally {
    for (const server of running.reverse()) await server.stop();
  }
}

/** One run of a proxy under --cpu-prof; SIGTERM lets Node write the profile on its way out. */
async function profile(config: Settings, target: 'gateway' | 'bareProxy', op: RunningOp, gatewayPort: number): Promise<string> {
  const dir = `${RESULTS}/profile`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const upstream = await startUpstream();
  try {
    const nodeArgs = ['--cpu-prof', '--cpu-prof-dir', dir];
    const server = target === 'gateway' ? await startGatewayServer(config, op, gatewayPort, upstream, nodeArgs) : await startBareProxy(upstream, nodeArgs);
    try {
      const headers = target === 'gateway' ? await signedInHeaders(server) : [];
      const result = await measure(config, server, upstream, headers);
      process.stdout.write(`profiled ${target}: ${result.requestsPerSecond.toFixed(0)} req/s, ${result.cpuUsPerRequest.toFixed(1)} µs CPU/request (the profiler adds some)\n`);
    } finally {
      await server.stop(15_000);
    }
  } finally {
    await upstream.stop();
  }
  // tsx's loader runs on a worker thread that writes a profile of its own: the main thread's is the largest
  const files = readdirSync(dir)
    .filter((name) => name.endsWith('.cpuprofile'))
    .map((name) => ({ path: `${dir}/${name}`, size: statSync(`${dir}/${name}`).size }))
    .sort((a, b) => b.size - a.size);
  const largest = files[0];
  if (largest === undefined) throw new Error(`no .cpuprofile written to ${dir}`);
  return largest.path;
}

function measured(rep: Repetition, name: ServerName): Measurement {
  const m = rep[name];
  if (m === undefined) throw new Error(`${name} was not measured`);
  return m;
}

/** Medians of one server's measurements over the repetitions. */
function serverSummary(reps: readonly Repetition[], name: ServerName) {
  const of = reps.map((r) => measured(r, name));
  return {
    requestsPerSecond: round(median(of.map((m) => m.requestsPerSecond)), 0),
    p50Ms: round(median(of.map((m) => m.p50Ms)), 3),
    p99Ms: round(median(of.map((m) => m.p99Ms)), 3),
    cpuUsPerRequest: round(median(of.map((m) => m.cpuUsPerRequest)), 1),
    upstreamCpuUsPerRequest: round(median(of.map((m) => m.upstreamCpuUsPerRequest)), 1),
    bytesPerResponse: median(of.map((m) => m.bytesPerResponse)),
  };
}

function summarise(reps: readonly Repetition[]) {
  const server = (name: ServerName) => serverSummary(reps, name);
  const versus = (a: ServerName, b: ServerName) => {
    const pairs = reps.map((r) => [measured(r, a), measured(r, b)] as const);
    return {
      rpsRatio: round(median(pairs.map(([x, y]) => x.requestsPerSecond / y.requestsPerSecond)), 3),
      p50DeltaMs: round(median(pairs.map(([x, y]) => x.p50Ms - y.p50Ms)), 3),
      p99DeltaMs: round(median(pairs.map(([x, y]) => x.p99Ms - y.p99Ms)), 3),
      p99Ratio: round(median(pairs.map(([x, y]) => x.p99Ms / y.p99Ms)), 3),
      cpuUsPerRequestRatio: round(median(pairs.map(([x, y]) => x.cpuUsPerRequest / y.cpuUsPerRequest)), 3),
      cpuUsPerRequestDelta: round(median(pairs.map(([x, y]) => x.cpuUsPerRequest - y.cpuUsPerRequest)), 1),
    };
  };
  const base = { direct: server('direct'), bareProxy: server('bareProxy'), gateway: server('gateway'), gatewayVsBareProxy: versus('gateway', 'bareProxy'), bareProxyVsDirect: versus('bareProxy', 'direct') };
  const workers = reps.every((r) => r.gatewayWorkers === undefined) ? {} : { gatewayWorkers: server('gatewayWorkers'), gatewayWorkersVsGateway: versus('gatewayWorkers', 'gateway') };
  const dpop = reps.every((r) => r.gatewayDpop === undefined) ? {} : { gatewayDpop: server('gatewayDpop'), gatewayDpopVsGateway: versus('gatewayDpop', 'gateway') };
  const compare = reps.every((r) => r.gatewayCompare === undefined) ? {} : { gatewayCompare: server('gatewayCompare'), gatewayCompareVsGateway: versus('gatewayCompare', 'gateway') };
  return { ...base, ...workers, ...dpop, ...compare };
}

function row(cells: readonly (string | number)[]): string {
  return cells.map((cell, i) => (i === 0 ? String(cell).padEnd(18) : String(cell).padStart(11))).join(' ');
}

function printMeasurement(label: string, m: Measurement): string {
  return row([label, m.requestsPerSecond.toFixed(0), m.p50Ms.toFixed(3), m.p99Ms.toFixed(3), m.cpuUsPerRequest.toFixed(1), m.upstreamCpuUsPerRequest.toFixed(1)]);
}

async function main(): Promise<void> {
  const config = settings();
  for (const build of [config.main, config.compare]) if (build !== undefined && !existsSync(build)) throw new Error(`${build} is missing: run npm run build first`);
  mkdirSync(RESULTS, { recursive: true });
  const gatewayPort = await freePort();
  // the provider's client registration names the gateway's URL, so the gateway keeps one port throughout
  const op = await startOp({ gatewayUrl: `http://127.0.0.1:${gatewayPort}`, accessTokenTtlS: 86_400 });
  const redis = config.workers === undefined ? undefined : await startRedis();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killGroups([op.child.process.pid, redis?.child.process.pid]);
      process.exit(130);
    });
  }
  try {
    if (config.profile !== undefined) {
      const file = await profile(config, config.profile, op, gatewayPort);
      process.stdout.write(`profile: ${file}\nsummary: node --import tsx bench/profile-summary.ts ${file}\n`);
      return;
    }
    const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGiB: round(totalmem() / 2 ** 30, 1), kernel: release(), loadAverageAtStart: loadavg().map((l) => round(l, 2)), wrk: await wrkVersion() };
    const store = config.workers === undefined ? 'memory store' : `Redis store, WORKERS=1 and WORKERS=${config.workers}`;
    process.stdout.write(`bench: ${config.reps} × ${config.durationS} s (+${config.warmupS} s warm-up) per server, wrk -t${THREADS} -c${config.connections}, gateway LOG_LEVEL=${config.logLevel}, ${store}, ${machine.cpus} CPUs, load ${machine.loadAverageAtStart.join(' ')}\n`);
    const names: readonly ServerName[] = [
      ...SERVERS,
      ...(config.dpop ? (['gatewayDpop'] as const) : []),
      ...(config.compare === undefined ? [] : (['gatewayCompare'] as const)),
      ...(config.workers === undefined ? [] : (['gatewayWorkers'] as const)),
    ];
    process.stdout.write(`${row(['', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'upstr µs/req'])}\n`);
    const reps: Repetition[] = [];
    for (let rep = 1; rep <= config.reps; rep++) {
      const result = await repetition(config, op, gatewayPort, redis);
      reps.push(result);
      for (const name of names) process.stdout.write(`${printMeasurement(`#${rep} ${name}`, measured(result, name))}\n`);
    }
    const summary = summarise(reps);
    for (const name of names) {
      const s = serverSummary(reps, name);
      process.stdout.write(`${row([`median ${name}`, s.requestsPerSecond, s.p50Ms.toFixed(3), s.p99Ms.toFixed(3), s.cpuUsPerRequest.toFixed(1), s.upstreamCpuUsPerRequest.toFixed(1)])}\n`);
    }
    const ratio = summary.gatewayVsBareProxy;
    const storeName = config.workers === undefined ? 'memory' : 'redis';
    // the issue sets CPU and p99 targets for the memory store only; the Redis store's is req/s
    const target = storeName === 'memory' ? { rpsRatio: TARGET_RPS_RATIO.memory, cpuUsPerRequestRatio: TARGET_CPU_RATIO, p99Ratio: TARGET_P99_RATIO } : { rpsRatio: TARGET_RPS_RATIO.redis };
    const met = ratio.rpsRatio >= target.rpsRatio && ratio.cpuUsPerRequestRatio <= (target.cpuUsPerRequestRatio ?? Infinity) && ratio.p99Ratio <= (target.p99Ratio ?? Infinity);
    process.stdout.write(
      `gateway vs bare proxy (medians of per-repetition ratios): req/s ×${ratio.rpsRatio}, p50 ${signed(ratio.p50DeltaMs)} ms, p99 ${signed(ratio.p99DeltaMs)} ms (×${ratio.p99Ratio}), CPU/req ×${ratio.cpuUsPerRequestRatio} (${signed(ratio.cpuUsPerRequestDelta)} µs)\n`,
    );
    if (!config.smoke) {
      const limits = target.cpuUsPerRequestRatio === undefined ? '' : `, CPU/req ≤ ×${target.cpuUsPerRequestRatio}, p99 ≤ ×${target.p99Ratio}`;
      process.stdout.write(`target, ${storeName} store (req/s ≥ ×${target.rpsRatio}${limits}): ${met ? 'met' : 'MISSED'}\n`);
    }
    if ('gatewayWorkersVsGateway' in summary) {
      const w = summary.gatewayWorkersVsGateway;
      process.stdout.write(`WORKERS=${config.workers} vs WORKERS=1 (a figure, not a target): req/s ×${w.rpsRatio}, p50 ${signed(w.p50DeltaMs)} ms, p99 ${signed(w.p99DeltaMs)} ms, CPU/req ×${w.cpuUsPerRequestRatio}\n`);
    }
    if ('gatewayDpopVsGateway' in summary) {
      const d = summary.gatewayDpopVsGateway;
      process.stdout.write(`OIDC_DPOP on vs off (a figure, not a target): req/s ×${d.rpsRatio}, p50 ${signed(d.p50DeltaMs)} ms, p99 ${signed(d.p99DeltaMs)} ms, CPU/req ×${d.cpuUsPerRequestRatio} (${signed(d.cpuUsPerRequestDelta)} µs)\n`);
    }
    if ('gatewayCompareVsGateway' in summary) {
      const c = summary.gatewayCompareVsGateway;
      process.stdout.write(`${config.compare} vs ${config.main} (a figure, not a target): req/s ×${c.rpsRatio}, p99 ×${c.p99Ratio}, CPU/req ×${c.cpuUsPerRequestRatio} (${signed(c.cpuUsPerRequestDelta)} µs)\n`);
    }
    const report = {
      machine,
      node: process.version,
      reps: config.reps,
      duration: config.durationS,
      warmup: config.warmupS,
      connections: config.connections,
      threads: THREADS,
      gatewayLogLevel: config.logLevel,
      gatewayMain: config.main,
      gatewayNodeArgs: config.gatewayNodeArgs,
      gatewayStore: config.workers === undefined ? 'memory' : 'redis',
      workers: config.workers ?? 1,
      dpop: config.dpop,
      compare: config.compare,
      smoke: config.smoke,
      ...summary,
      target: { ...target, met },
      repetitions: reps,
      finishedAt: new Date().toISOString(),
    };
    writeFileSync(config.out, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`wrote ${config.out}\n`);
  } finally {
    await op.stop();
    await redis?.close();
  }
}

function signed(value: number): string {
  return value >= 0 ? `+${value}` : String(value);
}

try {
  await main();
} catch (error) {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
}
