import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly bodyBytes: number;
  readonly bodySha256: string;
}

export interface TestUpstream {
  readonly url: string;
  readonly seen: SeenRequest[];
  /** Upgraded (WebSocket) connections still open on the upstream's side. */
  openUpgrades(): number;
  close(): Promise<void>;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function closer(server: Server): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
}

/**
 * Real servers that behave in one particular way each, selected by path under the prefix:
 *   .../hang       never answers (the gateway's timeout fires)
 *   .../reset      destroys the socket without a response
 *   .../sse        streams server-sent events, one every 20 ms, 5 in all
 *   .../download?bytes=N   streams N bytes (chunked)
 *   .../status/NNN answers NNN with a JSON body and a custom header
 *   anything else  echoes method, url, headers and a hash of the body
 * WebSocket-style upgrades are answered with 101 and then echo raw bytes back.
 */
export async function startBehaviourUpstream(): Promise<TestUpstream> {
  const seen: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://upstream');
    if (url.pathname.endsWith('/hang')) return; // keeps the socket open until close()
    if (url.pathname.endsWith('/reset')) {
      req.socket.destroy();
      return;
    }
    if (url.pathname.endsWith('/sse')) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      let n = 0;
      const timer = setInterval(() => {
        res.write(`data: event ${n}\n\n`);
        if (++n === 5) {
          clearInterval(timer);
          res.end();
        }
      }, 20);
      return;
    }
    if (url.pathname.endsWith('/download')) {
      let remaining = Number(url.searchParams.get('bytes') ?? '0');
      const chunk = Buffer.alloc(64 * 1024, 7);
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const pump = (): void => {
        while (remaining > 0) {
          const part = remaining >= chunk.length ? chunk : chunk.subarray(0, remaining);
          remaining -= part.length;
          if (!res.write(part)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
      return;
    }
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    req.on('end', () => {
      const entry = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, bodyBytes: bytes, bodySha256: hash.digest('hex') };
      seen.push(entry);
      const status = /\/status\/(\d{3})$/.exec(url.pathname)?.[1];
      const body = JSON.stringify(entry);
      res.writeHead(status === undefined ? 200 : Number(status), { 'content-type': 'application/json', 'x-upstream': 'behaviour', 'www-authenticate': status === '401' ? 'Bearer error="invalid_token"' : 'none' });
      res.end(body);
    });
  });
  let openUpgrades = 0;
  server.on('upgrade', (req, socket) => {
    openUpgrades++;
    socket.once('close', () => openUpgrades--);
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, bodyBytes: 0, bodySha256: '' });
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    socket.pipe(socket);
  });
  return { url: await listen(server), seen, openUpgrades: () => openUpgrades, close: closer(server) };
}
