import type { IncomingHttpHeaders } from 'node:http';

/**
 * Removed from every forwarded request, HTTP and WebSocket alike: RFC 9110 §7.6.1 hop-by-hop headers
 * (Connection and Upgrade are handled apart: a handshake needs them), proxy credentials that belong
 * to this hop, the gateway's cookies, and headers through which a client could claim an address, a
 * path or a trace the gateway has not checked (some servers and frameworks believe them).
 */
const DROPPED = [
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'cookie',
  // a proof is the gateway's to make (OIDC_DPOP), never the browser's to pass along
  'dpop',
  'forwarded',
  'x-real-ip',
  'x-original-url',
  'x-rewrite-url',
  'x-forwarded-prefix',
  'x-forwarded-port',
  'x-forwarded-ssl',
  // W3C trace context and baggage: untrusted until tracing decides to continue inbound traces
  'traceparent',
  'tracestate',
  'baggage',
];

export interface ForwardContext {
  /** The session's access token; undefined sends no Authorization at all (the SPA dev server). */
  readonly accessToken: string | undefined;
  /** OIDC_DPOP: the token is DPoP-bound and this proof goes with it (RFC 9449 §7.1). */
  readonly dpopProof?: string | undefined;
  /** The socket peer's address. */
  readonly peerAddress: string;
  /** Whether the peer is a proxy listed in TRUST_PROXY: only then is its X-Forwarded-For kept. */
  readonly peerTrusted: boolean;
  /** PUBLIC_URL's scheme and host: what the browser used. */
  readonly proto: string;
  readonly host: string;
  /** The request id (an inbound one only when it passed validation). */
  readonly requestId: string;
  /** WebSocket handshakes keep Connection/Upgrade: they are the point of the request. */
  readonly upgrade: boolean;
}

/**
 * The one request-header policy, for /api and the SPA dev server, HTTP and WebSocket: rewrites the
 * headers in place so that two requests differing only in being a handshake reach the upstream with
 * the same headers apart from Connection, Upgrade and Sec-WebSocket-*.
 */
export function applyForwardingPolicy(headers: IncomingHttpHeaders, context: ForwardContext): void {
  const named = headers.connection;
  if (typeof named === 'string') {
    for (const name of named.split(',')) {
      const header = name.trim().toLowerCase();
      if (header !== '' && !(context.upgrade && header === 'upgrade')) delete headers[header];
    }
  }
  if (!context.upgrade) {
    if (named !== undefined) delete headers.connection;
    if (headers.upgrade !== undefined) delete headers.upgrade;
  }
  // a delete of a header the request lacks is still a slow runtime call: look first
  for (const name of DROPPED) if (headers[name] !== undefined) delete headers[name];
  if (context.accessToken === undefined) delete headers.authorization;
  else if (context.dpopProof === undefined) headers.authorization = `Bearer ${context.accessToken}`;
  else {
    headers.authorization = `DPoP ${context.accessToken}`;
    headers.dpop = context.dpopProof;
  }
  const priorFor = headers['x-forwarded-for'];
  // without a trusted proxy in front, an inbound X-Forwarded-For is the client's claim, not a fact
  headers['x-forwarded-for'] = context.peerTrusted && typeof priorFor === 'string' && priorFor !== '' ? `${priorFor}, ${context.peerAddress}` : context.peerAddress;
  headers['x-forwarded-proto'] = context.proto;
  headers['x-forwarded-host'] = context.host;
  headers['x-request-id'] = context.requestId;
}
