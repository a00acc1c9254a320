import type { IncomingMessage } from 'node:http';
import { Inject, Injectable } from '@nestjs/common';
import { CONFIG } from '../config/config.module.js';
import type { Config, ProxyRoute } from '../config/config.js';
import type { SessionCookie } from '../session/session-cookie.js';
import { SessionRequiredError } from '../session/session.errors.js';
import { SessionService, type SessionLog } from '../session/session.service.js';
import type { SessionRecord } from '../session/session-store.js';
import { checkApiOrigin, type ApiRequestKind } from './api-request-origin.js';
import { matchRoute, type RouteMatch } from './proxy-routes.js';
import { ApiMethodNotAllowedError, ApiRouteNotFoundError, InvalidUpstreamPathError, RequestBodyTooLargeError } from './proxy.errors.js';
import { ProxyService, type ExchangeLog, type Upstream } from './proxy.service.js';
import { RouteTokens } from './route-token.js';
import type { UpstreamBinding } from './upstream-dpop.js';

/**
 * One /api request as the pipeline sees it, whichever way it came: a routed HTTP request or a
 * WebSocket handshake. The transport supplies the decoded session cookie and the two ways out
 * (forward, refuse); everything between is decided in ApiPipeline.run, the same for both.
 */
export interface ApiExchange {
  readonly kind: ApiRequestKind;
  readonly req: IncomingMessage;
  readonly requestId: string;
  readonly log: ExchangeLog;
  /** The session cookie, decoded once (by secure-session's hook, or from the handshake's header). */
  sessionCookie(): SessionCookie | undefined;
  /** True once the client is gone: the pipeline then stops without further work. */
  clientLeft(): boolean;
  /**
   * Hands the request, its headers already set by the policy, to the upstream; `session` is
   * undefined on a route that needs none; `dpop` is the token's DPoP binding (OIDC_DPOP).
   */
  forward(upstream: Upstream, upstreamPath: string, session: SessionRecord | undefined, dpop: UpstreamBinding | undefined): void;
  /** Answers with the error's problem, through the one problem writer. */
  refuse(error: unknown): void;
}

/**
 * Step 1, classify: the route that serves the request, or why it may not be forwarded at all (its
 * method, a path with no route or one that leaves its route, a declared body over the limit).
 */
export function classifyApiRequest(req: Pick<IncomingMessage, 'method' | 'url' | 'headers'>, proxy: Config['proxy']): RouteMatch {
  // TRACE would echo the request, cookies included, back to the page
  if (req.method === 'TRACE') throw new ApiMethodNotAllowedError(req.method);
  const match = matchRoute(proxy.routes, req.url ?? '/');
  if (match === undefined) throw new ApiRouteNotFoundError();
  if (match === 'escapes') throw new InvalidUpstreamPathError();
  const { methods } = match.route;
  if (methods !== undefined && !methods.includes(req.method ?? '')) throw new ApiMethodNotAllowedError(req.method ?? '', methods);
  const limit = proxy.maxBodyBytes;
  if (limit !== undefined && Number(req.headers['content-length'] ?? 0) > limit) throw new RequestBodyTooLargeError(limit);
  return match;
}

/** Step 3, session: the live session the cookie names (one decode, one validity rule), else 401. */
export async function requireSession(sessions: Pick<SessionService, 'loadFromCookie'>, cookie: SessionCookie | undefined, log: SessionLog): Promise<SessionRecord> {
  const record = await sessions.loadFromCookie(cookie, log, true);
  if (record === undefined) throw new SessionRequiredError();
  return record;
}

/**
 * Step 3 as the route's policy has it: an anonymous route reads no session; a `user-or-none` route
 * takes the session if there is one; every other route requires one.
 */
export async function sessionForRoute(
  sessions: Pick<SessionService, 'loadFromCookie'>,
  route: ProxyRoute,
  cookie: SessionCookie | undefined,
  log: SessionLog,
): Promise<SessionRecord | undefined> {
  if (route.anonymous) return undefined;
  if (route.token === 'user-or-none') return sessions.loadFromCookie(cookie, log, true);
  return requireSession(sessions, cookie, log);
}

/**
 * The one path of every /api request, HTTP and WebSocket alike: classify (route, method) →
 * origin/CSRF → session (as the route requires) → token for the route → header policy → forward. Any step that refuses throws a GatewayError, which
 * the exchange answers through the one problem writer.
 */
@Injectable()
export class ApiPipeline {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(SessionService) private readonly sessions: Pick<SessionService, 'loadFromCookie'>,
    @Inject(RouteTokens) private readonly tokens: Pick<RouteTokens, 'forRoute' | 'bindForUpstream'>,
    @Inject(ProxyService) private readonly proxy: Pick<ProxyService, 'applyRequestPolicy' | 'upstreamFor'>,
  ) {}

  async run(exchange: ApiExchange): Promise<void> {
    const { kind, req } = exchange;
    try {
      const match = classifyApiRequest(req, this.config.proxy);
      checkApiOrigin(kind, req.method, req.headers, this.config.proxy.csrfHeader, this.config.server.publicOrigin);
      const session = await sessionForRoute(this.sessions, match.route, exchange.sessionCookie(), exchange.log);
      if (exchange.clientLeft()) return;
      // Step 4, the token the route's policy names
      const accessToken = await this.tokens.forRoute(match.route, session);
      if (exchange.clientLeft()) return;
      const upstream = this.proxy.upstreamFor(match.route);
      const dpop = this.tokens.bindForUpstream(match.route, session, accessToken, req.method ?? 'GET', upstream, match.upstreamPath);
      // Step 5, header policy (one function for both kinds), then step 6, forward
      this.proxy.applyRequestPolicy(req, exchange.requestId, accessToken, kind === 'websocket', dpop?.proof());
      exchange.forward(upstream, match.upstreamPath, session, dpop);
    } catch (error) {
      exchange.refuse(error);
    }
  }
}
