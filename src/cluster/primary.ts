import type { Config } from '../config/config.js';
import { systemClock } from '../common/clock.js';
import { createLogger } from '../common/logger.js';
import { closeOps, listenOps } from '../metrics/metrics-server.js';
import { WorkerSupervisor } from './worker-supervisor.js';

/** After its shutdown the primary should exit by itself; a handle left open must not keep it alive. */
const EXIT_AFTER_SHUTDOWN_MS = 2_000;

/**
 * WORKERS > 1: this process serves no request itself. Its workers (node:cluster, sharing PORT) each
 * run the whole gateway; it keeps them running and owns METRICS_PORT: /metrics aggregated over the
 * workers, /healthz, and /readyz from their readiness. SIGTERM or SIGINT drains every worker within
 * SHUTDOWN_GRACE_S, then it exits (0 when every worker stopped cleanly).
 */
export async function runPrimary(config: Config): Promise<void> {
  const logger = createLogger(config);
  const metricsPort = config.ops.metricsPort;
  if (metricsPort === undefined) throw new Error('WORKERS > 1 without METRICS_PORT: loadConfig refuses this configuration');
  const supervisor = new WorkerSupervisor(config.server.workers, logger, systemClock);
  const ops = await listenOps(metricsPort, config.server.host, supervisor, (message) => logger.error({ event: 'cluster_metrics_failed' }, message));
  supervisor.start();
  logger.info({ event: 'cluster_started', workers: config.server.workers, port: config.server.port, metricsPort }, 'bff-gateway primary started its workers');

  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ event: 'cluster_shutdown_hurried', signal }, 'second signal: workers close all connections now');
      supervisor.hurry(signal);
      return;
    }
    stopping = true;
    const graceS = config.ops.shutdownGraceS;
    logger.info({ event: 'cluster_shutdown_started', signal, graceS }, 'shutting down: draining every worker');
    supervisor
      .stop(graceS)
      .then(async (clean) => {
        await closeOps(ops);
        logger.info({ event: 'cluster_shutdown_complete', clean }, 'stopped');
        process.exitCode = clean ? 0 : 1;
      })
      .catch((error: unknown) => {
        logger.error({ event: 'cluster_shutdown_failed', err: error }, 'shutdown failed');
        process.exitCode = 1;
      })
      .finally(() => setTimeout(() => process.exit(), EXIT_AFTER_SHUTDOWN_MS).unref());
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
