import { Module } from '@nestjs/common';
import { ApiProxyRoutes } from './api-proxy.routes.js';
import { ProxyService } from './proxy.service.js';

@Module({ providers: [ProxyService, ApiProxyRoutes], exports: [ApiProxyRoutes, ProxyService] })
export class ProxyModule {}
