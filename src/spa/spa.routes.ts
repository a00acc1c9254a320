import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { basename, join, relative, resolve, sep } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import { Inject, Injectable } from '@nestjs/common';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requestIdFor } from '../common/logger.js';
import { sendProblem } from '../common/problem.js';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { ProxyService, type Upstream } from '../proxy/proxy.service.js';
import { decodeSpaPath, isDotfilePath, isGatewayPath, isHashedAsset, isNavigation, isUnderPrefix } from './spa-paths.js';
import { InvalidSpaPathError, SpaDevServerUnavailableError } from './spa.errors.js';

/**
 * The bundled sample SPA (demo/spa), found relative to this module so that it resolves from
 * src/spa under Jest and tsx and from dist/spa in a production install alike.
 */
export const SAMPLE_SPA_DIR = fileURLToPath(new URL('../../demo/spa/', import.meta.url));

const CACHE_IMMUTABLE = 'public, max-age=31536000, immutable';
// Anything without a content hash may change under the same name: revalidate (ETag) on every use.
const CACHE_REVALIDATE = 'no-cache';
// The sample SPA has no inline script or style and talks only to its own origin, so it runs under
// the strictest policy; it shows SPA authors that a BFF front end needs nothing looser.
const SAMPLE_SPA_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/**
 * Everything outside /auth, /api and the ops endpoints belongs to the single-page app: static files
 * from SPA_DIR (or the bundled sample SPA), or a frontend dev server at SPA_UPSTREAM_URL. Registered
 * on Fastify directly, like the /api proxy: a catch-all route, so Nest keeps its own not-found
 * handler (404 problem+json) for the gateway's paths.
 */
@Injectable()
export class SpaRoutes {
  /** The frontend dev server, through the same forwarding (and header policies) as /api, without credentials. */
  private readonly devServer: Upstream | undefined;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly proxy: ProxyService,
  ) {
    const target = config.spa.upstreamUrl;
    // its cookies are dropped like any upstream's: a dev server has no business setting the gateway's
    this.devServer = target === undefined ? undefined : proxy.createUpstream('spa', target, false, (cause) => new SpaDevServerUnavailableError(cause));
  }

  async register(fastify: FastifyInstance): Promise<void> {
    const upstreamUrl = this.config.spa.upstreamUrl;
    if (this.devServer !== undefined && upstreamUrl !== undefined) {
      // the origin only: a URL may carry credentials
      fastify.log.info({ event: 'spa_source', source: 'dev_server', url: new URL(upstreamUrl).origin }, 'serving the SPA from a frontend dev server (SPA_UPSTREAM_URL)');
      await this.registerDevServer(fastify, this.devServer);
      return;
    }
    const sample = this.config.spa.dir === undefined;
    const root = sample ? SAMPLE_SPA_DIR : resolve(this.config.spa.dir ?? '.');
    // at info: a typo in SPA_DIR's name would otherwise serve the sample app without a word
    fastify.log.info({ event: 'spa_source', source: sample ? 'sample' : 'dir', dir: root }, sample ? 'serving the bundled sample SPA (SPA_DIR is unset)' : 'serving the SPA from SPA_DIR');
    if (!existsSync(join(root, 'index.html'))) {
      fastify.log.warn({ event: 'spa_index_missing', dir: root }, 'the SPA folder has no index.html: navigations will answer 404');
    }
    const csp = this.config.spa.csp ?? (sample ? SAMPLE_SPA_CSP : undefined);
    const immutablePaths = this.config.spa.immutablePaths;
    await fastify.register(fastifyStatic, {
      root,
      serve: false,
      // @fastify/static allows dotfiles by default; .env, .git and the like must never be served
      dotfiles: 'ignore',
      index: false,
      cacheControl: false,
      setHeaders: (reply, filePath) => {
        void reply.header('cache-control', isImmutable(root, filePath, immutablePaths) ? CACHE_IMMUTABLE : CACHE_REVALIDATE);
        if (csp !== undefined && filePath.endsWith('.html')) void reply.header('content-security-policy', csp);
      },
    });
    fastify.route({ method: ['GET', 'HEAD'], url: '/*', handler: (request, reply) => this.serveStatic(request, reply, root) });
  }

  /**
   * WebSocket handshakes outside /api go to the dev server (hot reload), without the gateway's
   * credentials. Returns false when nobody here serves the path, so the caller refuses it. The
   * socket's 'error' listener is already on (upgrade dispatch).
   */
  handleUpgrade(fastify: FastifyInstance, req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if (this.devServer === undefined) return false;
    const url = req.url ?? '/';
    const path = decodeSpaPath(url);
    if (path === undefined || isGatewayPath(path)) return false;
    const requestId = requestIdFor(req);
    this.proxy.applyRequestPolicy(req, requestId, undefined, true);
    this.proxy.forwardUpgrade(req, socket, head, this.devServer, url, requestId, fastify.log.child({ reqId: requestId }));
    return true;
  }

  private async serveStatic(request: FastifyRequest, reply: FastifyReply, root: string): Promise<FastifyReply> {
    const path = decodeSpaPath(request.url);
    if (path === undefined) {
      sendProblem(request, reply, new InvalidSpaPathError());
      return reply;
    }
    if (isGatewayPath(path) || isDotfilePath(path)) {
      reply.callNotFound();
      return reply;
    }
    if (!path.endsWith('/') && (await isFile(join(root, path)))) return reply.sendFile(path);
    // By intent, not by name: a navigation to any path without a file is a client route (dots
    // included), except in the hashed-output folders, where a miss is a broken deployment.
    if (isNavigation({ method: request.method, path, accept: request.headers.accept }) && !isUnderPrefix(path, this.config.spa.immutablePaths)) {
      return reply.sendFile('index.html');
    }
    if (path === '/') return reply.sendFile('index.html');
    reply.callNotFound();
    return reply;
  }

  private async registerDevServer(fastify: FastifyInstance, devServer: Upstream): Promise<void> {
    await fastify.register((scope, _options, done) => {
      // bodies stream to the dev server unread, whatever their type
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', (_request, _payload, parsed) => parsed(null));
      scope.all('/*', (request, reply) => this.forwardToDevServer(request, reply, devServer));
      done();
    });
  }

  private forwardToDevServer(request: FastifyRequest, reply: FastifyReply, devServer: Upstream): void {
    const path = decodeSpaPath(request.url);
    if (path === undefined) {
      sendProblem(request, reply, new InvalidSpaPathError());
      return;
    }
    if (isGatewayPath(path)) {
      reply.callNotFound();
      return;
    }
    this.proxy.applyRequestPolicy(request.raw, request.id, undefined, false);
    reply.hijack();
    this.proxy.forward(request.raw, reply.raw, devServer, request.url, request.id, request.log);
  }
}

/** index.html never (it names the hashed files); files in SPA_IMMUTABLE_PATHS or with a content hash in their name. */
function isImmutable(root: string, filePath: string, immutablePaths: readonly string[]): boolean {
  const name = basename(filePath);
  if (name === 'index.html') return false;
  const urlPath = `/${relative(root, filePath).split(sep).join('/')}`;
  return isUnderPrefix(urlPath, immutablePaths) || isHashedAsset(name);
}

async function isFile(path: string): Promise<boolean> {
  const stats = await stat(path).catch(() => undefined);
  return stats?.isFile() ?? false;
}
