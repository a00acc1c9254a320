import { Module } from '@nestjs/common';
import { ProxyModule } from '../proxy/proxy.module.js';
import { SpaRoutes } from './spa.routes.js';

/** The single-page app on the gateway's origin; gateway.ts registers SpaRoutes on Fastify. */
@Module({ imports: [ProxyModule], providers: [SpaRoutes], exports: [SpaRoutes] })
export class SpaModule {}
