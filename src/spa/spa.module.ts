import { Module } from '@nestjs/common';
import { SpaRoutes } from './spa.routes.js';

/** The single-page app on the gateway's origin; gateway.ts registers SpaRoutes on Fastify. */
@Module({ providers: [SpaRoutes], exports: [SpaRoutes] })
export class SpaModule {}
