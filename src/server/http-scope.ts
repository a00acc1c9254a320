import type { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';

/**
 * The Fastify instance under Nest's adapter. Modules register their own routes and hooks on it, each
 * in its own encapsulated scope, at module init: Nest only composes the services. Never awaited
 * there: the scopes load together when the server gets ready, after every module has added its
 * root-level hooks, so each scope inherits them all.
 */
export function fastifyOf(host: HttpAdapterHost): FastifyInstance {
  return host.httpAdapter.getInstance<FastifyInstance>();
}
