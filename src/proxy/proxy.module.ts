import { Module } from '@nestjs/common';
import { ApiProxyRoutes } from './api-proxy.routes.js';
import { ApiPipeline } from './api-pipeline.js';
import { ProxyService } from './proxy.service.js';
import { WebSocketSessions } from './websocket-sessions.js';

@Module({ providers: [ProxyService, ApiPipeline, ApiProxyRoutes, WebSocketSessions], exports: [ApiProxyRoutes, ProxyService, WebSocketSessions] })
export class ProxyModule {}
