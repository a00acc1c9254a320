import { Agent as HttpAgent, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Transform, type Duplex } from 'node:stream';
import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import httpProxy from 'http-proxy';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { GatewayError } from '../common/gateway-error.js';
import { RequestBodyTooLargeError, UpstreamTimeoutError, UpstreamUnavailableError } from './proxy.errors.js';

/** Per-request state the proxy's events need, kept on the incoming request. */
interface InFlight {
  timer: NodeJS.Timeout | undefined;
  proxyReq: import('node:http').ClientRequest | undefined;
  failure: GatewayError | undefined;
}

export type UpstreamFailure = (error: GatewayError) => void;

declare module 'node:http' {
  interface IncomingMessage {
    /**
     * The proxy's state for this request. A property rather than a WeakMap: WeakMap entries are
     * ephemerons that make every young-generation GC slower, which the benchmark measured on /api/*.
     */
    bffProxyState?: InFlight;
  }
}

/**
 * One http-proxy instance and one keep-alive agent per upstream. Bodies stream both ways untouched.
 * The timeout covers the wait for the upstream's response headers only, so long downloads,
 * server-sent events and WebSockets are never cut by it.
 */
@Injectable()
export class ProxyService implements OnApplicationShutdown {
  private readonly log = new Logger(ProxyService.name);
  private readonly proxy = httpProxy.createProxyServer({ xfwd: false, ws: true, prependPath: true, changeOrigin: true });
  private readonly agents = new Map<string, HttpAgent>();
  /** Called with each upstream failure kind (metrics). */
  onUpstreamError: (kind: 'unavailable' | 'timeout') => void = () => undefined;

  constructor(@Inject(CONFIG) private readonly config: Config) {
    this.proxy.on('proxyReq', (proxyReq, req) => {
      const state = req.bffProxyState;
      if (state !== undefined) state.proxyReq = proxyReq;
    });
    this.proxy.on('proxyRes', (_proxyRes, req) => {
      const state = req.bffProxyState;
      if (state !== undefined) clearTimeout(state.timer);
    });
    // without a listener, http-proxy rethrows: socket errors of WebSockets must not crash the process
    this.proxy.on('error', (error) => this.log.debug(`proxy error outside a request: ${error.message}`));
  }

  /**
   * Streams the request to `target` + `upstreamPath` (headers already rewritten). Calls `onFailure`
   * at most once, before any response byte, with 502 or 504; after headers were sent the socket is
   * destroyed instead, as nothing truthful can be said any more.
   */
  forward(req: IncomingMessage, res: ServerResponse, target: string, upstreamPath: string, onFailure: UpstreamFailure): void {
    const state: InFlight = { timer: undefined, proxyReq: undefined, failure: undefined };
    const limit = this.config.proxy.maxBodyBytes;
    const body = limit === undefined ? undefined : req.pipe(bodyLimiter(limit, state));
    req.bffProxyState = state;
    const timeoutS = this.config.proxy.timeoutS;
    state.timer = setTimeout(() => {
      state.failure = new UpstreamTimeoutError(timeoutS);
      state.proxyReq?.destroy(state.failure);
    }, timeoutS * 1000);
    res.once('close', () => clearTimeout(state.timer));
    req.url = upstreamPath;
    this.proxy.web(req, res, { target, agent: this.agentFor(target), ...(body === undefined ? {} : { buffer: body }) }, (error) => {
      clearTimeout(state.timer);
      if (req.socket.destroyed) return; // the browser went away: nobody to tell
      const failure = state.failure ?? (error instanceof GatewayError ? error : new UpstreamUnavailableError(error));
      this.onUpstreamError(failure instanceof UpstreamTimeoutError ? 'timeout' : 'unavailable');
      if (res.headersSent) {
        res.destroy();
        return;
      }
      onFailure(failure);
    });
  }

  /** Proxies a WebSocket handshake (headers already rewritten); a failure closes the socket. */
  forwardUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, target: string, upstreamPath: string): void {
    req.url = upstreamPath;
    this.proxy.ws(req, socket, head, { target, agent: this.agentFor(target) }, (error) => {
      this.onUpstreamError('unavailable');
      this.log.debug(`websocket proxy failed: ${error.message}`);
      socket.destroy();
    });
  }

  onApplicationShutdown(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.proxy.close();
  }

  private agentFor(target: string): HttpAgent {
    let agent = this.agents.get(target);
    if (agent === undefined) {
      const options = { keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' as const };
      agent = target.startsWith('https:') ? new HttpsAgent(options) : new HttpAgent(options);
      this.agents.set(target, agent);
    }
    return agent;
  }
}

/** Counts body bytes as they stream (chunked bodies have no Content-Length to check up front). */
function bodyLimiter(limit: number, state: InFlight): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > limit) {
        state.failure = new RequestBodyTooLargeError(limit);
        state.proxyReq?.destroy(state.failure);
        callback();
        return;
      }
      callback(null, chunk);
    },
  });
}
