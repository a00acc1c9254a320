import type { IncomingMessage, ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Config } from '../config/config.js';
import { clientKey, trustedPeers } from '../common/client-address.js';
import { requestIdFor } from '../common/logger.js';
import { refuseSocket, statusProblem } from '../common/problem.js';
import { requestClassOf } from '../common/request-class.js';

/**
 * How often Node looks for requests past their headers timeout (its default, 30 s, would let a
 * slowloris connection live up to 30 s past SERVER_HEADERS_TIMEOUT_S).
 */
const TIMEOUT_CHECK_MS = 1_000;

/** Options of the main port's HTTP server, given to Fastify when it creates it. */
export function serverOptions(config: Config): { readonly keepAliveTimeout: number; readonly http: ServerOptions } {
  const { headersTimeoutS, keepAliveTimeoutS } = config.connections;
  return {
    keepAliveTimeout: keepAliveTimeoutS * 1000,
    http: {
      headersTimeout: headersTimeoutS * 1000,
      // Node's requestTimeout covers the whole body: it would cut long /api uploads, which
      // UPSTREAM_TIMEOUT_S and the upstream govern; the gateway's own requests get one below
      requestTimeout: 0,
      keepAliveTimeout: keepAliveTimeoutS * 1000,
      connectionsCheckingInterval: Math.min(TIMEOUT_CHECK_MS, headersTimeoutS * 1000),
    },
  };
}

/**
 * Limits on the main port against connection floods and slow clients: SERVER_MAX_CONNECTIONS in
 * all and SERVER_MAX_CONNECTIONS_PER_CLIENT per peer address (peers in TRUST_PROXY exempt),
 * beyond which a connection is destroyed at once, never queued; SERVER_REQUEST_TIMEOUT_S for every
 * request outside /api; CONNECT refused. The probes on METRICS_PORT are another server, not capped.
 */
export function installConnectionLimits(fastify: FastifyInstance, config: Config, log: FastifyBaseLogger): void {
  const server = fastify.server;
  // net.Server closes connections beyond it before they are accepted into the HTTP machinery
  server.maxConnections = config.connections.max;
  server.on('connection', perClientCap(config.connections.maxPerClient, trustedPeers(config.ops.trustProxy), log));
  // Without a listener Node closes a CONNECT silently; the gateway is no forward proxy and says so
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    log.debug({ event: 'connect_refused' }, 'CONNECT refused');
    // RFC 9110 §15.5.6 wants Allow on a 405; an empty one says no method is served for an authority-form target
    refuseSocket(socket, { ...statusProblem(405), allow: [] }, requestIdFor(req));
  });
  const requestTimeoutMs = config.connections.requestTimeoutS * 1000;
  if (requestTimeoutMs === 0) return;
  // root hook: every route outside /api (the gateway's own, the SPA's, and 404s) needs the deadline
  fastify.addHook('onRequest', (request, reply, done) => {
    if (requestClassOf(request.url) !== 'api') {
      const req = request.raw;
      const timer = setTimeout(() => {
        if (req.complete) return;
        request.log.debug({ event: 'request_body_timeout' }, 'request body not received in time');
        if (reply.raw.headersSent) req.socket.destroy();
        else refuseSocket(req.socket, statusProblem(408), request.id);
      }, requestTimeoutMs);
      timer.unref();
      reply.raw.once('close', () => clearTimeout(timer));
    }
    done();
  });
}

/** Counts open connections per client key (an IPv4 address or an IPv6 /64) and destroys the ones over the cap. */
function perClientCap(cap: number, isTrusted: (address: string | undefined) => boolean, log: FastifyBaseLogger): (socket: Socket) => void {
  const open = new Map<string, number>();
  return (socket) => {
    const address = socket.remoteAddress;
    if (address === undefined || isTrusted(address)) return;
    const key = clientKey(address);
    const count = (open.get(key) ?? 0) + 1;
    if (count > cap) {
      log.debug({ event: 'connection_refused', reason: 'per_client_cap' }, 'connection over the per-client cap closed');
      socket.destroy();
      return;
    }
    open.set(key, count);
    socket.once('close', () => {
      const left = (open.get(key) ?? 1) - 1;
      if (left === 0) open.delete(key);
      else open.set(key, left);
    });
  };
}
