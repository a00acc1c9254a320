import { once } from 'node:events';
import { BrowserClient } from '../support/browser.js';
import { runGatewayToExit, startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import { startOp, type RunningOp } from '../support/op.js';
import { freePort } from '../support/ports.js';
import { startRedis, type RunningRedis } from '../support/redis.js';
import { followStream, startStreamingUpstream, type StreamingUpstream } from '../support/streaming-upstream.js';
import { redisReplicaEnvironment, testEnvironment } from '../support/test-env.js';
import { startUpstream, type RunningUpstream } from '../support/upstream.js';
import { eventually, waitUntilReady } from '../support/wait.js';

type LogLine = Readonly<Record<string, unknown>>;

function isLogLine(value: unknown): value is LogLine {
  return typeof value === 'object' && value !== null;
}

/** Every JSON line the primary and its workers wrote (they share stdout; `pid` tells them apart). */
function logLines(gateway: GatewayProcess): LogLine[] {
  return gateway.child
    .output()
    .split('\n')
    .flatMap((line) => {
      if (!line.startsWith('{')) return [];
      try {
        const parsed: unknown = JSON.parse(line);
        return isLogLine(parsed) ? [parsed] : [];
      } catch {
        return [];
      }
    });
}

function eventLines(gateway: GatewayProcess, event: string): LogLine[] {
  return logLines(gateway).filter((line) => line['event'] === event);
}

/**
 * WORKERS=2: `node dist/main.js` as a primary with two node:cluster workers sharing the port, on a
 * real redis-server, the real provider and the real upstream (plus a streaming one for the drain).
 */
describe('WORKERS=2 (node:cluster workers behind one primary)', () => {
  let redis: RunningRedis;
  let op: RunningOp;
  let upstream: RunningUpstream;
  let streaming: StreamingUpstream;
  let port: string;
  let metricsUrl: string;
  let gateway: GatewayProcess;

  /** The cluster on `port` (the provider's registration names it), once both workers are ready. */
  async function startCluster(): Promise<GatewayProcess> {
    const started = await startGatewayProcess(
      redisReplicaEnvironment(port, op, upstream.url, redis.url, {
        WORKERS: '2',
        METRICS_PORT: new URL(metricsUrl).port,
        SHUTDOWN_GRACE_S: '30',
        PROXY_ROUTES: JSON.stringify([
          { prefix: '/api/stream', target: streaming.url },
          { prefix: '/api', target: upstream.url },
        ]),
      }),
    );
    await waitUntilReady(started.url);
    await eventually(async () => ((await readyWorkerPids()).length === 2 ? true : undefined), 30_000, 'two ready workers on METRICS_PORT');
    return started;
  }

  beforeAll(async () => {
    redis = await startRedis();
    port = String(await freePort());
    metricsUrl = `http://127.0.0.1:${await freePort()}`;
    op = await startOp({ gatewayUrl: `http://127.0.0.1:${port}` });
    upstream = await startUpstream(op);
    streaming = await startStreamingUpstream();
    gateway = await startCluster();
  }, 60_000);
  afterAll(async () => {
    await gateway.stop();
    await streaming.close();
    await upstream.close();
    await op.stop();
    await redis.close();
  });

  /** The pids /readyz on METRICS_PORT lists as ready workers. */
  async function readyWorkerPids(): Promise<number[]> {
    const body = (await (await fetch(`${metricsUrl}/readyz`)).json()) as { workers: { pid: number; status: string }[] };
    return body.workers.filter((worker) => worker.status === 'ready').map((worker) => worker.pid);
  }

  /** `/api/whoami` on a connection of its own: the primary hands each connection to the next worker. */
  async function whoami(browser: BrowserClient, requestId: string): Promise<{ status: number; sub: unknown; pid: number }> {
    const response = await browser.request(`${gateway.url}/api/whoami`, { headers: { 'x-csrf': '1', 'x-request-id': requestId, connection: 'close' } });
    const body = (await response.json()) as { sub?: unknown };
    // the access-log line is written when the response ends: it may trail the response by a moment
    const line = await eventually(
      () => Promise.resolve(logLines(gateway).find((entry) => entry['event'] === 'request' && entry['reqId'] === requestId)),
      5_000,
      `the log line of ${requestId}`,
    );
    return { status: response.status, sub: body.sub, pid: Number(line['pid']) };
  }

  /** Until `want` is among the pids that answered, at most `max` requests; every one must succeed for alice. */
  async function whoamiUntil(browser: BrowserClient, tag: string, done: (pids: ReadonlySet<number>) => boolean, max = 12): Promise<Set<number>> {
    const pids = new Set<number>();
    for (let i = 0; i < max && !done(pids); i++) {
      const answer = await whoami(browser, `${tag}-${i}`);
      expect({ status: answer.status, sub: answer.sub }).toEqual({ status: 200, sub: 'alice' });
      pids.add(answer.pid);
    }
    return pids;
  }

  async function apiRequestsCounted(): Promise<number> {
    const text = await (await fetch(`${metricsUrl}/metrics`)).text();
    const series = text.split('\n').filter((line) => line.startsWith('bff_http_request_duration_seconds_count{') && line.includes('group="api"') && line.includes('status_class="2xx"'));
    // summed over the workers: one series, not one per worker
    expect(series.length).toBeLessThanOrEqual(1);
    return series.length === 0 ? 0 : Number(series[0]?.split(' ').at(-1));
  }

  it('serves one session from both workers', async () => {
    const workers = await readyWorkerPids();
    expect(workers).toHaveLength(2);
    expect(workers).not.toContain(gateway.child.process.pid);
    const browser = new BrowserClient();
    await browser.signIn(gateway.url);
    const pids = await whoamiUntil(browser, 'both', (seen) => seen.size === 2);
    expect([...pids].sort()).toEqual([...workers].sort());
  });

  it('serves /metrics on METRICS_PORT summed over the workers', async () => {
    const browser = new BrowserClient();
    await browser.signIn(gateway.url);
    const before = await apiRequestsCounted();
    const pids = new Set<number>();
    for (let i = 0; i < 6; i++) {
      const answer = await whoami(browser, `metrics-${i}`);
      expect(answer.status).toBe(200);
      pids.add(answer.pid);
    }
    expect(pids.size).toBe(2);
    const after = await eventually(async () => {
      const count = await apiRequestsCounted();
      return count >= before + 6 ? count : undefined;
    }, 10_000, 'six more /api requests counted');
    expect(after - before).toBe(6);
    // the main port (a worker) does not serve /metrics: METRICS_PORT is the primary's
    expect((await fetch(`${gateway.url}/metrics`)).status).toBe(404);
  });

  it('replaces a killed worker, logs it, and the session keeps working on the replacement', async () => {
    const browser = new BrowserClient();
    await browser.signIn(gateway.url);
    const [victim, survivor] = await readyWorkerPids();
    if (victim === undefined || survivor === undefined) throw new Error('two workers expected');

    process.kill(victim, 'SIGKILL');
    const replaced = await eventually(async () => {
      const pids = await readyWorkerPids();
      return pids.length === 2 && !pids.includes(victim) ? pids : undefined;
    }, 30_000, 'a ready replacement worker');
    expect(replaced).toContain(survivor);
    const replacement = replaced.find((pid) => pid !== survivor);
    expect(eventLines(gateway, 'worker_exited')).toEqual([expect.objectContaining({ level: 40, workerPid: victim, signal: 'SIGKILL', code: null, restartInMs: 500 })]);

    const pids = await whoamiUntil(browser, 'replaced', (seen) => replacement !== undefined && seen.has(replacement));
    expect(pids).toContain(replacement);
  });

  it('reports the workers\' readiness on METRICS_PORT: 503 naming the session store while Redis does not answer', async () => {
    const ready = await fetch(`${metricsUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', workers: [expect.objectContaining({ status: 'ready' }), expect.objectContaining({ status: 'ready' })] });

    redis.freeze();
    try {
      const notReady = await eventually(async () => {
        const response = await fetch(`${metricsUrl}/readyz`);
        return response.status === 503 ? ((await response.json()) as { missing: string[] }) : undefined;
      }, 20_000, '/readyz 503 on METRICS_PORT');
      // a worker slower than the primary's deadline under load adds worker_unresponsive; the store is named either way
      expect(notReady.missing).toContain('session_store');
    } finally {
      redis.thaw();
    }
    await eventually(async () => ((await fetch(`${metricsUrl}/readyz`)).status === 200 ? true : undefined), 20_000, '/readyz 200 again');
  });

  /**
   * SIGTERM to the primary alone (as Docker and Kubernetes send it) or to the whole process group (as a
   * terminal's Ctrl-C, or an init that signals the group): either way each worker drains once, a
   * streaming response finishes, and the primary exits 0.
   */
  async function drainsOnSigterm(target: 'primary' | 'group'): Promise<void> {
    const browser = new BrowserClient();
    await browser.signIn(gateway.url);
    const response = await browser.request(`${gateway.url}/api/stream`, { headers: { 'x-csrf': '1' } });
    expect(response.status).toBe(200);
    const stream = await followStream(response);
    expect(stream.first).toBe('first\n');
    const workers = await readyWorkerPids();
    const primary = gateway.child.process;
    const primaryPid = primary.pid;
    if (primaryPid === undefined) throw new Error('no primary pid');
    const exited = once(primary, 'exit').then(([code]: unknown[]) => code);

    process.kill(target === 'group' ? -primaryPid : primaryPid, 'SIGTERM');
    await eventually(
      () => Promise.resolve(new Set(eventLines(gateway, 'shutdown_started').map((line) => line['pid'])).size === 2 ? true : undefined),
      10_000,
      'both workers draining',
    );
    expect((await fetch(`${metricsUrl}/readyz`)).status).toBe(503);
    // the streaming response holds its worker, and the primary waits for it
    expect(primary.exitCode).toBeNull();

    streaming.release();
    expect(await stream.end).toEqual({ ended: 'complete', rest: 'last\n' });
    expect(await exited).toBe(0);
    expect(eventLines(gateway, 'shutdown_complete').map((line) => line['pid']).sort()).toEqual([...workers].sort());
    expect(eventLines(gateway, 'worker_stopped').map((line) => [line['workerPid'], line['code']]).sort()).toEqual([...workers].sort().map((pid) => [pid, 0]));
    expect(eventLines(gateway, 'cluster_shutdown_complete')).toEqual([expect.objectContaining({ pid: primaryPid, clean: true })]);
    for (const event of ['shutdown_hurried', 'shutdown_forced_exit', 'shutdown_grace_expired', 'cluster_workers_killed']) expect(eventLines(gateway, event)).toEqual([]);
  }

  it('drains every worker on SIGTERM to the primary: a streaming response finishes, then the primary exits 0', async () => {
    await drainsOnSigterm('primary');
  });

  it('drains each worker once when SIGTERM reaches the whole process group', async () => {
    await gateway.stop(); // already exited when the test before it ran
    gateway = await startCluster();
    await drainsOnSigterm('group');
  });
});

describe('WORKERS configuration (node dist/main.js)', () => {
  it('exits 78 with one line each when WORKERS=2 has neither the Redis store nor METRICS_PORT', async () => {
    const result = await runGatewayToExit(testEnvironment({ WORKERS: '2' }));
    expect(result.code).toBe(78);
    expect(result.stderr.trim().split('\n')).toEqual([
      'config error: WORKERS: WORKERS=2 requires SESSION_STORE=redis, which the workers share',
      'config error: WORKERS: WORKERS=2 requires METRICS_PORT, where the primary serves /metrics, /healthz and /readyz for all workers',
    ]);
  });

  it('exits 78 naming METRICS_PORT when WORKERS=3 runs on Redis without it', async () => {
    const result = await runGatewayToExit(testEnvironment({ WORKERS: '3', SESSION_STORE: 'redis', REDIS_URL: 'redis://127.0.0.1:9' }));
    expect(result.code).toBe(78);
    expect(result.stderr.trim().split('\n')).toEqual(['config error: WORKERS: WORKERS=3 requires METRICS_PORT, where the primary serves /metrics, /healthz and /readyz for all workers']);
  });
});
