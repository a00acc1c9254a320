import { ConfigError, loadConfig } from './config/config.js';
import { createGateway } from './gateway.js';

/** EX_CONFIG from sysexits.h: the configuration is wrong, restarting will not help. */
const EXIT_CONFIG = 78;

async function main(): Promise<void> {
  let config;
  try {
    // The one place process.env is read.
    config = loadConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) process.stderr.write(`config error: ${problem}\n`);
    process.exit(EXIT_CONFIG);
  }
  const { app, logger } = await createGateway(config);
  app.enableShutdownHooks(['SIGTERM', 'SIGINT']);
  await app.listen({ port: config.server.port, host: config.server.host });
  logger.info(
    { event: 'started', port: config.server.port, publicUrl: config.server.publicUrl, issuer: config.oidc.issuer, store: config.session.store },
    'bff-gateway started',
  );
}

await main();
