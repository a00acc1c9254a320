import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type RequestOptions, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Socket } from 'node:net';
import { Transform, type Duplex } from 'node:stream';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { GatewayError } from '../common/gateway-error.js';
import { mapError, writeRawProblem } from '../common/problem.js';
import { CONFIG } from '../config/config.module.js';
import type { Config, ProxyRoute } from '../config/config.js';
import { Metrics } from '../metrics/metrics.js';
import { applyForwardingPolicy } from './forwarded-headers.js';
import { InvalidUpstreamPathError, RequestBodyTooLargeError, UpstreamTimeoutError, UpstreamUnavailableError } from './proxy.errors.js';
import { applyResponsePolicy, gatewayCookieMatcher, type ResponsePolicy } from './response-headers.js';
import { trustedPeerMatcher } from './trusted-peer.js';
import { refuseUpgrade } from './upgrade-refusal.js';

/** Where a proxied exchange logs (the request's own logger, so lines carry its reqId). */
export interface ExchangeLog {
  warn(fields: object, message: string): void;
  debug(fields: object, message: string): void;
}

/** One upstream (a PROXY_ROUTES entry, or the SPA dev server) with its own bounded connection pool. */
export interface Upstream {
  /** The metric label: the route's prefix, or `spa` for the dev server. */
  readonly name: string;
  readonly agent: HttpAgent;
  readonly send: (options: RequestOptions) => ClientRequest;
  readonly hostname: string;
  readonly port: string;
  /** The Host header the upstream expects (dev servers refuse Host values they do not know). */
  readonly host: string;
  readonly response: ResponsePolicy;
  /** The error a refused or dropped connection becomes (502). */
  readonly unavailable: (cause: unknown) => GatewayError;
}

export interface UpstreamSockets {
  readonly upstream: string;
  /** Connections carrying a request, a stream or a handshake (Node takes an upgraded socket out of the agent). */
  readonly active: number;
  /** Idle keep-alive connections ready for the next request. */
  readonly free: number;
  /** Requests waiting for a connection because the pool is full. */
  readonly queued: number;
}

/**
 * Forwards requests and WebSocket handshakes to upstreams over one keep-alive agent per upstream,
 * bodies streaming both ways untouched, the path sent byte for byte. Every exchange ends on both
 * sides: a browser that leaves aborts the upstream request (freeing its connection), an upstream
 * that fails before its headers gets a 502/504 problem, and one that fails after them breaks the
 * browser's response at once. UPSTREAM_TIMEOUT_S covers the whole wait for response headers
 * (a free connection included), so long downloads, server-sent events and WebSockets are never cut.
 */
