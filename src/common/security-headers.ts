import type { FastifyInstance, FastifyReply } from 'fastify';

/**
 * The headers of every response the gateway writes itself (JSON, problems, redirects, pages):
 * never sniffed, never framed, no referrer leaking a path. Headers a route set on purpose (the
 * front-channel logout page's own framing policy, the SPA's CSP) are kept.
 */
export function applySecurityHeaders(reply: FastifyReply): void {
  void reply.header('x-content-type-options', 'nosniff');
  void reply.header('referrer-policy', 'no-referrer');
  if (!reply.hasHeader('x-frame-options')) void reply.header('x-frame-options', 'DENY');
  if (!reply.hasHeader('content-security-policy')) void reply.header('content-security-policy', "frame-ancestors 'none'");
}

/**
 * Adds applySecurityHeaders to every response of a scope that writes its own responses (auth,
 * operations, the SPA). Not /api: its answers are the upstream's, and its refusals come from the
 * problem writer, which applies the same headers.
 */
export function registerSecurityHeaders(scope: FastifyInstance): void {
  scope.addHook('onSend', (_request, reply, payload, done) => {
    applySecurityHeaders(reply);
    done(null, payload);
  });
}
