import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import type { Clock } from './common/clock.js';
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
import { ServerModule } from './server/server.module.js';
import { TracingModule } from './tracing/tracing.module.js';

/** What a caller may replace in the module graph (tests: a clock they can move). */
export interface AppOverrides {
  readonly clock?: Clock | undefined;
}

@Module({})
export class AppModule {
  static forRoot(config: Config, overrides: AppOverrides = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [ConfigModule.forRoot(config), ClockModule.forRoot(overrides.clock), MetricsModule, TracingModule, ServerModule, HealthModule, OidcModule, SessionModule, AuthModule, ProxyModule, SpaModule],
      providers: [{ provide: APP_FILTER, useClass: ProblemFilter }],
    };
  }
}
