import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { refuseSocket, statusProblem } from '../common/problem.js';

interface ConnectionError extends Error {
  code?: string;
}

/** Node's parser and timeout errors by status; the problem's code and title come from the one status table. */
const STATUS_OF_ERROR: Readonly<Record<string, number>> = {
  HPE_HEADER_OVERFLOW: 431,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
};

/**
 * Requests Node rejects before Fastify sees them (oversized headers, malformed HTTP, a slow client)
 * still get a problem+json body, like every other error the gateway answers.
 */
export function clientErrorHandler(error: ConnectionError, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  refuseSocket(socket, statusProblem(STATUS_OF_ERROR[error.code ?? ''] ?? 400), randomUUID());
}
