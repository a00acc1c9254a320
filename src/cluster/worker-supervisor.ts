import cluster, { type Worker } from 'node:cluster';
import { once } from 'node:events';
import type { Logger } from 'pino';
import { AggregatorRegistry } from 'prom-client';
import { z } from 'zod';
import type { Clock } from '../common/clock.js';
import type { OpsSources } from '../metrics/metrics-server.js';
import { isAnswer, type Ask, type Hurry, type Question } from './messages.js';
import { RestartBackoff } from './restart-backoff.js';

/** A worker's readiness checks take up to 2 s each (ReadinessService); one that has not answered by then is not ready. */
const ASK_TIMEOUT_MS = 3_000;
/**
 * A draining worker exits within SHUTDOWN_GRACE_S plus its own forced-exit delay (main.ts);
 * one still running after this margin on top is killed.
 */
const EXIT_MARGIN_MS = 5_000;

const ReadinessReport = z.object({
  body: z.union([z.object({ status: z.literal('ready') }), z.object({ status: z.literal('not_ready'), missing: z.array(z.string()) })]),
});

interface Slot {
  worker: Worker | undefined;
  /** The worker has its listener on the port: it serves requests and answers questions. */
  listening: boolean;
  readonly backoff: RestartBackoff;
  restart: NodeJS.Timeout | undefined;
}

interface Pending {
  readonly workerId: number;
  settle(value: unknown): void;
}

/**
 * The primary's workers: forks them, replaces one that dies (with back-off), asks them for their
 * metrics and readiness (METRICS_PORT is the primary's), and stops them all on shutdown.
 */
export class WorkerSupervisor implements OpsSources {
  private readonly slots: Slot[];
  private readonly pending = new Map<number, Pending>();
  private nextAsk = 0;
  private stopping = false;
  private clean = true;

  constructor(
    count: number,
    private readonly logger: Logger,
    clock: Clock,
  ) {
    this.slots = Array.from({ length: count }, () => ({ worker: undefined, listening: false, backoff: new RestartBackoff(clock), restart: undefined }));
  }

  start(): void {
    for (const slot of this.slots) this.fork(slot);
  }

  /** Prometheus text summed (or as prom-client aggregates each metric) over the listening workers. */
  async metrics(): Promise<{ contentType: string; body: string }> {
    const answers = await Promise.all(this.listening().map((worker) => this.ask(worker, 'metrics')));
    const registry = AggregatorRegistry.aggregate(answers.filter((answer): answer is unknown[] => Array.isArray(answer)));
    return { contentType: registry.contentType, body: await registry.metrics() };
  }

  /**
   * Ready when at least one worker listens and every listening worker is ready; `missing` joins what
   * the workers miss. A worker being replaced does not count: the others serve the port meanwhile.
   */
  async readiness(): Promise<{ httpStatus: 200 | 503; body: unknown }> {
    if (this.stopping) return { httpStatus: 503, body: { status: 'not_ready', missing: ['shutting_down'], workers: [] } };
    const workers = await Promise.all(
      this.listening().map(async (worker) => {
        const report = ReadinessReport.safeParse(await this.ask(worker, 'readiness'));
        return { pid: worker.process.pid, report: report.success ? report.data.body : undefined };
      }),
    );
    const missing = new Set<string>();
    if (workers.length === 0) missing.add('workers');
    for (const { report } of workers) {
      if (report === undefined) missing.add('worker_unresponsive');
      else if (report.status === 'not_ready') for (const name of report.missing) missing.add(name);
    }
    const listed = workers.map(({ pid, report }) => ({ pid, status: report?.status ?? 'unresponsive' }));
    if (missing.size === 0) return { httpStatus: 200, body: { status: 'ready', workers: listed } };
    return { httpStatus: 503, body: { status: 'not_ready', missing: [...missing], workers: listed } };
  }

