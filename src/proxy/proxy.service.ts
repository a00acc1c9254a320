import { Agent as HttpAgent, type ClientRequest, type IncomingMessage, type RequestOptions, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Socket } from 'node:net';
import { Transform, type Duplex } from 'node:stream';
import type { Url } from 'node:url';
import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import httpProxy from 'http-proxy';
import { GatewayError } from '../common/gateway-error.js';
import { mapError, writeRawProblem } from '../common/problem.js';
import { CONFIG } from '../config/config.module.js';
import type { Config, ProxyRoute } from '../config/config.js';
import { Metrics } from '../metrics/metrics.js';
import { applyForwardingPolicy } from './forwarded-headers.js';
import { InvalidUpstreamPathError, RequestBodyTooLargeError, StepUpRequiredError, UpstreamTimeoutError, UpstreamUnavailableError } from './proxy.errors.js';
import { stepUpChallenge } from './step-up-challenge.js';
import { stepUpLoginUrl } from '../oidc/step-up.js';
import { applyResponsePolicy, gatewayCookieMatcher, type ResponsePolicy } from './response-headers.js';
import { trustedPeers } from '../common/client-address.js';
import { refuseUpgrade } from './upgrade-refusal.js';
import { endClientSpan, Tracing } from '../tracing/tracing.js';
import type { UpstreamBinding } from './upstream-dpop.js';

declare module 'node:http' {
  interface Agent {
    /**
     * Called by the ClientRequest constructor, synchronously, before the request line is built
     * (at the first write or end()), whether a connection is free or the request has to queue.
     */
    addRequest(req: ClientRequest, options: RequestOptions): void;
  }
}

/** Node's own check of a request path (ClientRequest's INVALID_PATH_REGEX): no space, no control character. */
const UNSENDABLE_PATH = /[^\u0021-\u00ff]/;

/** The exchange waiting for the ClientRequest that http-proxy is creating for it right now. */
interface Opening {
  /** The path to send, byte for byte. */
  readonly path: string;
  /** Held back from http-proxy: with it, Node would build the request line in the constructor. */
  readonly expect: string | undefined;
  readonly claim: (proxyReq: ClientRequest) => void;
}

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
  /** http-proxy's target, parsed once. */
  readonly target: Partial<Url>;
  /** The Host header the upstream expects (dev servers refuse Host values they do not know). */
  readonly host: string;
  readonly response: ResponsePolicy;
  /** The error a refused or dropped connection becomes (502). */
  readonly unavailable: (cause: unknown) => GatewayError;
  /** Time allowed for the response headers (the route's `timeoutS`, else UPSTREAM_TIMEOUT_S). */
  readonly timeoutS: number;
  /**
   * The ACR values (OIDC_ACR_VALUES_ALLOWED) an RFC 9470 step-up challenge from this upstream may ask
   * for, when it is answered with `step_up_required`; undefined where the user's token is not what
   * the upstream judged (client-token routes, the SPA dev server): its 401s always pass through.
   */
  readonly stepUpAcrValues?: readonly string[] | undefined;
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
 * Forwards requests and WebSocket handshakes to upstreams with http-proxy, over one keep-alive
 * agent per upstream, bodies streaming both ways untouched, the path sent byte for byte. Every
 * exchange ends on both sides: a browser that leaves aborts the upstream request (freeing its
 * connection), an upstream that fails before its headers gets a 502/504 problem, and one that fails
 * after them breaks the browser's response at once. UPSTREAM_TIMEOUT_S covers the whole wait for
 * response headers (a free connection included), so long downloads, server-sent events and
 * WebSockets are never cut.
 *
 * http-proxy creates the upstream request; the agent hands it to the exchange the moment it is
 * created (`claim`), which is what its events cannot do: 'proxyReq' fires on socket assignment, too
 * late for a request queued behind a full pool (Node has built the request line by then), and its
 * path is joined with `//` collapsed. The exchange therefore sets the raw path, owns the timeout and
 * the abort of a queued request, and filters the response and 101 headers before http-proxy passes
 * them on.
 */
