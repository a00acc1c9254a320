import type { IncomingHttpHeaders } from 'node:http';
import { applyForwardingPolicy, type ForwardContext } from './forwarded-headers.js';

const context: ForwardContext = { accessToken: 'AT', peerAddress: '10.0.0.7', peerTrusted: false, proto: 'https', host: 'app.example.com', requestId: 'req-1', upgrade: false };

const FORGED: IncomingHttpHeaders = {
  'proxy-authorization': 'Basic c2VjcmV0',
  forwarded: 'for=203.0.113.9',
  'x-real-ip': '203.0.113.9',
  'x-original-url': '/admin',
  'x-rewrite-url': '/admin',
  'x-forwarded-prefix': '/admin',
  'x-forwarded-port': '1',
  'x-forwarded-ssl': 'on',
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  tracestate: 'vendor=x',
  baggage: 'userId=alice',
  'x-forwarded-for': '203.0.113.9',
  'x-forwarded-host': 'evil.example',
  'x-forwarded-proto': 'http',
  'x-request-id': 'ab"c',
};

describe('applyForwardingPolicy', () => {
  it('replaces a browser-supplied Authorization with the session\'s Bearer token and drops cookies', () => {
    const headers: IncomingHttpHeaders = { authorization: 'Bearer forged', cookie: '__Host-bff-session=x; other=y', accept: 'application/json' };
    applyForwardingPolicy(headers, context);
    expect(headers.authorization).toBe('Bearer AT');
    expect(headers.cookie).toBeUndefined();
    expect(headers.accept).toBe('application/json');
  });

  it('sends no Authorization at all without an access token (the SPA dev server)', () => {
    const headers: IncomingHttpHeaders = { authorization: 'Bearer forged' };
    applyForwardingPolicy(headers, { ...context, accessToken: undefined });
    expect(headers.authorization).toBeUndefined();
  });

  it('drops a DPoP proof the browser sends: proofs are the gateway\'s to make', () => {
    const headers: IncomingHttpHeaders = { dpop: 'eyJ.browser.proof' };
    applyForwardingPolicy(headers, context);
    expect(headers.dpop).toBeUndefined();
    expect(headers.authorization).toBe('Bearer AT');
  });

  it('sends a DPoP-bound token under the DPoP scheme with the gateway\'s proof (OIDC_DPOP)', () => {
    const headers: IncomingHttpHeaders = { authorization: 'Bearer forged', dpop: 'eyJ.browser.proof' };
    applyForwardingPolicy(headers, { ...context, dpopProof: 'eyJ.gateway.proof' });
    expect(headers.authorization).toBe('DPoP AT');
    expect(headers.dpop).toBe('eyJ.gateway.proof');
  });

  it('drops hop-by-hop headers and the ones Connection names', () => {
    const headers: IncomingHttpHeaders = { connection: 'keep-alive, x-secret-hop', 'keep-alive': 'timeout=5', 'x-secret-hop': '1', te: 'trailers', trailer: 'x', 'proxy-authorization': 'Basic x', 'proxy-connection': 'keep-alive', upgrade: 'h2c' };
    applyForwardingPolicy(headers, context);
    expect(Object.keys(headers).sort()).toEqual(['authorization', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-request-id']);
  });

  it('drops forged forwarding, rewrite and trace headers and sets its own', () => {
    const headers: IncomingHttpHeaders = { ...FORGED };
    applyForwardingPolicy(headers, context);
    expect(headers).toEqual({ authorization: 'Bearer AT', 'x-forwarded-for': '10.0.0.7', 'x-forwarded-host': 'app.example.com', 'x-forwarded-proto': 'https', 'x-request-id': 'req-1' });
  });

  it('keeps Connection and Upgrade on a WebSocket handshake, and otherwise gives it the very same headers', () => {
    const http: IncomingHttpHeaders = { ...FORGED, connection: 'keep-alive, x-secret-hop', 'x-secret-hop': '1', accept: '*/*' };
    const ws: IncomingHttpHeaders = { ...FORGED, connection: 'keep-alive, Upgrade, x-secret-hop', upgrade: 'websocket', 'x-secret-hop': '1', accept: '*/*', 'sec-websocket-key': 'k' };
    applyForwardingPolicy(http, context);
    applyForwardingPolicy(ws, { ...context, upgrade: true });
    expect(ws.connection).toBe('keep-alive, Upgrade, x-secret-hop');
    expect(ws.upgrade).toBe('websocket');
    const { connection: _c, upgrade: _u, 'sec-websocket-key': _k, ...rest } = ws;
    expect(rest).toEqual(http);
  });

  it('keeps the inbound X-Forwarded-For of a trusted proxy and appends that proxy', () => {
    const headers: IncomingHttpHeaders = { 'x-forwarded-for': '203.0.113.9' };
    applyForwardingPolicy(headers, { ...context, peerTrusted: true });
    expect(headers['x-forwarded-for']).toBe('203.0.113.9, 10.0.0.7');
  });

  it('replaces the X-Forwarded-For of an untrusted peer with the peer', () => {
    const headers: IncomingHttpHeaders = { 'x-forwarded-for': '203.0.113.9' };
    applyForwardingPolicy(headers, context);
    expect(headers['x-forwarded-for']).toBe('10.0.0.7');
  });
});
