import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { LogController, type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import type { DestinationStream, Logger } from 'pino';
import { AppModule } from './app.module.js';
import { CLOCK, type Clock } from './common/clock.js';
import { registerCanonicalHost } from './common/canonical-host.js';
import { clientErrorHandler } from './common/client-error.js';
import { installConnectionLimits, serverOptions } from './common/connection-limits.js';
import { sendProblem } from './common/problem.js';
import { createLogger, NestPinoLogger, redactUrl, requestIdFor } from './common/logger.js';
import type { Config } from './config/config.js';
import { registerSessionCookie } from './session/session-cookie.js';
import { registerSecurityHeaders } from './common/security-headers.js';
import { ApiProxyRoutes } from './proxy/api-proxy.routes.js';
import { dispatchUpgrades } from './proxy/upgrade-dispatch.js';
import { registerLoginRateLimit } from './auth/login-rate-limit.js';
import { FrontchannelLogoutRoutes } from './auth/frontchannel-logout.routes.js';
import { Metrics } from './metrics/metrics.js';
import { SpaRoutes } from './spa/spa.routes.js';

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
 * Builds the whole gateway from a validated Config. main.ts and the tests both use it, so tests
 * run the real thing without touching process.env. The caller listens.
 */
export async function createGateway(config: Config, options: GatewayOptions = {}): Promise<Gateway> {
  const logger = createLogger(config, options.logDestination);
  const adapter = new FastifyAdapter({
    loggerInstance: logger,
    // One line per request, written in onResponse below, instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'reqId' }),
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
  const fastify = app.getHttpAdapter().getInstance();
  installConnectionLimits(fastify, config, logger);
  registerCanonicalHost(fastify, config);
  await registerSessionCookie(fastify, config);
  registerSecurityHeaders(fastify);
  await app.get(FrontchannelLogoutRoutes).register(fastify);
  registerLoginRateLimit(fastify, config, app.get<Clock>(CLOCK));
  const apiProxy = app.get(ApiProxyRoutes);
  await apiProxy.register(fastify);
  const spa = app.get(SpaRoutes);
  await spa.register(fastify);
  dispatchUpgrades(fastify, apiProxy, spa);
  // callback-style hooks: an async hook costs a promise per request on the hot path
  fastify.addHook('onRequest', (request, reply, done) => {
    void reply.header('x-request-id', request.id);
    done();
  });
  const metrics = app.get(Metrics);
  fastify.addHook('onResponse', (request, reply, done) => {
    metrics.observeRequest(request.url, reply.statusCode, reply.elapsedTime);
    request.log.info(
      {
        event: 'request',
        method: request.method,
        url: redactUrl(request.url),
        route: request.routeOptions.url,
        status: reply.statusCode,
        durationMs: Math.round(reply.elapsedTime * 100) / 100,
      },
      'request',
    );
    done();
  });
  for (const warning of config.warnings) logger.warn({ event: 'config_warning' }, warning);
  await app.init();
  return { app, logger };
}
