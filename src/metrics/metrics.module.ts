import { Global, Inject, Module, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { registerSecurityHeaders } from '../common/security-headers.js';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { fastifyOf } from '../server/http-scope.js';
import { MetricsServer } from './metrics-server.js';
import { Metrics } from './metrics.js';

/**
 * Prometheus metrics. GET /metrics (text, no session or CSRF header needed) is a route of the main
 * port only when METRICS_PORT does not move it to a listener of its own (MetricsServer).
 */
@Global()
@Module({ providers: [Metrics, MetricsServer], exports: [Metrics] })
export class MetricsModule implements OnModuleInit {
  constructor(
    private readonly host: HttpAdapterHost,
    @Inject(CONFIG) private readonly config: Config,
    private readonly metrics: Metrics,
  ) {}

  onModuleInit(): void {
    if (this.config.ops.metricsPort !== undefined) return;
    void fastifyOf(this.host).register((scope, _options, done) => {
      registerSecurityHeaders(scope);
      scope.get('/metrics', async (_request, reply) => {
        const { contentType, body } = await this.metrics.render();
        return reply.type(contentType).header('cache-control', 'no-store').send(body);
      });
      done();
    });
  }
}
