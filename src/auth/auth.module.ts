import { Module } from '@nestjs/common';
import { OidcModule } from '../oidc/oidc.module.js';
import { ProxyModule } from '../proxy/proxy.module.js';
import { AuthController } from './auth.controller.js';
import { LoginFlowService } from './login-flow.service.js';
import { LogoutService } from './logout.service.js';
import { BackchannelLogoutService } from './backchannel-logout.service.js';
import { FrontchannelLogoutRoutes } from './frontchannel-logout.routes.js';

@Module({
  imports: [OidcModule, ProxyModule],
  controllers: [AuthController],
  providers: [LoginFlowService, LogoutService, BackchannelLogoutService, FrontchannelLogoutRoutes],
  exports: [FrontchannelLogoutRoutes],
})
export class AuthModule {}
