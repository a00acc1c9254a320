import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Injectable } from '@nestjs/common';
import type { FastifyInstance } from 'fastify';
import { requestIdFor } from '../common/logger.js';
import { requestClassOf, type RequestClass } from '../common/request-class.js';
import { UpgradeNotServedError } from '../proxy/proxy.errors.js';
import { refuseUpgrade } from '../proxy/upgrade-refusal.js';

/** Serves a WebSocket handshake, or returns false when it is not one this handler takes. */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;

/**
 * The one 'upgrade' listener. Modules that accept WebSockets (the /api proxy, the SPA's dev server)
 * add a handler for their request class at module init; a handshake nobody takes is refused.
 * Node removes its own 'error' listener from the socket before emitting 'upgrade', so a client
 * reset (or a write into a reset peer) would be an unhandled error that ends the process: the
 * listener goes on first, before any other work (as the `ws` library does).
 */
@Injectable()
export class UpgradeRouter {
  private readonly handlers = new Map<RequestClass, UpgradeHandler>();

  handle(requestClass: RequestClass, handler: UpgradeHandler): void {
    this.handlers.set(requestClass, handler);
  }

  listen(fastify: FastifyInstance): void {
    fastify.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', onClientSocketError);
      const handler = this.handlers.get(requestClassOf(req.url ?? '/'));
      if (handler === undefined || !handler(req, socket, head)) refuseUpgrade(socket, new UpgradeNotServedError(), requestIdFor(req));
    });
  }
}

function onClientSocketError(this: Duplex): void {
  // a reset peer: the socket is closing anyway, and its 'close' ends whatever it was connected to
  this.destroy();
}
