import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { mapError, sendProblem, writeRawProblem } from '../common/problem.js';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { SessionRequiredError } from '../session/session.errors.js';
import { SessionService } from '../session/session.service.js';
import { TokenRefresher } from '../session/token-refresher.js';
import { checkApiRequestOrigin, isSameOrigin } from './api-request-origin.js';
import { applyForwardingPolicy } from './forwarded-headers.js';
import { matchRoute, type RouteMatch } from './proxy-routes.js';
import { ApiRouteNotFoundError, CrossOriginRequestError, InvalidUpstreamPathError, RequestBodyTooLargeError } from './proxy.errors.js';
import { ProxyService } from './proxy.service.js';
import { WebSocketSessions } from './websocket-sessions.js';

/**
 * ALL /api/* → the upstream, with the session's access token. Registered on Fastify directly (not a
 * Nest controller): the body must stay an unread stream, and this is the hot path.
 */
@Injectable()
export class ApiProxyRoutes {
  private readonly log = new Logger(ApiProxyRoutes.name);
  private readonly publicHost: string;
  private readonly publicProto: string;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly sessions: SessionService,
    private readonly refresher: TokenRefresher,
    private readonly proxy: ProxyService,
    private readonly websockets: WebSocketSessions,
  ) {
    const url = new URL(config.server.publicUrl);
    this.publicHost = url.host;
    this.publicProto = url.protocol.slice(0, -1);
  }

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

  /** WebSocket handshakes on /api/*: same-origin only (browsers cannot add the CSRF header), with the Bearer token. */
  async handleUpgrade(fastify: FastifyInstance, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    try {
      const match = this.match(req.url ?? '/');
      if (!isSameOrigin(req.headers, this.config.server.publicOrigin)) throw new CrossOriginRequestError();
      const sid = this.sidFromCookie(fastify, req.headers.cookie);
      const record = sid === undefined ? undefined : await this.sessions.loadBySid(sid, true);
      if (record === undefined) throw new SessionRequiredError();
      const fresh = await this.refresher.fresh(record);
      applyForwardingPolicy(req.headers, this.forwardContext(req, fresh.tokens.accessToken, req.socket.remoteAddress ?? '', true));
      this.proxy.forwardUpgrade(req, socket, head, match.route.target, match.upstreamPath);
      this.websockets.track(socket, record.id);
    } catch (error) {
      const { status, code } = mapError(error);
      this.log.debug(`websocket handshake refused: ${code}`);
      socket.end(`HTTP/1.1 ${status} ${code}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    }
  }

  private async handle(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    try {
      const match = this.match(request.url);
      checkApiRequestOrigin(request.method, request.headers, this.config.proxy.csrfHeader, this.config.server.publicOrigin);
      const limit = this.config.proxy.maxBodyBytes;
      if (limit !== undefined && Number(request.headers['content-length'] ?? 0) > limit) throw new RequestBodyTooLargeError(limit);
      const record = await this.refresher.fresh(await this.sessions.require(request));
      const raw = request.raw;
      // without trusted proxies, an inbound X-Forwarded-For is the client's claim, not a fact
      if (this.config.ops.trustProxy.length === 0) delete raw.headers['x-forwarded-for'];
      applyForwardingPolicy(raw.headers, this.forwardContext(raw, record.tokens.accessToken, request.ip, false, request.id));
      reply.hijack();
      reply.raw.setHeader('x-request-id', request.id);
      this.proxy.forward(raw, reply.raw, match.route.target, match.upstreamPath, (failure) => {
        sendProblemLog(request, failure);
        writeRawProblem(reply.raw, request.id, failure);
      });
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

  private forwardContext(req: IncomingMessage, accessToken: string, clientIp: string, upgrade: boolean, requestId?: string) {
    return {
      accessToken,
      clientIp,
      proto: this.publicProto,
      host: this.publicHost,
      requestId: requestId ?? (typeof req.headers['x-request-id'] === 'string' ? req.headers['x-request-id'] : ''),
      upgrade,
    };
  }

  private sidFromCookie(fastify: FastifyInstance, header: string | undefined): string | undefined {
    if (header === undefined) return undefined;
    const sealed = fastify.parseCookie(header)[this.config.session.cookie.name];
    if (sealed === undefined) return undefined;
    const value: unknown = fastify.decodeSecureSession(sealed)?.get('sid');
    return typeof value === 'string' ? value : undefined;
  }
}

function sendProblemLog(request: FastifyRequest, failure: unknown): void {
  const { code, status } = mapError(failure);
  request.log.warn({ event: 'upstream_failed', code, status }, 'upstream request failed');
}
