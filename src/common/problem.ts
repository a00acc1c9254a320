import { HttpException } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from './gateway-error.js';

/** RFC 9457 problem details, as the gateway sends them. */
export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly code: string;
  readonly detail?: string;
  readonly instance: string;
}

export interface Mapped {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly detail: string | undefined;
  readonly retryAfterS: number | undefined;
}

const STATUS_CODES: Readonly<Record<number, readonly [string, string]>> = {
  400: ['bad_request', 'Bad request'],
  401: ['unauthorized', 'Unauthorized'],
  403: ['forbidden', 'Forbidden'],
  404: ['not_found', 'Not found'],
  405: ['method_not_allowed', 'Method not allowed'],
  406: ['not_acceptable', 'Not acceptable'],
  408: ['request_timeout', 'Request timeout'],
  413: ['payload_too_large', 'Request body too large'],
  414: ['uri_too_long', 'URI too long'],
  415: ['unsupported_media_type', 'Unsupported media type'],
  429: ['too_many_requests', 'Too many requests'],
  431: ['request_header_fields_too_large', 'Request header fields too large'],
};

function statusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null || !('statusCode' in error)) return undefined;
  const status = error.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/**
 * Maps anything thrown to what the client sees. Client errors keep their status with a generic,
 * stable code; anything unknown is a 500 `internal_error` that reveals nothing.
 */
export function mapError(error: unknown): Mapped {
  if (error instanceof GatewayError) {
    return { status: error.status, code: error.code, title: error.title, detail: error.detail, retryAfterS: error.retryAfterS };
  }
  const status = error instanceof HttpException ? error.getStatus() : statusOf(error);
  if (status !== undefined && status >= 400 && status < 500) {
    const [code, title] = STATUS_CODES[status] ?? ['client_error', 'Client error'];
    return { status, code, title, detail: undefined, retryAfterS: undefined };
  }
  return { status: 500, code: 'internal_error', title: 'Internal error', detail: undefined, retryAfterS: undefined };
}

export function toProblem(mapped: Mapped, requestId: string): Problem {
  return {
    type: `/problems/${mapped.code}`,
    title: mapped.title,
    status: mapped.status,
    code: mapped.code,
    ...(mapped.detail === undefined ? {} : { detail: mapped.detail }),
    instance: requestId,
  };
}

/**
 * A top-level browser navigation gets an HTML page; fetch/XHR callers and anything that
 * asks for JSON get application/problem+json.
 */
export function wantsHtml(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? '';
  if (request.url.startsWith('/api/')) return false;
  if (/application\/(problem\+)?json/.test(accept)) return false;
  return request.headers['sec-fetch-mode'] === 'navigate' || accept.includes('text/html');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function problemPage(problem: Problem): string {
  const detail = problem.detail === undefined ? '' : `<p>${escapeHtml(problem.detail)}</p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${problem.status} ${escapeHtml(problem.title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}code{color:#555}</style></head>
<body><h1>${escapeHtml(problem.title)}</h1>${detail}
<p><a href="/auth/login">Sign in again</a> &middot; <a href="/">Home</a></p>
<p><small>Error <code>${escapeHtml(problem.code)}</code>, request <code>${escapeHtml(problem.instance)}</code></small></p>
</body></html>`;
}

/** For responses Fastify no longer manages (a hijacked proxy reply): same body, raw socket. */
export function writeRawProblem(res: import('node:http').ServerResponse, requestId: string, error: unknown): void {
  const mapped = mapError(error);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(toProblem(mapped, requestId));
  res.writeHead(mapped.status, {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': requestId,
    'x-content-type-options': 'nosniff',
    ...(mapped.retryAfterS === undefined ? {} : { 'retry-after': String(mapped.retryAfterS) }),
  });
  res.end(body);
}

/**
 * Writes the problem response and logs the error once: 5xx that are the gateway's own fault at
 * error, outages (502-504) at warn, client mistakes at debug.
 */
export function sendProblem(request: FastifyRequest, reply: FastifyReply, error: unknown): void {
  const mapped = mapError(error);
  const problem = toProblem(mapped, request.id);
  const logFields = { event: 'request_failed', code: mapped.code, status: mapped.status, err: error };
  if (mapped.status === 500 || (error instanceof GatewayError && error.operatorFault)) request.log.error(logFields, 'request failed');
  else if (mapped.status >= 500) request.log.warn(logFields, 'request failed');
  else request.log.debug({ event: 'request_rejected', code: mapped.code, status: mapped.status }, 'request rejected');

  if (reply.sent || reply.raw.headersSent) {
    reply.raw.destroy();
    return;
  }
  reply.status(mapped.status);
  if (mapped.retryAfterS !== undefined) reply.header('retry-after', String(mapped.retryAfterS));
  if (wantsHtml(request)) {
    void reply.type('text/html; charset=utf-8').send(problemPage(problem));
  } else {
    void reply.type('application/problem+json').send(JSON.stringify(problem));
  }
}