@Injectable()
export class ProxyService implements OnApplicationShutdown {
  private readonly log = new Logger(ProxyService.name);
  private readonly proxy = httpProxy.createProxyServer({ xfwd: false, prependPath: false, changeOrigin: false });
  private readonly upstreams: Upstream[] = [];
  private readonly byRoute = new Map<ProxyRoute, Upstream>();
  private readonly isTrustedPeer: (address: string | undefined) => boolean;
  private readonly isGatewayCookie: (name: string) => boolean;
  private readonly publicHost: string;
  private readonly publicProto: string;
  /** Set only while http-proxy runs synchronously inside `open()`: the exchange its ClientRequest belongs to. */
  private opening: Opening | undefined;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly metrics: Metrics,
    private readonly tracing: Tracing,
  ) {
    const url = new URL(config.server.publicUrl);
    this.publicHost = url.host;
    this.publicProto = url.protocol.slice(0, -1);
    this.isTrustedPeer = trustedPeers(config.ops.trustProxy);
    this.isGatewayCookie = gatewayCookieMatcher(config.session.cookie.name);
    keepOnlyStreamPass(this.proxy, 'webPasses');
    keepOnlyStreamPass(this.proxy, 'wsPasses');
    // every call passes its own callback, so this only hears what http-proxy reports outside one
    this.proxy.on('error', (error) => this.log.debug(`proxy error outside an exchange: ${error.message}`));
    for (const route of config.proxy.routes) {
      const userToken = route.token === 'user' || route.token === 'user-or-none';
      const policy = { timeoutS: route.timeoutS, varyCookie: route.token === 'user-or-none', stepUpAcrValues: userToken ? config.oidc.acrValuesAllowed : undefined };
      this.byRoute.set(route, this.createUpstream(route.prefix, route.target, route.passCookies, (cause) => new UpstreamUnavailableError(cause), policy));
    }
  }

  upstreamFor(route: ProxyRoute): Upstream {
    const upstream = this.byRoute.get(route);
    if (upstream === undefined) throw new Error(`no upstream for route ${route.prefix}`);
    return upstream;
  }

  /** An upstream with its own pool (the SPA dev server's), counted in the socket gauge. */
  createUpstream(
    name: string,
    target: string,
    passCookies: boolean,
    unavailable: (cause: unknown) => GatewayError,
    policy: { readonly timeoutS?: number; readonly varyCookie?: boolean; readonly stepUpAcrValues?: readonly string[] | undefined } = {},
  ): Upstream {
    const url = new URL(target);
    const https = url.protocol === 'https:';
    const maxSockets = this.config.proxy.maxSockets;
    const options = { keepAlive: true, maxSockets, maxFreeSockets: Math.min(64, maxSockets), scheduling: 'lifo' as const };
    const agent = https ? new HttpsAgent(options) : new HttpAgent(options);
    const addRequest = agent.addRequest.bind(agent);
    agent.addRequest = (req, requestOptions) => {
      this.claim(req);
      addRequest(req, requestOptions);
    };
    const upstream: Upstream = {
      name,
      agent,
      target: { protocol: url.protocol, hostname: url.hostname, port: url.port === '' ? (https ? '443' : '80') : url.port, host: url.host },
      host: url.host,
      response: { passCookies, isGatewayCookie: this.isGatewayCookie, varyCookie: policy.varyCookie ?? false },
      unavailable,
      timeoutS: policy.timeoutS ?? this.config.proxy.timeoutS,
      stepUpAcrValues: policy.stepUpAcrValues,
    };
    this.upstreams.push(upstream);
    return upstream;
  }

  /**
   * The one request-header policy, applied in place for HTTP and WebSocket alike. `accessToken`
   * undefined forwards no Authorization (the SPA dev server); with `dpopProof` it goes as DPoP.
   */
  applyRequestPolicy(req: IncomingMessage, requestId: string, accessToken: string | undefined, upgrade: boolean, dpopProof?: string): void {
    const peerAddress = req.socket.remoteAddress ?? '';
    applyForwardingPolicy(req.headers, {
      accessToken,
      dpopProof,
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
   * Streams `req` (headers already rewritten) to the upstream at `path` and its answer back to `res`,
   * which carries X-Request-Id whichever way it ends.
   * Failures before the response headers become one 502/504/413 problem; after them the browser's
   * response is destroyed, as nothing truthful can be said any more.
   *
   * With a DPoP binding (OIDC_DPOP), the upstream's DPoP-Nonce is kept for its origin, and its
   * use_dpop_nonce challenge (RFC 9449 §9) gets one more request with a proof carrying the nonce,
   * when the request has no body; one whose body has been streaming gets the 401 as it came.
   */
  forward(req: IncomingMessage, res: ServerResponse, upstream: Upstream, path: string, requestId: string, log: ExchangeLog, dpop?: UpstreamBinding): void {
    const timeoutS = upstream.timeoutS;
    let proxyReq: ClientRequest | undefined;
    // settled: the response has started, a failure was answered, or the browser left
    let settled = false;
    let browserGone = false;
    // the upstream call's span (tracing on); the upstream gets its traceparent, never the browser's
    const span = this.tracing.enabled ? this.tracing.startClient(`upstream ${upstream.name}`, { 'http.request.method': req.method ?? 'GET', 'bff.upstream': upstream.name, 'server.address': upstream.target.host ?? '' }) : undefined;
    this.tracing.inject(span, req.headers);
    const fail = (failure: GatewayError): void => {
      if (settled) return;
      settled = true;
      endClientSpan(span, { 'error.type': failure.code }, true);
      clearTimeout(timer);
      proxyReq?.destroy();
      if (browserGone) return;
      this.reportFailure(upstream, failure, log);
      writeRawProblem(res, requestId, failure);
    };
    // a nonce challenge can be answered only while the browser's response is untouched: the answer
    // is then written here (selfHandleResponse) instead of piped by http-proxy
    let nonceRetry = dpop !== undefined && isReplayable(req);
    const selfHandleResponse = nonceRetry;
    // runs before http-proxy's own 'response' listener, which then only pipes the body
    const onResponse = (proxyRes: IncomingMessage): void => {
      proxyRes.on('error', ignore);
      if (settled) {
        proxyRes.destroy();
        return;
      }
      const nonce = dpop?.answered(proxyRes.statusCode, proxyRes.headers);
      if (nonce !== undefined && nonceRetry && dpop !== undefined) {
        nonceRetry = false;
        // read to its end: the connection goes back to the pool
        proxyRes.resume();
        proxyReq = undefined;
        req.headers.dpop = dpop.proof(nonce);
        log.debug({ event: 'upstream_dpop_nonce_retried', upstream: upstream.name }, 'upstream asked for a DPoP nonce: request sent again with it');
        if (this.open(req, upstream, { path, expect: undefined, claim }, log, send)) fail(new InvalidUpstreamPathError());
        return;
      }
      clearTimeout(timer);
      // RFC 9470: only a 401 is read further, so other answers cost nothing
      if (proxyRes.statusCode === 401 && upstream.stepUpAcrValues !== undefined) {
        const stepUp = stepUpChallenge(proxyRes.headers['www-authenticate'], upstream.stepUpAcrValues);
        if (stepUp !== undefined) {
          settled = true;
          endClientSpan(span, { 'http.response.status_code': 401 }, false);
          // the challenge's body is not needed; ending the answer here keeps http-proxy from piping it
          proxyRes.destroy();
          log.debug({ event: 'step_up_required', upstream: upstream.name }, 'upstream asked for a step-up');
          writeRawProblem(res, requestId, new StepUpRequiredError(stepUpLoginUrl(stepUp)));
          return;
        }
      }
      const head = applyResponsePolicy(proxyRes.headers, upstream.response, false);
      // in the head itself: one header set earlier with setHeader would make writeHead set every
      // upstream header one by one; an upstream's own X-Request-Id is kept, as it always was
      head['x-request-id'] ??= requestId;
      try {
        // written here rather than by http-proxy's header copy: a status or header Node refuses to
        // write would throw inside its listener (or later, inside the body pipe) and end the process
        res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, head);
      } catch (error) {
        proxyRes.destroy();
        fail(upstream.unavailable(error));
        return;
      }
      settled = true;
      endClientSpan(span, { 'http.response.status_code': proxyRes.statusCode ?? 0 }, (proxyRes.statusCode ?? 502) >= 500);
      proxyRes.on('close', () => {
        if (proxyRes.complete || browserGone) return;
        log.warn({ event: 'upstream_aborted', upstream: upstream.name, status: proxyRes.statusCode }, 'upstream response aborted mid-body');
        res.destroy();
      });
      if (selfHandleResponse) proxyRes.pipe(res);
    };
    const claim = (created: ClientRequest): void => {
      proxyReq = created;
      created.prependListener('response', onResponse);
    };
    // a request still waiting for a free connection has no socket to time out: the timer answers itself
    const timer = setTimeout(() => fail(new UpstreamTimeoutError(timeoutS)), timeoutS * 1000);
    res.on('close', () => {
      if (res.writableFinished) return;
      // the browser closed the response (an EventSource, a download): end the upstream side too
      browserGone = true;
      if (!settled) endClientSpan(span, { 'error.type': 'client_closed' }, false);
      settled = true;
      clearTimeout(timer);
      proxyReq?.destroy();
    });
    const limit = this.config.proxy.maxBodyBytes;
    const options = { target: upstream.target, agent: upstream.agent, selfHandleResponse, ...(limit === undefined ? {} : { buffer: req.pipe(bodyLimiter(limit, fail)) }) };
    // A pooled keep-alive connection the upstream closed just as it was reused fails before any
    // answer; a request without a body that cannot change anything is sent once more on a fresh
    // one (as nginx's proxy_next_upstream does). Never a request with a body: it may have arrived.
    let retried = !isReplayable(req);
    const send = (): void =>
      this.proxy.web(req, res, options, (error) => {
        if (!retried && !settled && proxyReq?.reusedSocket === true && isConnectionReset(error)) {
          retried = true;
          proxyReq = undefined;
          log.debug({ event: 'upstream_retried', upstream: upstream.name }, 'reused upstream connection was closed: request sent again on a new one');
          if (this.open(req, upstream, { path, expect: undefined, claim }, log, send)) fail(new InvalidUpstreamPathError());
          return;
        }
        fail(error instanceof GatewayError ? error : upstream.unavailable(error));
      });
    const refused = this.open(req, upstream, { path, expect: undefined, claim }, log, send);
    if (!refused) return;
    if (!settled) endClientSpan(span, { 'error.type': 'invalid_upstream_path' }, true);
    settled = true;
    clearTimeout(timer);
    proxyReq?.destroy();
    writeRawProblem(res, requestId, new InvalidUpstreamPathError());
  }

  /**
   * Proxies a WebSocket handshake (headers already rewritten). The client socket already has its
   * 'error' listener (upgrade dispatch). Before the upstream's 101 a failure is answered with a
   * problem; after it either side closing closes the other.
   */
  forwardUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, upstream: Upstream, path: string, requestId: string, log: ExchangeLog, dpop?: UpstreamBinding): void {
    const timeoutS = upstream.timeoutS;
    let proxyReq: ClientRequest | undefined;
    let settled = false;
    const fail = (failure: GatewayError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      proxyReq?.destroy();
      if (socket.destroyed) return;
      this.reportFailure(upstream, failure, log);
      refuseUpgrade(socket, failure, requestId);
    };
    // the upstream answered without switching protocols (401, 404...): http-proxy passes it on, then the socket closes
    const onResponse = (proxyRes: IncomingMessage): void => {
      proxyRes.on('error', () => socket.destroy());
      if (settled) {
        proxyRes.destroy();
        return;
      }
      // a handshake is not sent twice: a nonce challenge passes through, its nonce kept for the next
      dpop?.answered(proxyRes.statusCode, proxyRes.headers);
      settled = true;
      clearTimeout(timer);
      // http-proxy writes this answer from proxyRes.headers
      const head = applyResponsePolicy(proxyRes.headers, upstream.response, false);
      delete head['content-length'];
      head.connection = 'close';
      proxyRes.headers = head;
    };
    // runs before http-proxy writes the 101 and joins the two sockets
    const onUpgrade = (proxyRes: IncomingMessage, proxySocket: Socket): void => {
      proxySocket.on('error', ignore);
      if (settled) {
        proxySocket.destroy();
        return;
      }
      settled = true;
      clearTimeout(timer);
      dpop?.answered(proxyRes.statusCode, proxyRes.headers);
      // http-proxy's pipes end the other side on a clean end only; a reset or a destroy must too
      proxySocket.once('close', () => socket.destroy());
      socket.once('close', () => proxySocket.destroy());
      // http-proxy writes the 101 from proxyRes.headers
      proxyRes.headers = applyResponsePolicy(proxyRes.headers, upstream.response, true);
    };
    const claim = (created: ClientRequest): void => {
      proxyReq = created;
      created.prependListener('response', onResponse);
      created.prependListener('upgrade', onUpgrade);
    };
    const timer = setTimeout(() => fail(new UpstreamTimeoutError(timeoutS)), timeoutS * 1000);
    socket.once('close', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      proxyReq?.destroy();
    });
    const refused = this.open(req, upstream, { path, expect: undefined, claim }, log, () =>
      this.proxy.ws(req, socket, head, { target: upstream.target, agent: upstream.agent }, (error) => fail(upstream.unavailable(error))),
    );
    if (!refused) return;
    settled = true;
    clearTimeout(timer);
    proxyReq?.destroy();
    refuseUpgrade(socket, new InvalidUpstreamPathError(), requestId);
  }

  onApplicationShutdown(): void {
    for (const upstream of this.upstreams) upstream.agent.destroy();
    this.proxy.close();
  }

  /**
   * Runs one http-proxy call, which creates its ClientRequest synchronously; the upstream's agent
   * hands that request to `opening` from inside the constructor (`claim`). Returns true when the
   * request cannot be sent (a path or header Node refuses), before anything reached the upstream.
   */
  private open(req: IncomingMessage, upstream: Upstream, opening: Opening, log: ExchangeLog, send: () => void): boolean {
    // the raw path skips the check Node makes on http-proxy's url.parse()d one: the same check here
    const refusal = UNSENDABLE_PATH.test(opening.path) ? new InvalidUpstreamPathError() : this.create(req, upstream, opening, send);
    if (refusal === undefined) return false;
    log.debug({ event: 'upstream_path_refused', err: refusal }, 'upstream path refused');
    return true;
  }

  private create(req: IncomingMessage, upstream: Upstream, opening: Opening, send: () => void): unknown {
    req.headers.host = upstream.host;
    const expect = req.headers.expect;
    if (expect !== undefined) delete req.headers.expect;
    this.opening = expect === undefined ? opening : { ...opening, expect };
    try {
      send();
      return undefined;
    } catch (error) {
      return error;
    } finally {
      this.opening = undefined;
    }
  }

  /** The agent's hook: gives the ClientRequest being constructed to the exchange that asked for it. */
  private claim(proxyReq: ClientRequest): void {
    const opening = this.opening;
    if (opening === undefined) return;
    this.opening = undefined;
    // http-proxy's path is url.parse()d and joined with `//` collapsed: the raw one goes instead
    proxyReq.path = opening.path;
    if (opening.expect !== undefined) proxyReq.setHeader('expect', opening.expect);
    opening.claim(proxyReq);
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

/**
 * Leaves http-proxy only its forwarding pass ('stream'). Its other passes are no-ops with our options
 * (`timeout`, `XHeaders`) or wrong for a gateway: `deleteLength` gives a DELETE or OPTIONS without
 * Content-Length a `Content-Length: 0` and drops its Transfer-Encoding, so a chunked body reaches the
 * upstream's keep-alive connection as the next request (request smuggling); `checkMethodAndHeader`
 * destroys any upgrade that is not a WebSocket without an answer, where the upstream should decide.
 * The lists are instance properties that http-proxy's typings do not declare.
 */
function keepOnlyStreamPass(proxy: object, list: 'webPasses' | 'wsPasses'): void {
  const passes: unknown = Reflect.get(proxy, list);
  const stream = Array.isArray(passes) ? passes.filter((pass: unknown) => typeof pass === 'function' && pass.name === 'stream') : [];
  if (stream.length !== 1) throw new Error(`http-proxy has no ${list} 'stream' pass: check the http-proxy version`);
  Reflect.set(proxy, list, stream);
}

/** Safe to send twice: a method that changes nothing (RFC 9110 §9.2.1) and no body at all. */
function isReplayable(req: IncomingMessage): boolean {
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS') return false;
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] === undefined && (length === undefined || length === '0');
}

/** The error of a connection the peer closed or reset under a request. */
function isConnectionReset(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  return code === 'ECONNRESET' || code === 'EPIPE';
}

function ignore(): void {
  // the stream's end is handled by its 'close' listener
}

function countAll(byName: NodeJS.ReadOnlyDict<readonly unknown[]>): number {
  let count = 0;
  for (const name in byName) count += byName[name]?.length ?? 0;
  return count;
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
