import type { IncomingHttpHeaders } from 'node:http';

/** RFC 9110 §7.6.1 hop-by-hop headers, plus proxy credentials that belong to this hop only. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'upgrade'];

export interface ForwardContext {
  readonly accessToken: string;
  /** The client address as the gateway determined it (trusted proxies considered). */
  readonly clientIp: string;
  /** PUBLIC_URL's scheme and host: what the browser used. */
  readonly proto: string;
  readonly host: string;
  readonly requestId: string;
  /** WebSocket handshakes keep Connection/Upgrade: they are the point of the request. */
  readonly upgrade: boolean;
}

/**
 * Rewrites a request's headers in place for the upstream: the session's Bearer token replaces any
 * Authorization the browser sent, the gateway's cookies never leave it, hop-by-hop headers (and any
 * header named in Connection) are dropped, and X-Forwarded-* describe the browser's request.
 */
export function applyForwardingPolicy(headers: IncomingHttpHeaders, context: ForwardContext): void {
  if (!context.upgrade) {
    const named = headers.connection;
    if (typeof named === 'string') {
      for (const name of named.split(',')) {
        const header = name.trim().toLowerCase();
        if (header !== '') delete headers[header];
      }
    }
    for (const name of HOP_BY_HOP) delete headers[name];
  }
  delete headers.cookie;
  delete headers.forwarded;
  headers.authorization = `Bearer ${context.accessToken}`;
  const priorFor = headers['x-forwarded-for'];
  headers['x-forwarded-for'] = typeof priorFor === 'string' && priorFor !== '' ? `${priorFor}, ${context.clientIp}` : context.clientIp;
  headers['x-forwarded-proto'] = context.proto;
  headers['x-forwarded-host'] = context.host;
  headers['x-request-id'] = context.requestId;
}
