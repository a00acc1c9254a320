import { Inject, Module, type OnModuleInit } from '@nestjs/common';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { HttpAdapterHost } from '@nestjs/core';
import { OidcModule } from '../oidc/oidc.module.js';
import { ProxyModule } from '../proxy/proxy.module.js';
import { fastifyOf } from '../server/http-scope.js';
import { AuthRoutes } from './auth.routes.js';
import { BackchannelLogoutService } from './backchannel-logout.service.js';
import { FrontchannelLogoutRoutes } from './frontchannel-logout.routes.js';
import { registerJwks } from './jwks.routes.js';
import { LoginFlowService } from './login-flow.service.js';
import { LogoutService } from './logout.service.js';

/** /auth/*: registers its routes in a Fastify scope of its own (see AuthRoutes for its hooks). */
@Module({
  imports: [OidcModule, ProxyModule],
  providers: [LoginFlowService, LogoutService, BackchannelLogoutService, AuthRoutes, FrontchannelLogoutRoutes],
})
export class AuthModule implements OnModuleInit {
  constructor(
    private readonly host: HttpAdapterHost,
    private readonly routes: AuthRoutes,
    private readonly frontchannel: FrontchannelLogoutRoutes,
    @Inject(CONFIG) private readonly config: Config,
  ) {}

  onModuleInit(): void {
    void fastifyOf(this.host).register(async (scope) => {
      await this.routes.register(scope);
      // a child scope: its own onSend runs after this one's and replaces the framing headers
      await this.frontchannel.register(scope);
      await registerJwks(scope, this.config);
    });
  }
}
