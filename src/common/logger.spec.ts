import { Writable } from 'node:stream';
import { jest } from '@jest/globals';
import { pino, type Logger } from 'pino';
import { lazyRequestLogger, logsAt } from './logger.js';

/** A pino logger at `level` whose lines land in `lines`, counting the children it builds. */
function capture(level: string): { logger: Logger; lines: Array<Record<string, unknown>>; children: () => number } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level, redact: { paths: ['*.accessToken'], censor: '[REDACTED]' } },
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        callback();
      },
    }),
  );
  const child = jest.spyOn(logger, 'child');
  return { logger, lines, children: () => child.mock.calls.length };
}

describe('lazyRequestLogger', () => {
  it('builds no child logger for a request that writes nothing at an enabled level', () => {
    const { logger, lines, children } = capture('warn');
    const log = lazyRequestLogger(logger, { reqId: 'r-1' }, {});
    log.info({ event: 'request' }, 'request');
    log.debug('detail');
    expect(children()).toBe(0);
    expect(lines).toEqual([]);
    expect(log.level).toBe('warn');
  });

  it("writes a request's lines through one child carrying its reqId, redacted as every line is", () => {
    const { logger, lines, children } = capture('warn');
    const log = lazyRequestLogger(logger, { reqId: 'r-2' }, {});
    log.warn({ event: 'upstream_failed', session: { accessToken: 'secret-token' } }, 'upstream request failed');
    log.error('second line');
    expect(children()).toBe(1);
    expect(lines).toMatchObject([
      { reqId: 'r-2', event: 'upstream_failed', session: { accessToken: '[REDACTED]' }, msg: 'upstream request failed' },
      { reqId: 'r-2', msg: 'second line' },
    ]);
  });

  it('builds the child at once for a route with its own level', () => {
    const { logger, children } = capture('warn');
    const log = lazyRequestLogger(logger, { reqId: 'r-3' }, { level: 'debug' });
    expect(children()).toBe(1);
    expect(log.level).toBe('debug');
  });
});

describe('logsAt', () => {
  it.each([
    ['warn', 'info', false],
    ['warn', 'warn', true],
    ['info', 'info', true],
    ['silent', 'fatal', false],
  ])('a logger at %s writes %s lines: %s', (level, line, expected) => {
    expect(logsAt(capture(level).logger, line)).toBe(expected);
  });
});
