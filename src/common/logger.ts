import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { LoggerService } from '@nestjs/common';
import { pino, stdSerializers, type DestinationStream, type Logger } from 'pino';
import type { Config } from '../config/config.js';

/** Header paths and token fields that must never reach a log line, wherever they are nested. */
const REDACT_PATHS = [
  'req.headers.cookie',
  'req.headers.authorization',
  'res.headers["set-cookie"]',
  'headers.cookie',
  'headers.authorization',
  '*.access_token',
  '*.refresh_token',
  '*.id_token',
  '*.client_secret',
  '*.client_assertion',
  '*.code_verifier',
  '*.logout_token',
  'accessToken',
  'refreshToken',
  'idToken',
  '*.accessToken',
  '*.refreshToken',
  '*.idToken',
];

/** Query parameters that carry secrets or one-time values (authorization code, state, logout sid). */
const SECRET_QUERY_PARAMS = ['code', 'state', 'session_state', 'id_token_hint', 'sid', 'logout_token', 'token', 'access_token'];

/** Removes secret query values from a URL before it is logged. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  let changed = false;
  for (const name of SECRET_QUERY_PARAMS) {
    if (params.has(name)) {
      params.set(name, '[REDACTED]');
      changed = true;
    }
  }
  return changed ? `${url.slice(0, q)}?${params.toString()}` : url;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** Keeps a well-formed inbound X-Request-Id so traces join up; anything else gets a fresh UUID. */
export function requestIdFor(req: IncomingMessage): string {
  const inbound = req.headers['x-request-id'];
  return typeof inbound === 'string' && REQUEST_ID.test(inbound) ? inbound : randomUUID();
}

export function createLogger(config: Config, destination?: DestinationStream): Logger {
  const options = {
    level: config.log.level,
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    // pid: with WORKERS > 1 it tells which worker (or the primary) wrote the line
    base: { service: 'bff-gateway', pid: process.pid },
    serializers: { err: stdSerializers.err },
  };
  if (destination !== undefined) return pino(options, destination);
  if (config.log.format === 'pretty') {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' } } });
  }
  return pino(options);
}

/**
 * Nest's own messages (route mapping, lifecycle) go through pino too, so every line is JSON. A
 * service's `Logger` may pass an object `{ event, msg, ...fields }` to log fields, as pino does.
 */
export class NestPinoLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, context?: string): void {
    this.logger.debug(...entry(message, { context }));
  }
  error(message: unknown, trace?: string, context?: string): void {
    this.logger.error(...entry(message, { context, trace }));
  }
  warn(message: unknown, context?: string): void {
    this.logger.warn(...entry(message, { context }));
  }
  debug(message: unknown, context?: string): void {
    this.logger.debug(...entry(message, { context }));
  }
  verbose(message: unknown, context?: string): void {
    this.logger.trace(...entry(message, { context }));
  }
}

function entry(message: unknown, base: Record<string, unknown>): [Record<string, unknown>, string] {
  if (typeof message !== 'object' || message === null) return [base, String(message)];
  const fields: Record<string, unknown> = { ...base, ...message };
  const msg = fields['msg'];
  delete fields['msg'];
  return [fields, typeof msg === 'string' ? msg : ''];
}
