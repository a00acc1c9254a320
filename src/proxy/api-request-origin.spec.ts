import type { IncomingHttpHeaders } from 'node:http';
import { mapError } from '../common/problem.js';
import { checkApiOrigin, type ApiRequestKind } from './api-request-origin.js';

const ORIGIN = 'https://app.example';
const EVENT_STREAM = { accept: 'text/event-stream' };

/** The problem code the origin step answers with, or 'pass'. */
function verdict(kind: ApiRequestKind, method: string, headers: IncomingHttpHeaders): string {
  try {
    checkApiOrigin(kind, method, headers, 'x-csrf', ORIGIN);
    return 'pass';
  } catch (error) {
    return mapError(error).code;
  }
}

describe('checkApiOrigin', () => {
  describe('HTTP requests', () => {
    it.each([
      ['a fetch with X-CSRF: 1, whatever its origin', 'POST', { 'x-csrf': '1', origin: 'https://evil.example' }, 'pass'],
      ['a fetch without the header, even from the own origin', 'POST', { origin: ORIGIN }, 'csrf_header_missing'],
      ['a fetch with another header value', 'GET', { 'x-csrf': 'true', origin: ORIGIN }, 'csrf_header_missing'],
      ['a same-origin EventSource (Origin)', 'GET', { ...EVENT_STREAM, origin: ORIGIN }, 'pass'],
      ['a same-origin EventSource (Fetch Metadata only)', 'GET', { ...EVENT_STREAM, 'sec-fetch-site': 'same-origin' }, 'pass'],
      ['a cross-origin EventSource', 'GET', { ...EVENT_STREAM, origin: 'https://evil.example' }, 'cross_origin_request'],
      ['a same-site but not same-origin EventSource', 'GET', { ...EVENT_STREAM, 'sec-fetch-site': 'same-site' }, 'cross_origin_request'],
      ['an EventSource that says nothing about its origin', 'GET', EVENT_STREAM, 'cross_origin_request'],
      ['a POST asking for an event stream without the header', 'POST', { ...EVENT_STREAM, origin: ORIGIN }, 'csrf_header_missing'],
    ])('%s', (_what, method, headers, expected) => {
      expect(verdict('http', method, headers)).toBe(expected);
    });
  });

  describe('WebSocket handshakes', () => {
    it.each([
      ['from the own origin', { origin: ORIGIN }, 'pass'],
      ['with Fetch Metadata only, same-origin', { 'sec-fetch-site': 'same-origin' }, 'pass'],
      ['from another origin', { origin: 'https://evil.example' }, 'cross_origin_request'],
      ['from another origin, even with X-CSRF: 1', { origin: 'https://evil.example', 'x-csrf': '1' }, 'cross_origin_request'],
      ['with X-CSRF: 1 and no origin at all', { 'x-csrf': '1' }, 'cross_origin_request'],
      ['with no origin at all', {}, 'cross_origin_request'],
    ])('%s', (_what, headers, expected) => {
      expect(verdict('websocket', 'GET', headers)).toBe(expected);
    });
  });
});
