import { Inject, Module, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { canonicalHostRedirect } from '../common/canonical-host.js';
import { registerSecurityHeaders } from '../common/security-headers.js';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { ProxyModule } from '../proxy/proxy.module.js';
import { fastifyOf } from '../server/http-scope.js';
import { UpgradeRouter } from '../server/upgrade-router.js';
import { SpaRoutes } from './spa.routes.js';

/**
 * The single-page app on the gateway's origin: its routes in a scope of their own (with the
 * gateway's security headers, and the canonical host for navigations), and the dev server's hot-reload handshakes.
 */
@Module({ imports: [ProxyModule], providers: [SpaRoutes] })
export class SpaModule implements OnModuleInit {
  constructor(
    private readonly host: HttpAdapterHost,
    @Inject(CONFIG) private readonly config: Config,
    private readonly routes: SpaRoutes,
    private readonly upgrades: UpgradeRouter,
  ) {}

  onModuleInit(): void {
    const fastify = fastifyOf(this.host);
    void fastify.register(async (scope) => {
      scope.addHook('onRequest', canonicalHostRedirect(this.config));
      registerSecurityHeaders(scope);
      await this.routes.register(scope);
    });
    this.upgrades.handle('spa', (req, socket, head) => this.routes.handleUpgrade(fastify, req, socket, head));
  }
}
