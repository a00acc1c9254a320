import { Inject, Injectable } from '@nestjs/common';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sendProblem } from '../common/problem.js';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { ProviderMetadata } from '../oidc/provider-metadata.js';
import { sessionKey, sidHash } from '../session/session-cookie.js';
import { WebSocketSessions } from '../proxy/websocket-sessions.js';
import { SESSION_STORE, type SessionStore } from '../session/session-store.js';

export const FRONTCHANNEL_LOGOUT_PATH = '/auth/frontchannel-logout';

/** The same page whatever happened: the provider's iframe shows it, and it must not tell an attacker whether a sid matched. */
const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Signed out</title></head><body><p>Signed out.</p></body></html>
`;

type Outcome = 'accepted' | 'issuer_mismatch' | 'parameters_missing';

/**
 * OpenID Connect Front-Channel Logout 1.0, opt-in (OIDC_FRONTCHANNEL_LOGOUT): the provider's logout
 * page loads `GET /auth/frontchannel-logout?iss=…&sid=…` in an iframe and every session bound to
 * that provider `sid` ends, on every replica (the store is shared). The iframe is cross-site, so
 * the SameSite=Lax cookie is not sent and the request proves nothing but knowledge of the sid: that
 * is why it is off by default and back-channel logout is preferred.
 *
 * A Fastify route of its own scope rather than a Nest controller: unregistered when off (404 as
 * for any unknown path), and its own onSend hook replaces the gateway's "never framed" headers.
 */
@Injectable()
export class FrontchannelLogoutRoutes {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(SESSION_STORE) private readonly store: SessionStore,
    private readonly websockets: WebSocketSessions,
    private readonly provider: ProviderMetadata,
  ) {}

  /** Call after registerSecurityHeaders: this scope's onSend hook runs after the root's and overrides it. */
  async register(fastify: FastifyInstance): Promise<void> {
    if (!this.config.oidc.frontchannelLogout) return;
    // §2: the provider frames this page, and nobody else may (clickjacking)
    const csp = `default-src 'none'; frame-ancestors ${new URL(this.config.oidc.issuer).origin}`;
    await fastify.register((scope, _options, done) => {
      scope.addHook('onSend', (_request, reply, payload, next) => {
        reply.removeHeader('x-frame-options');
        void reply.header('content-security-policy', csp);
        // §4: the provider's iframe must reach the gateway every time
        void reply.header('cache-control', 'no-store');
        next(null, payload);
      });
      scope.get(FRONTCHANNEL_LOGOUT_PATH, (request, reply) => this.handle(request, reply));
      done();
    });
  }

  private async handle(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const iss = single(request.query, 'iss');
    const sid = single(request.query, 'sid');
    let outcome: Outcome = 'parameters_missing';
    let ended = 0;
    try {
      // §3: with iss and sid the RP must check iss; without a sid there is nothing to end (the cookie is not sent)
      if (iss !== undefined && sid !== undefined) {
        outcome = this.provider.isLoaded && this.provider.get().issuers.has(iss) ? 'accepted' : 'issuer_mismatch';
        if (outcome === 'accepted') ended = await this.store.deleteByProviderSid(sid);
      }
    } catch (error) {
      sendProblem(request, reply, error);
      return;
    }
    // this replica's sockets close now; other replicas' at their next check
    if (ended > 0) void this.websockets.check();
    request.log.info({ event: 'frontchannel_logout', outcome, ended, ...(sid === undefined ? {} : { sidHash: sidHash(sessionKey(sid)) }) }, 'front-channel logout');
    await reply.type('text/html; charset=utf-8').send(PAGE);
  }
}

/** One non-empty value of a query parameter; absent, empty or repeated counts as missing. */
function single(query: unknown, name: string): string | undefined {
  if (typeof query !== 'object' || query === null || !(name in query)) return undefined;
  const value: unknown = Reflect.get(query, name);
  return typeof value === 'string' && value !== '' ? value : undefined;
}
