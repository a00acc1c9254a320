import { Module } from '@nestjs/common';
import { Metrics } from '../metrics/metrics.js';
import { OidcModule } from '../oidc/oidc.module.js';
import { ApiProxyRoutes } from './api-proxy.routes.js';
import { ApiPipeline } from './api-pipeline.js';
import { ProxyService } from './proxy.service.js';
import { RouteTokens } from './route-token.js';
import { WebSocketSessions } from './websocket-sessions.js';

@Module({ imports: [OidcModule], providers: [ProxyService, ApiPipeline, ApiProxyRoutes, WebSocketSessions, RouteTokens], exports: [ApiProxyRoutes, ProxyService, WebSocketSessions] })
export class ProxyModule {
  constructor(proxy: ProxyService, metrics: Metrics) {
    // the pools are this module's; Metrics reads them at scrape time (see Metrics on why it injects nothing)
    metrics.watchUpstreamSockets(() => proxy.socketCounts());
  }
}
