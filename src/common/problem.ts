import { HttpException } from '@nestjs/common';
import { STATUS_CODES, validateHeaderName, validateHeaderValue, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from './gateway-error.js';
import { acceptsHtml, requestClassOf } from './request-class.js';
import { applySecurityHeaders } from './security-headers.js';

/** RFC 9457 problem details, as the gateway sends them. */
export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly code: string;
  readonly detail?: string;
  readonly instance: string;
  /** RFC 9457 §3.2 extension members (never one of the names above). */
  readonly [extension: string]: unknown;
}

export interface Mapped {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly detail: string | undefined;
  readonly retryAfterS: number | undefined;
  /** Allow header of a 405. */
  readonly allow?: readonly string[] | undefined;
  readonly extensions?: Readonly<Record<string, string>> | undefined;
}

/**
 * The one status table: the stable code and title of a problem that is known only by its status
 * (a framework or Node-level rejection, a refused connection). GatewayErrors carry their own.
 */
const STATUSES: Readonly<Record<number, readonly [code: string, title: string]>> = {
  400: ['bad_request', 'Bad request'],
  401: ['unauthorized', 'Unauthorized'],
  403: ['forbidden', 'Forbidden'],
  404: ['not_found', 'Not found'],
  405: ['method_not_allowed', 'Method not allowed'],
  406: ['not_acceptable', 'Not acceptable'],
  408: ['request_timeout', 'Request timeout'],
  411: ['length_required', 'Length required'],
  413: ['payload_too_large', 'Request body too large'],
  414: ['uri_too_long', 'URI too long'],
  415: ['unsupported_media_type', 'Unsupported media type'],
  429: ['too_many_requests', 'Too many requests'],
  431: ['request_header_fields_too_large', 'Request header fields too large'],
  500: ['internal_error', 'Internal error'],
  503: ['service_unavailable', 'Service unavailable'],
};

/** The problem for a bare status: from the table, else a generic client error or an internal error. */
export function statusProblem(status: number): Mapped {
  const known = STATUSES[status];
  const [code, title] = known ?? (status >= 400 && status < 500 ? ['client_error', 'Client error'] : ['internal_error', 'Internal error']);
  return { status: known === undefined && (status < 400 || status >= 500) ? 500 : status, code, title, detail: undefined, retryAfterS: undefined };
}

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
    return { status: error.status, code: error.code, title: error.title, detail: error.detail, retryAfterS: error.retryAfterS, allow: error.allow, extensions: error.extensions };
  }
  const status = error instanceof HttpException ? error.getStatus() : statusOf(error);
  return statusProblem(status !== undefined && status >= 400 && status < 500 ? status : 500);
}

