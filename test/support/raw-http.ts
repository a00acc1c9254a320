import { request } from 'node:http';
import { connect } from 'node:net';
import type { BrowserClient } from './browser.js';

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/**
 * A request with the path exactly as given: fetch() resolves dot segments before sending, which
 * would hide what the gateway does with `/api/../admin`.
 */
export async function rawRequest(baseUrl: string, path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<RawResponse> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: options.method ?? 'GET', headers: options.headers ?? {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The Cookie header a browser would send to the gateway. */
export async function cookieHeader(browser: BrowserClient, url: string): Promise<string> {
  return (await browser.cookies(url)).map((c) => `${c.name}=${c.value}`).join('; ');
}

/** The bytes of a WebSocket handshake request for `path` on `url`'s host, with extra headers. */
export function handshake(url: URL, path: string, headers: Record<string, string>): string {
  const lines = [`GET ${path} HTTP/1.1`, `Host: ${url.host}`, 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/**
 * Sends an HTTP/1.1 upgrade handshake on a raw socket; resolves with the status line and, on 101,
 * whatever the upstream echoes back after `payload` is written.
 */
export async function upgradeAndEcho(baseUrl: string, path: string, headers: Record<string, string>, payload: string): Promise<{ statusLine: string; echoed: string }> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    let received = '';
    let statusLine: string | undefined;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer to the upgrade; got ${JSON.stringify(received)}`));
    }, 10_000);
    const finish = (echoed: string): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ statusLine: statusLine ?? '', echoed });
    };
    socket.on('connect', () => socket.write(handshake(url, path, headers)));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      const end = received.indexOf('\r\n\r\n');
      if (statusLine === undefined && end !== -1) {
        statusLine = received.slice(0, received.indexOf('\r\n'));
        received = received.slice(end + 4);
        if (!statusLine.includes(' 101 ')) finish('');
        else socket.write(payload);
      }
      if (statusLine !== undefined && received.length >= payload.length) finish(received);
    });
    socket.on('error', reject);
    socket.on('close', () => finish(received));
  });
}

export interface OpenUpgrade {
  /** The status line of the answer to the handshake. */
  readonly statusLine: string;
  /** Resolves when the connection closes (either side). */
  readonly closed: Promise<void>;
  readonly isClosed: () => boolean;
  close(): void;
}

/**
 * An HTTP/1.1 WebSocket handshake on a raw socket (Node 20 has no WebSocket client) that stays
 * open after a 101, for tests of who closes it and when.
 */
export async function openUpgrade(baseUrl: string, path: string, headers: Record<string, string>): Promise<OpenUpgrade> {
  const url = new URL(baseUrl);
  const socket = connect(Number(url.port), url.hostname);
  let closed = false;
  const closedPromise = new Promise<void>((resolve) =>
    socket.once('close', () => {
      closed = true;
      resolve();
    }),
  );
  // a reset by the gateway is one way of closing; the test looks at 'close'
  socket.on('error', () => undefined);
  const statusLine = await new Promise<string>((resolve, reject) => {
    let received = '';
    const timer = setTimeout(() => reject(new Error(`no answer to the upgrade; got ${JSON.stringify(received)}`)), 10_000);
    const onData = (chunk: Buffer): void => {
      received += chunk.toString('latin1');
      if (!received.includes('\r\n\r\n')) return;
      clearTimeout(timer);
      socket.off('data', onData);
      resolve(received.slice(0, received.indexOf('\r\n')));
    };
    socket.on('data', onData);
    void closedPromise.then(() => {
      clearTimeout(timer);
      resolve(received.slice(0, Math.max(received.indexOf('\r\n'), 0)));
    });
    socket.on('connect', () => {
      const lines = [`GET ${path} HTTP/1.1`, `Host: ${url.host}`, 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='];
      for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
  });
  // keep reading so the socket sees the gateway's FIN
  socket.resume();
  return { statusLine, closed: closedPromise, isClosed: () => closed, close: () => socket.destroy() };
}
