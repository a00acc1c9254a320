/**
 * The floor for this stack in `npm run bench`: Fastify plus one http-proxy instance with the gateway's
 * options and agent, adding a fixed Bearer header. No Nest, no session, no CSRF check, no logging:
 * what the gateway costs beyond this is what its own features cost.
 *
 *   node --import tsx bench/bare-proxy.ts      (BENCH_PORT, BENCH_UPSTREAM_URL)
 */
import { Agent } from 'node:http';
import Fastify from 'fastify';
import httpProxy from 'http-proxy';

const port = Number(process.env['BENCH_PORT'] ?? '4200');
const target = process.env['BENCH_UPSTREAM_URL'] ?? 'http://127.0.0.1:4100';
// as long as the demo provider's RS256 access tokens (~750 bytes), so both proxies write the same bytes upstream
const BEARER = `Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCJ9.${'A'.repeat(420)}.${'B'.repeat(342)}`;

// http-proxy as it comes (all its passes, url.parse()d path) with the agent settings of src/proxy/proxy.service.ts:
// the gateway's own work and its corrections to http-proxy (raw path, own response head) are what differs
const proxy = httpProxy.createProxyServer({ xfwd: false, prependPath: true, changeOrigin: true });
const agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' });

const app = Fastify({ logger: false, bodyLimit: 64 * 1024 });
app.get('/healthz', (_request, reply) => void reply.send('ok'));
await app.register((scope, _options, done) => {
  // bodies stream to the upstream unread, as on the gateway's /api/*
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser('*', (_request, _payload, next) => next(null));
  scope.all('/api/*', (request, reply) => {
    const raw = request.raw;
    raw.headers.authorization = BEARER;
    delete raw.headers.cookie;
    reply.hijack();
    proxy.web(raw, reply.raw, { target, agent }, () => {
      if (!reply.raw.headersSent) reply.raw.writeHead(502, { 'content-length': '0' });
      reply.raw.end();
    });
  });
  done();
});
await app.listen({ port, host: '127.0.0.1' });
process.stdout.write(`${JSON.stringify({ event: 'listening', port })}\n`);
process.on('SIGTERM', () => {
  agent.destroy();
  void app.close().then(() => process.exit(0));
});
