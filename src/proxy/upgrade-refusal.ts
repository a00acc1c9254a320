import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { mapError, toProblem } from '../common/problem.js';

/** Long enough for a well-behaved client to read the answer, short enough that a silent one costs nothing. */
const DESTROY_AFTER_MS = 1000;

/**
 * Answers a WebSocket handshake the gateway will not proxy with its problem (same status table and
 * body as every other error), then closes: `end()` for a client that reads the answer, and a short,
 * unref'd timer that destroys the socket of one that never does. The socket's 'error' listener is
 * already attached (upgrade dispatch), so a peer that reset meanwhile costs nothing.
 */
export function refuseUpgrade(socket: Duplex, error: unknown, requestId: string): void {
  if (socket.destroyed) return;
  const mapped = mapError(error);
  const body = JSON.stringify(toProblem(mapped, requestId));
  const retryAfter = mapped.retryAfterS === undefined ? '' : `Retry-After: ${mapped.retryAfterS}\r\n`;
  socket.end(
    `HTTP/1.1 ${mapped.status} ${STATUS_CODES[mapped.status] ?? 'Error'}\r\n` +
      `Content-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `X-Request-Id: ${requestId}\r\nX-Content-Type-Options: nosniff\r\n${retryAfter}Connection: close\r\n\r\n${body}`,
  );
  setTimeout(destroy, DESTROY_AFTER_MS, socket).unref();
}

function destroy(socket: Duplex): void {
  socket.destroy();
}
