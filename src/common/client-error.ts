import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { toProblem } from './problem.js';

interface ConnectionError extends Error {
  code?: string;
}

const ANSWERS: Readonly<Record<string, readonly [number, string, string]>> = {
  HPE_HEADER_OVERFLOW: [431, 'request_header_fields_too_large', 'Request header fields too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'request_timeout', 'Request timeout'],
};

/**
 * Requests Node rejects before Fastify sees them (oversized headers, malformed HTTP, a slow client)
 * still get a problem+json body, like every other error the gateway answers.
 */
export function clientErrorHandler(error: ConnectionError, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, title] = ANSWERS[error.code ?? ''] ?? [400, 'bad_request', 'Bad request'];
  const body = JSON.stringify(toProblem({ status, code, title, detail: undefined, retryAfterS: undefined }, randomUUID()));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${title}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
