import type { FastifyInstance } from 'fastify';
import { requestClassOf } from './request-class.js';

/**
 * Headers on the gateway's own responses (JSON, problem pages, redirects). Proxied /api/* responses
 * are written by the upstream and bypass these hooks.
 */
export function registerSecurityHeaders(fastify: FastifyInstance): void {
  fastify.addHook('onSend', async (request, reply, payload) => {
    void reply.header('x-content-type-options', 'nosniff');
    void reply.header('referrer-policy', 'no-referrer');
    if (!reply.hasHeader('x-frame-options')) void reply.header('x-frame-options', 'DENY');
    if (!reply.hasHeader('content-security-policy')) void reply.header('content-security-policy', "frame-ancestors 'none'");
    // login state, user claims and logout values must never sit in a shared or browser cache
    if (requestClassOf(request.url) === 'auth') void reply.header('cache-control', 'no-store');
    return payload;
  });
}
