/**
 * The upstream for `npm run bench`: the cheapest HTTP server Node has, so the measurements are about
 * the proxies in front of it. `/api/*` answers 401 without a Bearer token (or a DPoP one with its
 * proof, unverified: the cost measured is the gateway's), which makes wrk's "Non-2xx" count prove
 * that every proxied request carried one.
 *
 *   node --import tsx bench/tiny-upstream.ts      (BENCH_PORT, default 4100; BENCH_HOST 127.0.0.1)
 */
import { createServer } from 'node:http';

const BODY = Buffer.from(JSON.stringify({ ok: true, message: 'hello from the tiny upstream' }));

const port = Number(process.env['BENCH_PORT'] ?? '4100');
const host = process.env['BENCH_HOST'] ?? '127.0.0.1';

/** Authorization values already logged: one line per client (direct, bare proxy, gateway). */
const logged = new Set<string>();

const server = createServer((req, res) => {
  // drain any body so keep-alive connections stay usable
  req.resume();
  const authorization = req.headers.authorization ?? '';
  if (!logged.has(authorization) && logged.size < 8 && req.url !== '/healthz') {
    // once per client, into the log: what each proxy forwards (header sizes differ between them and cost CPU)
    logged.add(authorization);
    const bytes = req.rawHeaders.reduce((sum, part) => sum + part.length + 2, 0);
    process.stdout.write(`${JSON.stringify({ event: 'first_request', url: req.url, headerBytes: bytes, headers: req.headers })}\n`);
  }
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' }).end('ok');
    return;
  }
  if (!authorization.startsWith('Bearer ') && !(authorization.startsWith('DPoP ') && req.headers.dpop !== undefined)) {
    res.writeHead(401, { 'content-length': '0' }).end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(BODY.length) }).end(BODY);
});
// longer than any pause between wrk runs: a keep-alive socket the proxy's agent reuses must not be closed under it
server.keepAliveTimeout = 60_000;
server.listen(port, host, () => process.stdout.write(`${JSON.stringify({ event: 'listening', port })}\n`));
// logged on SIGTERM: connections far below requests show that the proxies' agents keep sockets alive
let connections = 0;
let requests = 0;
server.on('connection', () => connections++);
server.on('request', () => requests++);
process.on('SIGTERM', () => {
  process.stdout.write(`${JSON.stringify({ event: 'stopped', connections, requests })}\n`);
  server.close(() => process.exit(0));
});
