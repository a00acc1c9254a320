import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { ClockModule } from './common/clock.module.js';
import { ProblemFilter } from './common/problem.filter.js';
import type { Config } from './config/config.js';
import { ConfigModule } from './config/config.module.js';
import { HealthModule } from './health/health.module.js';
import { OidcModule } from './oidc/oidc.module.js';
import { AuthModule } from './auth/auth.module.js';
import { SessionModule } from './session/session.module.js';
import { ProxyModule } from './proxy/proxy.module.js';
import { SpaModule } from './spa/spa.module.js';
import { MetricsModule } from './metrics/metrics.module.js';

@Module({})
export class AppModule {
  static forRoot(config: Config): DynamicModule {
    return {
      module: AppModule,
      imports: [ConfigModule.forRoot(config), ClockModule, HealthModule, OidcModule, SessionModule, AuthModule, ProxyModule, SpaModule, MetricsModule.forRoot(config)],
      providers: [{ provide: APP_FILTER, useClass: ProblemFilter }],
    };
  }
}
