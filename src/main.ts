import cluster from 'node:cluster';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { Logger } from 'pino';
import { checkConfig } from './cli/check-config.js';
import { runPrimary } from './cluster/primary.js';
import { leaveCluster, onPrimaryHurry } from './cluster/worker.js';
import { ConfigError, loadConfig, type Config } from './config/config.js';
import { createGateway } from './gateway.js';
import { ReadinessService } from './health/readiness.service.js';

/** EX_USAGE from sysexits.h: an unknown option (a typo must not start a server in a deploy pipeline). */
const EXIT_USAGE = 64;
/** EX_CONFIG from sysexits.h: the configuration is wrong, restarting will not help. */
const EXIT_CONFIG = 78;
/** After a clean shutdown the process should exit by itself; a handle left open must not keep it alive. */
const EXIT_AFTER_SHUTDOWN_MS = 2_000;
/** Keep-alive connections that go idle while draining are closed this often instead of after keepAliveTimeout. */
const IDLE_SWEEP_MS = 100;

const USAGE = `usage: node dist/main.js [--check-config]
  (no option)      start the gateway
  --check-config   validate the configuration, load the provider's discovery document and JWKS,
                   write, read and delete a probe session in the store, print a summary, exit 0 or 1
`;

function configOrExit(): Config {
  try {
    // The one place process.env is read.
    return loadConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) process.stderr.write(`config error: ${problem}\n`);
    process.exit(EXIT_CONFIG);
  }
}

/**
 * SIGTERM: /readyz turns 503 at once, the listener closes, in-flight requests (streaming proxy
 * responses included) get SHUTDOWN_GRACE_S to finish, then whatever is left is cut; the modules'
 * shutdown hooks close the session store, the upstream agents and the metrics listener.
 */
async function drain(app: NestFastifyApplication, logger: Logger, graceS: number, signal: NodeJS.Signals): Promise<void> {
  app.get(ReadinessService).beginShutdown();
  logger.info({ event: 'shutdown_started', signal, graceS }, 'shutting down: no new connections, draining in-flight requests');
  const server = app.getHttpAdapter().getInstance().server;
  const idleSweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
  const deadline = setTimeout(() => {
    logger.warn({ event: 'shutdown_grace_expired', graceS }, 'shutdown grace period over: closing the remaining connections');
    server.closeAllConnections();
  }, graceS * 1000);
  try {
    await app.close();
  } finally {
    clearInterval(idleSweep);
    clearTimeout(deadline);
  }
  logger.info({ event: 'shutdown_complete' }, 'stopped');
}

async function serve(config: Config): Promise<void> {
  const { app, logger } = await createGateway(config);
  await app.listen({ port: config.server.port, host: config.server.host });
  logger.info(
    { event: 'started', port: config.server.port, publicUrl: config.server.publicUrl, issuer: config.oidc.issuer, store: config.session.store },
    'bff-gateway started',
  );
  let shuttingDown = false;
  const hurry = (signal: NodeJS.Signals): void => {
    // a second signal (Ctrl-C twice): stop waiting for in-flight requests
    logger.warn({ event: 'shutdown_hurried', signal }, 'second signal: closing all connections now');
    app.getHttpAdapter().getInstance().server.closeAllConnections();
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (shuttingDown) {
      // a worker hears a signal sent to the process group and the primary's relay of it: only the primary hurries it
      if (!cluster.isWorker) hurry(signal);
      return;
    }
    shuttingDown = true;
    drain(app, logger, config.ops.shutdownGraceS, signal)
      .then(
        () => {
          process.exitCode = 0;
          if (cluster.isWorker) leaveCluster();
        },
        (error: unknown) => {
          logger.error({ event: 'shutdown_failed', err: error }, 'shutdown failed');
          process.exitCode = 1;
        },
      )
      .finally(() => {
        setTimeout(() => {
          logger.warn({ event: 'shutdown_forced_exit' }, 'a handle kept the process alive after shutdown: exiting');
          process.exit();
        }, EXIT_AFTER_SHUTDOWN_MS).unref();
      });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  if (cluster.isWorker) onPrimaryHurry(hurry);
}

async function main(args: readonly string[]): Promise<void> {
  if (args.length === 0) {
    const config = configOrExit();
    // WORKERS > 1: this process forks the workers, and each of them (cluster.isWorker) serves
    if (config.server.workers > 1 && cluster.isPrimary) await runPrimary(config);
    else await serve(config);
    return;
  }
  if (args.length === 1 && args[0] === '--check-config') {
    const code = await checkConfig(configOrExit(), (text) => process.stdout.write(text));
    // the checks may leave sockets to the provider or Redis half-closed; the verdict is final
    process.exit(code);
  }
  process.stderr.write(`unknown arguments: ${args.join(' ')}\n${USAGE}`);
  process.exit(EXIT_USAGE);
}

await main(process.argv.slice(2));