  /**
   * SIGTERM to every worker, each of which drains as a single gateway does (main.ts); resolves once
   * all have exited, true when all of them exited cleanly.
   */
  async stop(graceS: number): Promise<boolean> {
    this.stopping = true;
    for (const slot of this.slots) {
      clearTimeout(slot.restart);
      slot.restart = undefined;
    }
    const live = this.live();
    // not worker.kill(): it disconnects first, and a disconnecting worker closes its listener without the drain.
    // A signal, not a message: a worker still booting has no handler yet, and SIGTERM ends it
    for (const worker of live) worker.process.kill('SIGTERM');
    const killer = setTimeout(() => {
      const left = this.live();
      this.logger.warn({ event: 'cluster_workers_killed', workerPids: left.map((w) => w.process.pid) }, 'workers still running after the shutdown grace period: killing them');
      this.clean = false;
      for (const worker of left) worker.process.kill('SIGKILL');
    }, graceS * 1000 + EXIT_MARGIN_MS);
    await Promise.all(live.map((worker) => (worker.isDead() ? Promise.resolve() : once(worker, 'exit'))));
    clearTimeout(killer);
    return this.clean;
  }

  /** A second signal: the draining workers close every connection now. */
  hurry(signal: NodeJS.Signals): void {
    const hurry: Hurry = { bffCluster: 'hurry', signal };
    for (const worker of this.live()) if (worker.isConnected()) worker.send(hurry);
  }

  private live(): Worker[] {
    return this.slots.flatMap((slot) => (slot.worker === undefined || slot.worker.isDead() ? [] : [slot.worker]));
  }

  private listening(): Worker[] {
    return this.slots.flatMap((slot) => (slot.worker !== undefined && slot.listening && slot.worker.isConnected() ? [slot.worker] : []));
  }

  private fork(slot: Slot): void {
    const worker = cluster.fork();
    slot.worker = worker;
    slot.listening = false;
    worker.on('listening', () => {
      slot.listening = true;
      slot.backoff.listening();
      this.logger.info({ event: 'worker_listening', workerPid: worker.process.pid }, 'worker serving the port');
    });
    worker.on('message', (message: unknown) => {
      if (isAnswer(message)) this.pending.get(message.id)?.settle(message.value);
    });
    worker.on('error', (error: Error) => this.logger.warn({ event: 'worker_channel_error', workerPid: worker.process.pid, err: error }, 'IPC with a worker failed'));
    worker.on('exit', (code: number | null, signal: NodeJS.Signals | null) => this.exited(slot, worker, code, signal));
  }

  private exited(slot: Slot, worker: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    if (slot.worker === worker) {
      slot.worker = undefined;
      slot.listening = false;
    }
    for (const pending of [...this.pending.values()]) if (pending.workerId === worker.id) pending.settle(undefined);
    const workerPid = worker.process.pid;
    if (this.stopping) {
      // SIGTERM before its handlers were installed (still booting) also ends a worker cleanly: it served nothing
      if (code !== 0 && signal !== 'SIGTERM') this.clean = false;
      this.logger.info({ event: 'worker_stopped', workerPid, code, signal }, 'worker stopped');
      return;
    }
    const restartInMs = slot.backoff.exited();
    this.logger.warn({ event: 'worker_exited', workerPid, code, signal, restartInMs }, 'worker exited: starting a replacement');
    slot.restart = setTimeout(() => {
      slot.restart = undefined;
      this.fork(slot);
    }, restartInMs);
  }

  /** The worker's answer, or undefined when it has none within ASK_TIMEOUT_MS (or is gone). */
  private ask(worker: Worker, question: Question): Promise<unknown> {
    const id = this.nextAsk++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => pending.settle(undefined), ASK_TIMEOUT_MS);
      const pending: Pending = {
        workerId: worker.id,
        settle: (value) => {
          clearTimeout(timer);
          this.pending.delete(id);
          resolve(value);
        },
      };
      this.pending.set(id, pending);
      const ask: Ask = { bffCluster: 'ask', id, question };
      worker.send(ask, undefined, (error: Error | null) => {
        if (error !== null) pending.settle(undefined);
      });
    });
  }
}
