import { Module, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { Metrics } from '../metrics/metrics.js';
import { fastifyOf } from '../server/http-scope.js';
import { UpgradeRouter } from '../server/upgrade-router.js';
import { OidcModule } from '../oidc/oidc.module.js';
import { ApiProxyRoutes } from './api-proxy.routes.js';
import { ApiPipeline } from './api-pipeline.js';
import { ProxyService } from './proxy.service.js';
import { RouteTokens } from './route-token.js';
import { WebSocketSessions } from './websocket-sessions.js';

/** /api/*, HTTP and WebSocket: registers its own Fastify scope and its handler for /api handshakes. */
@Module({ imports: [OidcModule], providers: [ProxyService, ApiPipeline, ApiProxyRoutes, WebSocketSessions, RouteTokens], exports: [ProxyService, WebSocketSessions] })
export class ProxyModule implements OnModuleInit {
  constructor(
    private readonly host: HttpAdapterHost,
    private readonly routes: ApiProxyRoutes,
    private readonly upgrades: UpgradeRouter,
    proxy: ProxyService,
    metrics: Metrics,
  ) {
    // the pools are this module's; Metrics reads them at scrape time (see Metrics on why it injects nothing)
    metrics.watchUpstreamSockets(() => proxy.socketCounts());
  }

  onModuleInit(): void {
    void fastifyOf(this.host).register(async (scope) => this.routes.register(scope));
    this.upgrades.handle('api', (req, socket, head) => {
      void this.routes.handleUpgrade(req, socket, head);
      return true;
    });
  }
}
