import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Inject, Injectable } from '@nestjs/common';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requestIdFor } from '../common/logger.js';
import { mapError, sendProblem } from '../common/problem.js';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { SessionCookieCodec, type SessionCookie } from '../session/session-cookie.js';
import type { SessionRecord } from '../session/session-store.js';
import { ApiPipeline, type ApiExchange } from './api-pipeline.js';
import { ProxyService, type Upstream } from './proxy.service.js';
import { refuseUpgrade } from './upgrade-refusal.js';
import type { UpstreamBinding } from './upstream-dpop.js';
import { WebSocketSessions } from './websocket-sessions.js';

/**
 * ALL /api/* → the upstream, with the session's access token, and WebSocket handshakes on /api: both
 * through ApiPipeline. Registered on Fastify directly (not a Nest controller): the body must stay an
 * unread stream, and this is the hot path.
 */
@Injectable()
export class ApiProxyRoutes {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly pipeline: ApiPipeline,
    private readonly proxy: ProxyService,
    private readonly websockets: WebSocketSessions,
  ) {}

  /** The /api scope, and its session cookie decoder (for handshakes too). */
  private scope: { readonly fastify: FastifyInstance; readonly cookies: SessionCookieCodec } | undefined;

  /**
   * Registers /api in its own scope: no hook of its own (the session cookie is decoded in the
   * pipeline, when a route needs it, by the same decoder as for handshakes) and nothing else the
   * rest of the gateway needs.
   */
  async register(scope: FastifyInstance): Promise<void> {
    const cookies = await SessionCookieCodec.register(scope, this.config);
    // leave /api bodies unread: they stream to the upstream, whatever their type or size
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, _payload, done) => done(null));
    const handler = (request: FastifyRequest, reply: FastifyReply): Promise<void> => this.pipeline.run(new HttpExchange(this.proxy, cookies, request, reply));
    scope.all('/api', handler);
    scope.all('/api/*', handler);
    this.scope = { fastify: scope, cookies };
  }

  /** A WebSocket handshake on /api (its socket's 'error' listener is already on: the upgrade router). */
  async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const scope = this.scope;
    // a handshake before the server is ready cannot happen: the listener starts after it
    if (scope === undefined) throw new Error('the /api scope is not registered');
    await this.pipeline.run(new UpgradeExchange(this.proxy, this.websockets, scope.fastify, scope.cookies, req, socket, head));
  }
}

/** A routed HTTP request; Fastify writes refusals, with the cookie the request changed. */
class HttpExchange implements ApiExchange {
  readonly kind = 'http';
  readonly req: IncomingMessage;
  readonly requestId: string;
  readonly log: FastifyBaseLogger;
  private cookie: SessionCookie | undefined;

  constructor(
    private readonly proxy: ProxyService,
    private readonly cookies: SessionCookieCodec,
    private readonly request: FastifyRequest,
    private readonly reply: FastifyReply,
  ) {
    this.req = request.raw;
    this.requestId = request.id;
    this.log = request.log;
  }

  sessionCookie(): SessionCookie | undefined {
    this.cookie ??= this.cookies.decode(this.req.headers.cookie);
    return this.cookie;
  }

  clientLeft(): boolean {
    // the forward notices a browser that leaves (its response's 'close') and aborts the upstream leg
    return false;
  }

  forward(upstream: Upstream, upstreamPath: string, _session: SessionRecord | undefined, dpop: UpstreamBinding | undefined): void {
    this.reply.hijack();
    this.proxy.forward(this.req, this.reply.raw, upstream, upstreamPath, this.requestId, this.log, dpop);
  }

  refuse(error: unknown): void {
    // a cookie naming no live session loses its id (SessionService.loadFromCookie), in the browser too
    const setCookie = this.cookies.setCookie(this.cookie);
    if (setCookie !== undefined) void this.reply.header('set-cookie', setCookie);
    sendProblem(this.request, this.reply, error);
  }
}

/**
 * A WebSocket handshake: no Fastify hook runs for it, so its cookie is decoded here (the same
 * decoder); a client that left while the session or token was awaited is dropped without further
 * work; a refusal is written to the socket and closes it.
 */
class UpgradeExchange implements ApiExchange {
  readonly kind = 'websocket';
  readonly requestId: string;
  readonly log: FastifyBaseLogger;

  constructor(
    private readonly proxy: ProxyService,
    private readonly websockets: WebSocketSessions,
    fastify: FastifyInstance,
    private readonly cookies: SessionCookieCodec,
    readonly req: IncomingMessage,
    private readonly socket: Duplex,
    private readonly head: Buffer,
  ) {
    this.requestId = requestIdFor(req);
    this.log = fastify.log.child({ reqId: this.requestId });
  }

  sessionCookie(): SessionCookie | undefined {
    return this.cookies.decode(this.req.headers.cookie);
  }

  clientLeft(): boolean {
    return this.socket.destroyed;
  }

  forward(upstream: Upstream, upstreamPath: string, session: SessionRecord | undefined, dpop: UpstreamBinding | undefined): void {
    this.proxy.forwardUpgrade(this.req, this.socket, this.head, upstream, upstreamPath, this.requestId, this.log, dpop);
    if (session !== undefined) this.websockets.track(this.socket, session.id);
  }

  refuse(error: unknown): void {
    const { status, code } = mapError(error);
    // a store or provider outage is worth a warning; a refused client is not
    this.log[status >= 500 ? 'warn' : 'debug']({ event: 'websocket_refused', code, status }, 'websocket handshake refused');
    refuseUpgrade(this.socket, error, this.requestId);
  }
}
