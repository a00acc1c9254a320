import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { LoggerService } from '@nestjs/common';
import type { FastifyBaseLogger } from 'fastify';
import { levels, pino, stdSerializers, type Bindings, type ChildLoggerOptions, type DestinationStream, type Level, type Logger } from 'pino';
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

/**
 * Fastify's `childLoggerFactory`: each request's logger (`request.log`, with its reqId) becomes a pino
 * child only when it first writes a line at an enabled level. A pino child with redaction costs
 * about 5 µs to build, and at LOG_LEVEL=warn a proxied request that goes well writes nothing.
 * Requests of a route with its own level or serializers get their child at once.
 */
export function lazyRequestLogger(logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  if (options.level !== undefined || options.serializers !== undefined) return logger.child(bindings, options);
  return new LazyChildLogger(logger, bindings);
}

/** A request's logger until it logs: the line, and every later one, goes to the real child. */
class LazyChildLogger implements FastifyBaseLogger {
  private built: FastifyBaseLogger | undefined;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
  ) {}

  get level(): string {
    return (this.built ?? this.parent).level;
  }

  set level(level: string) {
    this.real().level = level;
  }

  fatal(...args: unknown[]): void {
    this.write('fatal', args);
  }
  error(...args: unknown[]): void {
    this.write('error', args);
  }
  warn(...args: unknown[]): void {
    this.write('warn', args);
  }
  info(...args: unknown[]): void {
    this.write('info', args);
  }
  debug(...args: unknown[]): void {
    this.write('debug', args);
  }
  trace(...args: unknown[]): void {
    this.write('trace', args);
  }
  silent(): void {
    // nothing is ever written at 'silent'
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.real().child(bindings, options);
  }

  isLevelEnabled(level: string): boolean {
    return logsAt(this.built ?? this.parent, level);
  }

  private write(level: Level, args: unknown[]): void {
    if (this.built === undefined && !logsAt(this.parent, level)) return;
    const real = this.real();
    Reflect.apply(real[level], real, args);
  }

  private real(): FastifyBaseLogger {
    this.built ??= this.parent.child(this.bindings);
    return this.built;
  }
}

/** Whether `logger` writes lines at `level` (pino's levels; an unknown one is taken to be written). */
export function logsAt(logger: FastifyBaseLogger, level: string): boolean {
  if (logger.level === 'silent') return false;
  const current = levels.values[logger.level];
  const wanted = levels.values[level];
  return current === undefined || wanted === undefined || current <= wanted;
}
