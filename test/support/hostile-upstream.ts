import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';

export interface HostileSeen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly upgrade: boolean;
}

/** What the upstream answers with on /cookies (and on every 101). */
export const HOSTILE_SET_COOKIES = [
  '__Host-bff-session=planted; Path=/; Secure; HttpOnly',
  'bff-session=planted; Path=/',
  '__Secure-bff-session=planted; Path=/; Secure',
  '__HOST-BFF-SESSION=planted; Path=/; Secure',
  '__Host-bff-session; Path=/; Secure',
  'theme=dark; Path=/',
];

export interface HostileUpstream {
  readonly url: string;
  readonly seen: HostileSeen[];
  /** TCP connections accepted and closed so far (each proxied stream uses one while it lasts). */
  connections(): { opened: number; closed: number };
  /** Requests met with a reset because they came on a connection /stale had marked. */
  staleResets(): number;
  /** Streams started on /stream and the ones whose connection has closed since. */
  streams(): { started: number; closed: number };
  /** Resolves once `count` requests (or handshakes) are held on /hold or /ws-hold in all. */
  held(count: number): Promise<void>;
  /** Lets every request and handshake held so far go on (later ones are held again). */
  release(): void;
  close(): Promise<void>;
}

/**
 * A real upstream that misbehaves the way a faulty or compromised API would, selected by the last
 * path segment:
 *   .../stream    200 and one chunk, then never ends (an EventSource or a long download)
 *   .../hold      waits for release(), then 200 (a barrier: the test decides when the answer comes)
 *   .../die       promises 100 bytes, sends 7, then drops the connection
 *   .../cookies   Set-Cookie for the gateway's own names and a foreign one, hop-by-hop headers, Location
 *   .../bad-status  a status line Node parses but refuses to write back (`099`)
 *   .../stale   200 on a kept-alive connection, then resets that connection when the next request
 *               arrives on it (a keep-alive close racing the gateway's reuse, made deterministic)
 *   anything else echoes method, url and headers as JSON
 * Upgrades on .../ws-hold wait for release(); every upgrade is answered 101 with the same cookies and
 * then echoes bytes back.
 */
export async function startHostileUpstream(): Promise<HostileUpstream> {
  const seen: HostileSeen[] = [];
  const counts = { opened: 0, closed: 0, streamsStarted: 0, streamsClosed: 0, held: 0, staleResets: 0 };
  const staleSockets = new WeakSet<Socket>();
  let waiters: Array<{ count: number; resolve: () => void }> = [];
  let releases: Array<() => void> = [];
  const sockets = new Set<Socket>();

  const hold = (go: () => void): void => {
    counts.held++;
    releases.push(go);
    waiters = waiters.filter((w) => {
      if (counts.held < w.count) return true;
      w.resolve();
      return false;
    });
  };

  const server: Server = createServer((req, res) => {
    if (staleSockets.has(req.socket)) {
      counts.staleResets++;
      req.socket.resetAndDestroy();
      return;
    }
    const last = new URL(req.url ?? '/', 'http://upstream').pathname.split('/').at(-1);
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, upgrade: false });
    if (last === 'stale') {
      staleSockets.add(req.socket);
      res.end('stale next time');
      return;
    }
    if (last === 'stream') {
      counts.streamsStarted++;
      req.socket.once('close', () => counts.streamsClosed++);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: first\n\n');
      return;
    }
    if (last === 'hold') {
      hold(() => res.end('released'));
      return;
    }
    if (last === 'die') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '100' });
      res.write('7 bytes', () => req.socket.destroy());
      return;
    }
    if (last === 'bad-status') {
      req.socket.end('HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\nok');
      return;
    }
    if (last === 'cookies') {
      res.writeHead(302, {
        'set-cookie': HOSTILE_SET_COOKIES,
        location: 'https://elsewhere.example/landing?x=%2F',
        connection: 'x-hop-secret',
        'x-hop-secret': 'must not pass',
        'keep-alive': 'timeout=77, max=3',
        'proxy-authenticate': 'Basic realm="upstream"',
        trailer: 'x-checksum',
        'x-kept': 'yes',
      });
      res.end();
      return;
    }
    const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  });
  server.on('connection', (socket: Socket) => {
    counts.opened++;
    sockets.add(socket);
    socket.once('close', () => {
      counts.closed++;
      sockets.delete(socket);
    });
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => undefined);
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, upgrade: true });
    const answer = (): void => {
      if (socket.destroyed) return;
      const cookies = HOSTILE_SET_COOKIES.map((c) => `Set-Cookie: ${c}\r\n`).join('');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${cookies}X-Kept: yes\r\n\r\n`);
      socket.pipe(socket);
    };
    if ((req.url ?? '').split('?')[0]?.endsWith('/ws-hold')) hold(answer);
    else answer();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    seen,
    connections: () => ({ opened: counts.opened, closed: counts.closed }),
    streams: () => ({ started: counts.streamsStarted, closed: counts.streamsClosed }),
    staleResets: () => counts.staleResets,
    held: (count) =>
      new Promise((resolve) => {
        if (counts.held >= count) resolve();
        else waiters.push({ count, resolve });
      }),
    release() {
      const pending = releases;
      releases = [];
      for (const go of pending) go();
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
