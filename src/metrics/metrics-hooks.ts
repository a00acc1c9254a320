import { Injectable, type OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { LoginFlowService } from '../auth/login-flow.service.js';
import { ProxyService } from '../proxy/proxy.service.js';
import { TokenRefresher } from '../session/token-refresher.js';
import { Metrics } from './metrics.js';

/**
 * Connects the services' outcome callbacks to the counters, so auth, session and proxy code knows
 * nothing about Prometheus. `strict: false`: those services belong to modules that do not export them.
 */
@Injectable()
export class MetricsHooks implements OnModuleInit {
  constructor(
    private readonly moduleRef: ModuleRef,
    private readonly metrics: Metrics,
  ) {}

  onModuleInit(): void {
    const get = <T>(type: new (...args: never[]) => T): T => this.moduleRef.get(type, { strict: false });
    get(LoginFlowService).onOutcome = (outcome) => this.metrics.countLogin(outcome);
    get(TokenRefresher).onOutcome = (result) => this.metrics.countTokenRefresh(result);
    const proxy = get(ProxyService);
    proxy.onUpstreamError = (kind) => this.metrics.countUpstreamError(kind);
    this.metrics.watchUpstreamSockets(() => proxy.socketCounts());
  }
}
