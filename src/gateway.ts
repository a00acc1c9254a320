import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { LogController, type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import type { DestinationStream, Logger } from 'pino';
import { AppModule } from './app.module.js';
import type { Clock } from './common/clock.js';
import { createLogger, lazyRequestLogger, NestPinoLogger, requestIdFor } from './common/logger.js';
import { sendProblem } from './common/problem.js';
import type { Config } from './config/config.js';
import { clientErrorHandler } from './server/client-error.js';
import { serverOptions } from './server/connection-limits.js';

export interface GatewayOptions {
  /** Where log lines go (tests capture them); stdout by default. */
  readonly logDestination?: DestinationStream;
  /** The clock every service reads (tests move one to age sessions); the process clock by default. */
  readonly clock?: Clock;
}

export interface Gateway {
  readonly app: NestFastifyApplication;
  readonly logger: Logger;
}

/**
 * Builds the whole gateway from a validated Config: the Fastify server's options, then the Nest
 * application, whose modules register their own routes and hooks at init. main.ts and the tests
 * both use it, so tests run the real thing without touching process.env. The caller listens.
 */
export async function createGateway(config: Config, options: GatewayOptions = {}): Promise<Gateway> {
  const logger = createLogger(config, options.logDestination);
  const adapter = new FastifyAdapter({
    loggerInstance: logger,
    // no Nest middleware: without middie, no hook of its own runs on every request
    skipMiddie: true,
    // One line per request, written by the server module's request log, instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'reqId' }),
    childLoggerFactory: lazyRequestLogger,
    genReqId: requestIdFor,
    clientErrorHandler,
    // the router rejects a malformed URL (400) or an over-long parameter (414) before any route runs
    frameworkErrors: (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => sendProblem(request, reply, error),
    trustProxy: config.ops.trustProxy.length === 0 ? false : [...config.ops.trustProxy],
    // Bodies of the gateway's own endpoints are small (forms, logout tokens); /api/* streams and is not parsed.
    bodyLimit: 64 * 1024,
    routerOptions: { maxParamLength: 500 },
    return503OnClosing: true,
    forceCloseConnections: false,
    ...serverOptions(config),
  });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config, { clock: options.clock }), adapter, {
    logger: new NestPinoLogger(logger),
    abortOnError: false,
  });
  await app.init();
  return { app, logger };
}
