import { Global, Module, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { fastifyOf } from '../server/http-scope.js';
import { HealthRoutes } from './health.routes.js';
import { ReadinessService } from './readiness.service.js';

@Global()
@Module({ providers: [ReadinessService, HealthRoutes], exports: [ReadinessService] })
export class HealthModule implements OnModuleInit {
  constructor(
    private readonly host: HttpAdapterHost,
    private readonly routes: HealthRoutes,
  ) {}

  onModuleInit(): void {
    void fastifyOf(this.host).register((scope, _options, done) => {
      this.routes.register(scope);
      done();
    });
  }
}
