import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Inject, Injectable } from '@nestjs/common';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requestIdFor } from '../common/logger.js';
import { mapError, sendProblem } from '../common/problem.js';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { SessionRequiredError } from '../session/session.errors.js';
import { SessionService } from '../session/session.service.js';
import { TokenRefresher } from '../session/token-refresher.js';
import { checkApiRequestOrigin, isSameOrigin } from './api-request-origin.js';
import { matchRoute, type RouteMatch } from './proxy-routes.js';
import { ApiMethodNotAllowedError, ApiRouteNotFoundError, CrossOriginRequestError, InvalidUpstreamPathError, RequestBodyTooLargeError } from './proxy.errors.js';
import { ProxyService } from './proxy.service.js';
import { refuseUpgrade } from './upgrade-refusal.js';
import { WebSocketSessions } from './websocket-sessions.js';

/**
 * ALL /api/* → the upstream, with the session's access token. Registered on Fastify directly (not a
 * Nest controller): the body must stay an unread stream, and this is the hot path.
 */
@Injectable()
export class ApiProxyRoutes {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly sessions: SessionService,
    private readonly refresher: TokenRefresher,
    private readonly proxy: ProxyService,
    private readonly websockets: WebSocketSessions,
  ) {}

  async register(fastify: FastifyInstance): Promise<void> {
    await fastify.register((scope, _options, done) => {
      // leave /api bodies unread: they stream to the upstream, whatever their type or size
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', (_request, _payload, done) => done(null));
      const handler = (request: FastifyRequest, reply: FastifyReply): Promise<void> => this.handle(request, reply);
      scope.all('/api', handler);
      scope.all('/api/*', handler);
      done();
    });
  }

  /**
   * WebSocket handshakes on /api/*: same-origin only (browsers cannot add the CSRF header), with the
   * Bearer token. The socket's 'error' listener is already on (upgrade dispatch); after each await
   * a client that left is dropped without further work.
   */
  async handleUpgrade(fastify: FastifyInstance, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const requestId = requestIdFor(req);
    try {
      const match = this.match(req.url ?? '/');
      if (!isSameOrigin(req.headers, this.config.server.publicOrigin)) throw new CrossOriginRequestError();
      const sid = this.sidFromCookie(fastify, req.headers.cookie);
      const record = sid === undefined ? undefined : await this.sessions.loadBySid(sid, true);
      if (socket.destroyed) return;
      if (record === undefined) throw new SessionRequiredError();
      const fresh = await this.refresher.fresh(record);
      if (socket.destroyed) return;
      this.proxy.applyRequestPolicy(req, requestId, fresh.tokens.accessToken, true);
      this.proxy.forwardUpgrade(req, socket, head, this.proxy.upstreamFor(match.route), match.upstreamPath, requestId, fastify.log.child({ reqId: requestId }));
      this.websockets.track(socket, record.id);
    } catch (error) {
      const { status, code } = mapError(error);
      // a store or provider outage is worth a warning; a refused client is not
      fastify.log[status >= 500 ? 'warn' : 'debug']({ event: 'websocket_refused', reqId: requestId, code, status }, 'websocket handshake refused');
      refuseUpgrade(socket, error, requestId);
    }
  }

  private async handle(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    try {
      // TRACE would echo the request, cookies included, back to the page
      if (request.method === 'TRACE') throw new ApiMethodNotAllowedError(request.method);
      const match = this.match(request.url);
      checkApiRequestOrigin(request.method, request.headers, this.config.proxy.csrfHeader, this.config.server.publicOrigin);
      const limit = this.config.proxy.maxBodyBytes;
      if (limit !== undefined && Number(request.headers['content-length'] ?? 0) > limit) throw new RequestBodyTooLargeError(limit);
      const record = await this.refresher.fresh(await this.sessions.require(request));
      this.proxy.applyRequestPolicy(request.raw, request.id, record.tokens.accessToken, false);
      reply.hijack();
      reply.raw.setHeader('x-request-id', request.id);
      this.proxy.forward(request.raw, reply.raw, this.proxy.upstreamFor(match.route), match.upstreamPath, request.id, request.log);
    } catch (error) {
      sendProblem(request, reply, error);
    }
  }

  private match(url: string): RouteMatch {
    const match = matchRoute(this.config.proxy.routes, url);
    if (match === undefined) throw new ApiRouteNotFoundError();
    if (match === 'escapes') throw new InvalidUpstreamPathError();
    return match;
  }

  private sidFromCookie(fastify: FastifyInstance, header: string | undefined): string | undefined {
    if (header === undefined) return undefined;
    const sealed = fastify.parseCookie(header)[this.config.session.cookie.name];
    if (sealed === undefined) return undefined;
    const value: unknown = fastify.decodeSecureSession(sealed)?.get('sid');
    return typeof value === 'string' ? value : undefined;
  }
}
