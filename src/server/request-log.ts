import type { FastifyInstance } from 'fastify';
import { redactUrl } from '../common/logger.js';
import type { Metrics } from '../metrics/metrics.js';

/**
 * Root hooks, because every request has them, matched or not, /api included: its id on the
 * response, one access-log line and the request metric. Callback style: an async hook costs a
 * promise per request on the hot path.
 */
export function registerRequestLog(fastify: FastifyInstance, metrics: Metrics): void {
  fastify.addHook('onRequest', (request, reply, done) => {
    void reply.header('x-request-id', request.id);
    done();
  });
  fastify.addHook('onResponse', (request, reply, done) => {
    metrics.observeRequest(request.url, reply.statusCode, reply.elapsedTime);
    request.log.info(
      {
        event: 'request',
        method: request.method,
        url: redactUrl(request.url),
        route: request.routeOptions.url,
        status: reply.statusCode,
        durationMs: Math.round(reply.elapsedTime * 100) / 100,
      },
      'request',
    );
    done();
  });
}
