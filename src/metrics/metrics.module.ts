import { Global, Module, type DynamicModule } from '@nestjs/common';
import type { Config } from '../config/config.js';
import { MetricsController } from './metrics.controller.js';
import { MetricsServer } from './metrics-server.js';
import { Metrics } from './metrics.js';

@Global()
@Module({})
export class MetricsModule {
  /** /metrics is a route of the main port only when METRICS_PORT does not move it to its own. */
  static forRoot(config: Config): DynamicModule {
    return {
      module: MetricsModule,
      controllers: config.ops.metricsPort === undefined ? [MetricsController] : [],
      providers: [Metrics, MetricsServer],
      exports: [Metrics],
    };
  }
}