export function toProblem(mapped: Mapped, requestId: string): Problem {
  return {
    // first, so a member can never replace a standard one
    ...mapped.extensions,
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
  if (requestClassOf(request.url) === 'api') return false;
  if (/application\/(problem\+)?json/.test(accept)) return false;
  return request.headers['sec-fetch-mode'] === 'navigate' || acceptsHtml(accept);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * What a page adds for a code, given PUBLIC_URL. A login cookie lives on the host sign-in started
 * on, and the provider returns to PUBLIC_URL: a sign-in started on another name for the gateway
 * (127.0.0.1 for localhost) ends in login_state_mismatch, and only the URL itself tells the user why.
 */
const PAGE_HINTS: Readonly<Record<string, (canonicalUrl: string) => string>> = {
  login_state_mismatch: (url) =>
    `<p>Sign-in must start and end at the same address. Open <a href="${escapeHtml(url)}/">${escapeHtml(url)}/</a> in this browser (not another name or address for it) and sign in again.</p>`,
};

/** The HTML page for a navigation; `canonicalUrl` (PUBLIC_URL) lets it name the address to open. */
export function problemPage(problem: Problem, canonicalUrl?: string): string {
  const hint = canonicalUrl === undefined ? undefined : PAGE_HINTS[problem.code]?.(canonicalUrl);
  const detail = (problem.detail === undefined ? '' : `<p>${escapeHtml(problem.detail)}</p>`) + (hint ?? '');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${problem.status} ${escapeHtml(problem.title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}code{color:#555}</style></head>
<body><h1>${escapeHtml(problem.title)}</h1>${detail}
<p><a href="/auth/login">Sign in again</a> &middot; <a href="/">Home</a></p>
<p><small>Error <code>${escapeHtml(problem.code)}</code>, request <code>${escapeHtml(problem.instance)}</code></small></p>
</body></html>`;
}

function problemHeaders(mapped: Mapped, requestId: string, body: string): Record<string, string> {
  return {
    'content-type': 'application/problem+json',
    'content-length': String(Buffer.byteLength(body)),
    'x-request-id': requestId,
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-store',
    ...(mapped.retryAfterS === undefined ? {} : { 'retry-after': String(mapped.retryAfterS) }),
    ...(mapped.allow === undefined ? {} : { allow: mapped.allow.join(', ') }),
  };
}

/** For responses Fastify no longer manages (a hijacked proxy reply): same body, raw response. */
export function writeRawProblem(res: ServerResponse, requestId: string, error: unknown): void {
  const mapped = mapError(error);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(toProblem(mapped, requestId));
  for (const [name, value] of Object.entries(res.getHeaders())) if (!keepsOnProblem(name, value)) res.removeHeader(name);
  res.writeHead(mapped.status, problemHeaders(mapped, requestId, body));
  res.end(body);
}

/**
 * The problem as a complete HTTP/1.1 response, for a socket that no HTTP response object owns
 * (Node-level client errors, CONNECT, refused upgrade handshakes). The connection closes after it.
 */
export function rawProblemResponse(mapped: Mapped, requestId: string): string {
  const body = JSON.stringify(toProblem(mapped, requestId));
  const headers = Object.entries({ ...problemHeaders(mapped, requestId, body), connection: 'close' }).map(([name, value]) => `${name}: ${value}\r\n`);
  return `HTTP/1.1 ${mapped.status} ${STATUS_CODES[mapped.status] ?? 'Error'}\r\n${headers.join('')}\r\n${body}`;
}

/** How long a refused socket may take to flush its answer before it is destroyed. */
const REFUSAL_FLUSH_MS = 1_000;

/**
 * Answers a socket with a problem and closes it: end() so the answer is flushed, then destroy()
 * after a short delay in case the peer never reads. A peer that has already reset the connection is
 * expected here (it is why the socket is being refused), so its errors end the socket quietly.
 */
export function refuseSocket(socket: Duplex, mapped: Mapped, requestId: string): void {
  socket.on('error', () => socket.destroy());
  if (socket.destroyed) return;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const timer = setTimeout(() => socket.destroy(), REFUSAL_FLUSH_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.end(rawProblemResponse(mapped, requestId));
}

/** False for a header Node would refuse to write (ERR_INVALID_CHAR and the like). */
function isWritableHeader(name: string, value: unknown): boolean {
  const values: unknown[] = Array.isArray(value) ? value : [value];
  try {
    validateHeaderName(name);
    for (const one of values) {
      if (typeof one !== 'string' && typeof one !== 'number') return false;
      validateHeaderValue(name, String(one));
    }
    return true;
  } catch (error) {
    // Node's header validation errors: ERR_INVALID_CHAR, ERR_HTTP_INVALID_HEADER_VALUE, ERR_INVALID_HTTP_TOKEN
    if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' && error.code.startsWith('ERR_')) return false;
    throw error;
  }
}

/**
 * Whether a header set before the error stays on the problem response: a problem is not a redirect,
 * and a header that made the first write throw would make this one throw too (Fastify would then
 * fall back to its own `{"statusCode":500,...}` body).
 */
function keepsOnProblem(name: string, value: unknown): boolean {
  return name !== 'location' && isWritableHeader(name, value);
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
  for (const [name, value] of Object.entries(reply.getHeaders())) if (!keepsOnProblem(name, value)) reply.removeHeader(name);
  reply.status(mapped.status);
  // a problem is the gateway's own response wherever it is written (an /api refusal, a root 404)
  applySecurityHeaders(reply);
  if (mapped.retryAfterS !== undefined) reply.header('retry-after', String(mapped.retryAfterS));
  if (mapped.allow !== undefined) reply.header('allow', mapped.allow.join(', '));
  if (wantsHtml(request)) {
    void reply.type('text/html; charset=utf-8').send(problemPage(problem, request.server.canonicalUrl));
  } else {
    void reply.type('application/problem+json').send(JSON.stringify(problem));
  }
}
