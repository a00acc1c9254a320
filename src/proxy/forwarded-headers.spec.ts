import type { IncomingHttpHeaders } from 'node:http';
import { applyForwardingPolicy, type ForwardContext } from './forwarded-headers.js';

const context: ForwardContext = { accessToken: 'AT', clientIp: '10.0.0.7', proto: 'https', host: 'app.example.com', requestId: 'req-1', upgrade: false };

describe('applyForwardingPolicy', () => {
  it('replaces a browser-supplied Authorization with the session\'s Bearer token and drops cookies', () => {
    const headers: IncomingHttpHeaders = { authorization: 'Bearer forged', cookie: '__Host-bff-session=x; other=y', accept: 'application/json' };
    applyForwardingPolicy(headers, context);
    expect(headers.authorization).toBe('Bearer AT');
    expect(headers.cookie).toBeUndefined();
    expect(headers.accept).toBe('application/json');
  });

  it('drops hop-by-hop headers and the ones Connection names', () => {
    const headers: IncomingHttpHeaders = { connection: 'keep-alive, x-secret-hop', 'keep-alive': 'timeout=5', 'x-secret-hop': '1', te: 'trailers', 'proxy-authorization': 'Basic x', upgrade: 'h2c' };
    applyForwardingPolicy(headers, context);
    expect(Object.keys(headers).sort()).toEqual(['authorization', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-request-id']);
  });

  it('keeps Connection and Upgrade on a WebSocket handshake', () => {
    const headers: IncomingHttpHeaders = { connection: 'Upgrade', upgrade: 'websocket' };
    applyForwardingPolicy(headers, { ...context, upgrade: true });
    expect(headers.connection).toBe('Upgrade');
    expect(headers.upgrade).toBe('websocket');
  });

  it('appends the client to X-Forwarded-For and sets proto, host and request id', () => {
    const headers: IncomingHttpHeaders = { 'x-forwarded-for': '203.0.113.9' };
    applyForwardingPolicy(headers, context);
    expect(headers['x-forwarded-for']).toBe('203.0.113.9, 10.0.0.7');
    expect(headers['x-forwarded-proto']).toBe('https');
    expect(headers['x-forwarded-host']).toBe('app.example.com');
    expect(headers['x-request-id']).toBe('req-1');
  });
});
