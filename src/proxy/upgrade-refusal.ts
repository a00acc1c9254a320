import type { Duplex } from 'node:stream';
import { mapError, refuseSocket } from '../common/problem.js';

/**
 * Answers a WebSocket handshake the gateway will not proxy with its problem, through the one
 * writer every socket-level refusal uses (same status table, body and headers as any error), then
 * closes the socket. The socket's 'error' listener is already attached (upgrade dispatch).
 */
export function refuseUpgrade(socket: Duplex, error: unknown, requestId: string): void {
  refuseSocket(socket, mapError(error), requestId);
}
