import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { requestClassOf } from '../common/request-class.js';
import { requestIdFor } from '../common/logger.js';
import type { SpaRoutes } from '../spa/spa.routes.js';
import type { ApiProxyRoutes } from './api-proxy.routes.js';
import { UpgradeNotServedError } from './proxy.errors.js';
import { refuseUpgrade } from './upgrade-refusal.js';

/**
 * Routes WebSocket handshakes: /api to the API proxy, SPA paths to the frontend dev server, anything
 * else refused. Node removes its own 'error' listener from the socket before emitting 'upgrade', so
 * a client reset (or a write into a reset peer) would be an unhandled error that ends the process:
 * the listener goes on first, before any other work (as the `ws` library does).
 */
export function dispatchUpgrades(fastify: FastifyInstance, api: ApiProxyRoutes, spa: SpaRoutes): void {
  fastify.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', onClientSocketError);
    const requestClass = requestClassOf(req.url ?? '/');
    if (requestClass === 'api') void api.handleUpgrade(fastify, req, socket, head);
    else if (requestClass !== 'spa' || !spa.handleUpgrade(fastify, req, socket, head)) refuseUpgrade(socket, new UpgradeNotServedError(), requestIdFor(req));
  });
}

function onClientSocketError(this: Duplex): void {
  // a reset peer: the socket is closing anyway, and its 'close' ends whatever it was connected to
  this.destroy();
}
