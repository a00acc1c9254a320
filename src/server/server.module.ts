import { Global, Inject, Module, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { decorateCanonicalUrl } from '../common/canonical-host.js';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { Metrics } from '../metrics/metrics.js';
import { installConnectionLimits } from './connection-limits.js';
import { fastifyOf } from './http-scope.js';
import { registerRequestLog } from './request-log.js';
import { Tracing } from '../tracing/tracing.js';
import { UpgradeRouter } from './upgrade-router.js';

/**
 * What concerns the server as a whole rather than one group of routes: connection limits, the
 * request id and access log on every request, and the one WebSocket 'upgrade' listener.
 */
@Global()
@Module({ providers: [UpgradeRouter], exports: [UpgradeRouter] })
export class ServerModule implements OnModuleInit {
  constructor(
    private readonly host: HttpAdapterHost,
    @Inject(CONFIG) private readonly config: Config,
    private readonly metrics: Metrics,
    private readonly upgrades: UpgradeRouter,
    private readonly tracing: Tracing,
  ) {}

  onModuleInit(): void {
    const fastify = fastifyOf(this.host);
    installConnectionLimits(fastify, this.config, fastify.log);
    registerRequestLog(fastify, this.metrics, this.tracing);
    decorateCanonicalUrl(fastify, this.config);
    this.upgrades.listen(fastify);
    for (const warning of this.config.warnings) fastify.log.warn({ event: 'config_warning' }, warning);
  }
}