@Injectable()
export class ProxyService implements OnApplicationShutdown {
  private readonly upstreams: Upstream[] = [];
  private readonly byRoute = new Map<ProxyRoute, Upstream>();
  private readonly isTrustedPeer: (address: string | undefined) => boolean;
  private readonly isGatewayCookie: (name: string) => boolean;
  private readonly publicHost: string;
  private readonly publicProto: string;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly metrics: Metrics,
  ) {
    const url = new URL(config.server.publicUrl);
    this.publicHost = url.host;
    this.publicProto = url.protocol.slice(0, -1);
    this.isTrustedPeer = trustedPeerMatcher(config.ops.trustProxy);
    this.isGatewayCookie = gatewayCookieMatcher(config.session.cookie.name);
    for (const route of config.proxy.routes) {
      this.byRoute.set(route, this.createUpstream(route.prefix, route.target, route.passCookies, (cause) => new UpstreamUnavailableError(cause)));
    }
  }

  upstreamFor(route: ProxyRoute): Upstream {
    const upstream = this.byRoute.get(route);
    if (upstream === undefined) throw new Error(`no upstream for route ${route.prefix}`);
    return upstream;
  }

  /** An upstream with its own pool (the SPA dev server's), counted in the socket gauge. */
  createUpstream(name: string, target: string, passCookies: boolean, unavailable: (cause: unknown) => GatewayError): Upstream {
    const url = new URL(target);
    const https = url.protocol === 'https:';
    const maxSockets = this.config.proxy.maxSockets;
    const options = { keepAlive: true, maxSockets, maxFreeSockets: Math.min(64, maxSockets), scheduling: 'lifo' as const };
    const upstream: Upstream = {
      name,
      agent: https ? new HttpsAgent(options) : new HttpAgent(options),
      send: https ? httpsRequest : httpRequest,
      hostname: url.hostname,
      port: url.port === '' ? (https ? '443' : '80') : url.port,
      host: url.host,
      response: { passCookies, isGatewayCookie: this.isGatewayCookie },
      unavailable,
    };
    this.upstreams.push(upstream);
    return upstream;
  }

  /**
   * The one request-header policy, applied in place for HTTP and WebSocket alike. `accessToken`
   * undefined forwards no Authorization (the SPA dev server).
   */
  applyRequestPolicy(req: IncomingMessage, requestId: string, accessToken: string | undefined, upgrade: boolean): void {
    const peerAddress = req.socket.remoteAddress ?? '';
    applyForwardingPolicy(req.headers, {
      accessToken,
      peerAddress,
      peerTrusted: this.isTrustedPeer(peerAddress),
      proto: this.publicProto,
      host: this.publicHost,
      requestId,
      upgrade,
    });
  }

  /** Connections per upstream, for the `bff_upstream_sockets` gauge. */
  socketCounts(): UpstreamSockets[] {
    return this.upstreams.map(({ name, agent }) => ({
      upstream: name,
      active: countAll(agent.sockets),
      free: countAll(agent.freeSockets),
      queued: countAll(agent.requests),
    }));
  }

  /**
   * Streams `req` (headers already rewritten) to the upstream at `path` and its answer back to `res`.
   * Failures before the response headers become one 502/504/413 problem; after them the browser's
   * response is destroyed, as nothing truthful can be said any more.
   */
  forward(req: IncomingMessage, res: ServerResponse, upstream: Upstream, path: string, requestId: string, log: ExchangeLog): void {
    let proxyReq: ClientRequest;
    try {
      proxyReq = this.open(req, upstream, path);
    } catch (error) {
      // a path Node refuses to send (characters a request line cannot carry)
      log.debug({ event: 'upstream_path_refused', err: error }, 'upstream path refused');
      writeRawProblem(res, requestId, new InvalidUpstreamPathError());
      return;
    }
    const timeoutS = this.config.proxy.timeoutS;
    // settled: the response has started, a failure was answered, or the browser left
    let settled = false;
    let browserGone = false;
    const fail = (failure: GatewayError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      proxyReq.destroy();
      if (browserGone) return;
      this.reportFailure(upstream, failure, log);
      writeRawProblem(res, requestId, failure);
    };
    // a request still waiting for a free connection has no socket to time out: the timer answers itself
    const timer = setTimeout(() => fail(new UpstreamTimeoutError(timeoutS)), timeoutS * 1000);
    proxyReq.on('error', (error) => fail(upstream.unavailable(error)));
    res.on('close', () => {
      if (res.writableFinished) return;
      // the browser closed the response (an EventSource, a download): end the upstream side too
      browserGone = true;
      settled = true;
      clearTimeout(timer);
      proxyReq.destroy();
    });
    proxyReq.on('response', (proxyRes) => {
      proxyRes.on('error', ignore);
      if (settled) {
        proxyRes.destroy();
        return;
      }
      clearTimeout(timer);
      applyResponsePolicy(proxyRes.headers, upstream.response, false);
      try {
        res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, proxyRes.headers);
      } catch (error) {
        // a status line or header value Node refuses to write
        proxyRes.destroy();
        fail(upstream.unavailable(error));
        return;
      }
      settled = true;
      proxyRes.on('close', () => {
        if (proxyRes.complete || browserGone) return;
        log.warn({ event: 'upstream_aborted', upstream: upstream.name, status: proxyRes.statusCode }, 'upstream response aborted mid-body');
        res.destroy();
      });
      proxyRes.pipe(res);
    });
    const limit = this.config.proxy.maxBodyBytes;
    (limit === undefined ? req : req.pipe(bodyLimiter(limit, fail))).pipe(proxyReq);
  }

  /**
   * Proxies a WebSocket handshake (headers already rewritten). The client socket already has its
   * 'error' listener (upgrade dispatch). Before the upstream's 101 a failure is answered with a
   * problem; after it either side closing closes the other.
   */
  forwardUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, upstream: Upstream, path: string, requestId: string, log: ExchangeLog): void {
    let proxyReq: ClientRequest;
    try {
      proxyReq = this.open(req, upstream, path);
    } catch {
      refuseUpgrade(socket, new InvalidUpstreamPathError(), requestId);
      return;
    }
    const timeoutS = this.config.proxy.timeoutS;
    let settled = false;
    const fail = (failure: GatewayError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      proxyReq.destroy();
      if (socket.destroyed) return;
      this.reportFailure(upstream, failure, log);
      refuseUpgrade(socket, failure, requestId);
    };
    const timer = setTimeout(() => fail(new UpstreamTimeoutError(timeoutS)), timeoutS * 1000);
    proxyReq.on('error', (error) => fail(upstream.unavailable(error)));
    socket.once('close', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      proxyReq.destroy();
    });
    // the upstream answered without switching protocols (401, 404...): pass its answer on, then close
    proxyReq.on('response', (proxyRes) => {
      proxyRes.on('error', () => socket.destroy());
      if (settled) {
        proxyRes.destroy();
        return;
      }
      settled = true;
      clearTimeout(timer);
      applyResponsePolicy(proxyRes.headers, upstream.response, false);
      delete proxyRes.headers['content-length'];
      socket.write(rawHead(`HTTP/1.1 ${proxyRes.statusCode ?? 502} ${proxyRes.statusMessage ?? ''}`, { ...proxyRes.headers, connection: 'close' }));
      proxyRes.pipe(socket);
    });
    proxyReq.on('upgrade', (proxyRes, proxySocket, proxyHead) => {
      proxySocket.on('error', ignore);
      if (settled) {
        proxySocket.destroy();
        return;
      }
      settled = true;
      clearTimeout(timer);
      proxySocket.once('close', () => socket.destroy());
      socket.once('close', () => proxySocket.destroy());
      applyResponsePolicy(proxyRes.headers, upstream.response, true);
      tune(proxySocket);
      tune(socket);
      if (proxyHead.length > 0) proxySocket.unshift(proxyHead);
      socket.write(rawHead('HTTP/1.1 101 Switching Protocols', proxyRes.headers));
      proxySocket.pipe(socket).pipe(proxySocket);
    });
    // bytes the client sent after its handshake go upstream once the tunnel stands
    if (head.length > 0) socket.unshift(head);
    proxyReq.end();
  }

  onApplicationShutdown(): void {
    for (const upstream of this.upstreams) upstream.agent.destroy();
  }

  private open(req: IncomingMessage, upstream: Upstream, path: string): ClientRequest {
    req.headers.host = upstream.host;
    return upstream.send({ hostname: upstream.hostname, port: upstream.port, method: req.method, path, headers: req.headers, agent: upstream.agent });
  }

  /** One log line and one metric per upstream failure, whichever path it happened on. */
  private reportFailure(upstream: Upstream, failure: GatewayError, log: ExchangeLog): void {
    const { code, status } = mapError(failure);
    if (status < 500) {
      log.debug({ event: 'proxy_request_refused', code, status }, 'proxied request refused');
      return;
    }
    this.metrics.countUpstreamError(failure instanceof UpstreamTimeoutError ? 'timeout' : 'unavailable');
    log.warn({ event: 'upstream_failed', upstream: upstream.name, code, status }, 'upstream request failed');
  }
}

function ignore(): void {
  // the stream's end is handled by its 'close' listener
}

function countAll(byName: NodeJS.ReadOnlyDict<readonly unknown[]>): number {
  let count = 0;
  for (const name in byName) count += byName[name]?.length ?? 0;
  return count;
}

/** A long-lived tunnel: no idle timeout (the endpoints decide), no Nagle delay for small frames. */
function tune(socket: Duplex): void {
  if (!(socket instanceof Socket)) return;
  socket.setTimeout(0);
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 0);
}

function rawHead(statusLine: string, headers: IncomingHttpHeaders): string {
  let head = statusLine;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) head += `\r\n${name}: ${item}`;
  }
  return `${head}\r\n\r\n`;
}

/** Counts body bytes as they stream (chunked bodies have no Content-Length to check up front). */
function bodyLimiter(limit: number, fail: (failure: GatewayError) => void): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > limit) {
        fail(new RequestBodyTooLargeError(limit));
        callback();
        return;
      }
      callback(null, chunk);
    },
  });
}
