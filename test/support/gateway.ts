import { Writable } from 'node:stream';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { loadConfig, type Config, type Environment } from '../../src/config/config.js';
import { createGateway } from '../../src/gateway.js';
import { OffsetClock } from './clock.js';
import { freePort } from './ports.js';
import { testEnvironment } from './test-env.js';

export interface RunningGateway {
  readonly url: string;
  readonly config: Config;
  readonly app: NestFastifyApplication;
  /** The gateway's CLOCK: real time until the test moves it (tests age sessions and tokens through it). */
  readonly clock: OffsetClock;
  /** Every log line written so far, parsed. */
  logLines(): Array<Record<string, unknown>>;
  /** The raw log text (to search for secrets). */
  logText(): string;
  close(): Promise<void>;
}

/**
 * Starts the real gateway in this process, built by createGateway() from a config object,
 * on a loopback port whose URL is its PUBLIC_URL.
 */
export async function startGateway(overrides: Environment = {}): Promise<RunningGateway> {
  const port = overrides['PORT'] === undefined ? await freePort() : Number(overrides['PORT']);
  const config = loadConfig(testEnvironment({ PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}`, ...overrides }));
  let logs = '';
  const logDestination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs += chunk.toString();
      callback();
    },
  });
  const clock = new OffsetClock();
  const { app } = await createGateway(config, { logDestination, clock });
  await app.listen({ port, host: '127.0.0.1' });
  return {
    url: `http://127.0.0.1:${port}`,
    config,
    app,
    clock,
    logText: () => logs,
    logLines: () =>
      logs
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    close: () => app.close(),
  };
}
