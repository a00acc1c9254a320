import cluster from 'node:cluster';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { answerPrimary } from '../cluster/worker.js';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { LIVENESS, ReadinessService } from '../health/readiness.service.js';
import { Metrics } from './metrics.js';

/** What an ops listener serves: the metrics text and the readiness answer. */
export interface OpsSources {
  metrics(): Promise<{ readonly contentType: string; readonly body: string }>;
  readiness(): Promise<{ readonly httpStatus: number; readonly body: unknown }>;
}

/**
 * With METRICS_PORT, /metrics is served here instead of on the public port, so it can stay on an
 * internal network. /healthz and /readyz are served here too: the main port's connection caps and
 * timeouts never apply here, so a flood cannot make the orchestrator restart a healthy process.
 * It closes last on shutdown: the drain itself can still be scraped.
 *
 * In a cluster worker (WORKERS > 1) it does not listen: the primary owns METRICS_PORT and asks each
 * worker for its metrics and readiness over the cluster's IPC channel.
 */
@Injectable()
export class MetricsServer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly log = new Logger(MetricsServer.name);
  private server: Server | undefined;
  private stopAnswering: (() => void) | undefined;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly metrics: Metrics,
    private readonly readiness: ReadinessService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (cluster.isWorker) {
      this.stopAnswering = answerPrimary({ metrics: () => this.metrics.registry.getMetricsAsJSON(), readiness: () => this.readiness.report() });
      return;
    }
    const port = this.config.ops.metricsPort;
    if (port === undefined) return;
    this.server = await listenOps(port, this.config.server.host, { metrics: () => this.metrics.render(), readiness: () => this.readiness.report() }, (message) =>
      this.log.error(message),
    );
    this.log.log(`metrics served on port ${port}`);
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopAnswering?.();
    this.stopAnswering = undefined;
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    await closeOps(server);
  }
}

/** The ops listener: GET/HEAD /metrics, /healthz and /readyz, 404 for anything else. */
export async function listenOps(port: number, host: string, sources: OpsSources, logError: (message: string) => void): Promise<Server> {
  const server = createServer((req, res) => void handle(req, res, sources, logError));
  server.listen(port, host);
  await once(server, 'listening');
  return server;
}

export async function closeOps(server: Server): Promise<void> {
  const closed = once(server, 'close');
  server.close();
  server.closeAllConnections();
  await closed;
}

async function handle(req: IncomingMessage, res: ServerResponse, sources: OpsSources, logError: (message: string) => void): Promise<void> {
  const path = (req.url ?? '/').split('?', 1)[0];
  const known = path === '/metrics' || path === '/healthz' || path === '/readyz';
  if (!known || (req.method !== 'GET' && req.method !== 'HEAD')) {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
    return;
  }
  if (path === '/healthz') {
    sendJson(req, res, 200, LIVENESS);
    return;
  }
  if (path === '/readyz') {
    const { httpStatus, body } = await sources.readiness();
    sendJson(req, res, httpStatus, body);
    return;
  }
  try {
    const { contentType, body } = await sources.metrics();
    res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : body);
  } catch (error) {
    logError(`metrics collection failed: ${error instanceof Error ? error.message : String(error)}`);
    res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics collection failed\n');
  }
}

function sendJson(req: IncomingMessage, res: ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json), 'cache-control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : json);
}
