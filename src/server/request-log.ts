import { context, type Span } from '@opentelemetry/api';
import type { FastifyInstance } from 'fastify';
import { logsAt, redactUrl } from '../common/logger.js';
import { requestClassOf } from '../common/request-class.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Tracing } from '../tracing/tracing.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's span while tracing is on (its children hang off it through the active context). */
    traceSpan: Span | null;
  }
}

/**
 * Root hooks, because every request has them, matched or not, /api included: its id on the
 * response, its span when tracing is on, one access-log line and the request metric. Callback
 * style: an async hook costs a promise per request on the hot path.
 */
export function registerRequestLog(fastify: FastifyInstance, metrics: Metrics, tracing: Tracing): void {
  fastify.decorateRequest('traceSpan', null);
  fastify.addHook('onRequest', (request, reply, done) => {
    void reply.header('x-request-id', request.id);
    // tracing off: nothing of the span (its name, its attributes) is built on the hot path
    if (!tracing.enabled) {
      done();
      return;
    }
    const traced = tracing.startRequest(`${request.method} ${requestClassOf(request.url)}`, request.headers, {
      'http.request.method': request.method,
      'url.path': redactUrl(request.url).split('?')[0] ?? '/',
      'http.route': request.routeOptions.url ?? 'unmatched',
      'bff.request_id': request.id,
    });
    if (traced === undefined) {
      done();
      return;
    }
    request.traceSpan = traced.span;
    // the rest of the request (hooks, handler, every await in them) runs with this span active
    context.with(traced.context, done);
  });
  // the level is set once at start-up: below info, no access-log line (nor its fields) is built
  const accessLog = logsAt(fastify.log, 'info');
  fastify.addHook('onResponse', (request, reply, done) => {
    const elapsedMs = reply.elapsedTime;
    metrics.observeRequest(request.url, reply.statusCode, elapsedMs);
    if (request.traceSpan !== null) tracing.endRequest(request.traceSpan, reply.statusCode);
    if (!accessLog) {
      done();
      return;
    }
    // through the server's logger with the reqId field: the same line as request.log would write,
    // without building the request's child logger (lazyRequestLogger) for it
    fastify.log.info(
      {
        reqId: request.id,
        event: 'request',
        method: request.method,
        url: redactUrl(request.url),
        route: request.routeOptions.url,
        status: reply.statusCode,
        durationMs: Math.round(elapsedMs * 100) / 100,
      },
      'request',
    );
    done();
  });
}
