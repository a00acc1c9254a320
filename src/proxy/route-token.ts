import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { CLOCK, type Clock } from '../common/clock.js';
import { CONFIG } from '../config/config.module.js';
import type { Config, ProxyRoute } from '../config/config.js';
import { hasOwnUserToken } from '../config/route-policy.js';
import { DpopKey } from '../oidc/dpop.js';
import { TokenRequestRejectedError } from '../oidc/oidc.errors.js';
import { ProviderMetadata } from '../oidc/provider-metadata.js';
import { TOKEN_EXCHANGE_GRANT, TokenClient, type TokenResponse, type TokenTarget } from '../oidc/token-client.js';
import { RouteTokenRejectedError, SessionRequiredError } from '../session/session.errors.js';
import type { SessionRecord } from '../session/session-store.js';
import { accessTokenExpiresAt } from '../session/session-timing.js';
import { sessionDpopKey } from '../session/session-dpop.js';
import { TokenRefresher, type RouteTokenSpec } from '../session/token-refresher.js';
import type { Upstream } from './proxy.service.js';
import { UpstreamDpop, type UpstreamBinding } from './upstream-dpop.js';

interface CachedToken {
  readonly accessToken: string;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
}

/** The token parameters of a route: its audience, RFC 8707 resources and scope. */
export function routeTarget(route: ProxyRoute): TokenTarget {
  return { audience: route.audience, resource: route.resource, scope: route.scope };
}

/**
 * Routes that need a grant the provider's discovery does not list. Only a warning: real providers
 * omit grants they support (the list is RECOMMENDED, not complete, in RFC 8414 §2).
 */
export function unannouncedGrants(routes: readonly ProxyRoute[], supported: readonly string[] | undefined): Array<{ readonly grant: string; readonly routes: readonly string[] }> {
  if (supported === undefined) return [];
  const needs = new Map<string, string[]>();
  for (const route of routes) {
    const grant = route.token === 'client' ? 'client_credentials' : hasOwnUserToken(route) && route.exchange ? TOKEN_EXCHANGE_GRANT : undefined;
    if (grant !== undefined && !supported.includes(grant)) needs.set(grant, [...(needs.get(grant) ?? []), route.prefix]);
  }
  return [...needs].map(([grant, prefixes]) => ({ grant, routes: prefixes }));
}

/**
 * The gateway's own tokens (client credentials), one per `client` route: cached until shortly
 * before expiry, one provider request however many callers wait. They hold no user's identity,
 * so they live in this process only.
 */
export class ClientTokens {
  private readonly cache = new Map<string, CachedToken>();
  private readonly inFlight = new Map<string, Promise<string>>();

  constructor(
    private readonly tokens: Pick<TokenClient, 'clientCredentials'>,
    private readonly clock: Clock,
    private readonly skewS: number,
    /** OIDC_DPOP: the process's own key, which these tokens are bound to (they name no session). */
    private readonly dpop?: DpopKey,
  ) {}

  get(route: ProxyRoute): Promise<string> {
    const cached = this.cache.get(route.prefix);
    if (cached !== undefined && cached.expiresAt - this.clock.now() > this.skewS * 1000) return Promise.resolve(cached.accessToken);
    let pending = this.inFlight.get(route.prefix);
    if (pending === undefined) {
      pending = this.obtain(route).finally(() => this.inFlight.delete(route.prefix));
      this.inFlight.set(route.prefix, pending);
    }
    return pending;
  }

  private async obtain(route: ProxyRoute): Promise<string> {
    const now = this.clock.now();
    let answer: TokenResponse;
    try {
      answer = await this.tokens.clientCredentials(routeTarget(route), this.dpop);
    } catch (error) {
      // the route's target (scope, audience, resource) is refused: the route's problem, a 403
      if (error instanceof TokenRequestRejectedError) throw new RouteTokenRejectedError(error.oauthError, error);
      throw error;
    }
    this.cache.set(route.prefix, { accessToken: answer.access_token, expiresAt: accessTokenExpiresAt(answer.access_token, answer.expires_in, now) });
    return answer.access_token;
  }
}

/**
 * Step 4 of the pipeline, the token for the route, as its policy says: the session's access token
 * (renewed first when about to expire), a token obtained for the route's own audience, resource or
 * scope, the gateway's client token, or none.
 */
@Injectable()
export class RouteTokens implements OnApplicationBootstrap {
  private readonly log = new Logger(RouteTokens.name);
  private readonly clientTokens: ClientTokens;
  /** OIDC_DPOP: the key `client` route tokens are bound to, one per process. */
  private readonly processKey: DpopKey | undefined;
  private readonly upstreamDpop: UpstreamDpop | undefined;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(TokenRefresher) private readonly refresher: Pick<TokenRefresher, 'fresh' | 'routeToken'>,
    @Inject(TokenClient) tokens: Pick<TokenClient, 'clientCredentials'>,
    @Inject(CLOCK) clock: Clock,
    @Inject(ProviderMetadata) private readonly provider?: Pick<ProviderMetadata, 'whenLoaded'>,
  ) {
    this.processKey = config.oidc.dpop ? DpopKey.generate() : undefined;
    this.upstreamDpop = config.oidc.dpop ? new UpstreamDpop(clock) : undefined;
    this.clientTokens = new ClientTokens(tokens, clock, config.session.refreshSkewS, this.processKey);
  }

  onApplicationBootstrap(): void {
    // discovery loads in the background (with retries): warn once it has
    void this.provider?.whenLoaded().then(({ document }) => {
      for (const { grant, routes } of unannouncedGrants(this.config.proxy.routes, document.grant_types_supported)) {
        this.log.warn({ event: 'route_grant_unannounced', grant, routes, msg: 'the provider does not list a grant these routes need in grant_types_supported (requests fail if it is really missing)' });
      }
    });
  }

  /** The access token to send upstream; undefined sends no Authorization. */
  async forRoute(route: ProxyRoute, session: SessionRecord | undefined): Promise<string | undefined> {
    if (route.token === 'none') return undefined;
    if (session === undefined) {
      if (route.token === 'user-or-none') return undefined;
      throw new SessionRequiredError();
    }
    if (route.token === 'client') return this.clientTokens.get(route);
    if (hasOwnUserToken(route)) return this.refresher.routeToken(session, routeSpec(route));
    return (await this.refresher.fresh(session)).tokens.accessToken;
  }

  /**
   * OIDC_DPOP: the upstream request's binding (RFC 9449 §7) of the token forRoute() gave, with the
   * key it is bound to: the process's for a `client` route, the session's otherwise. Undefined
   * without OIDC_DPOP or without a token: the request then goes as before.
   */
  bindForUpstream(route: ProxyRoute, session: SessionRecord | undefined, accessToken: string | undefined, method: string, upstream: Pick<Upstream, 'target'>, path: string): UpstreamBinding | undefined {
    const { upstreamDpop } = this;
    if (upstreamDpop === undefined || accessToken === undefined) return undefined;
    const key = route.token === 'client' ? this.processKey : session === undefined ? undefined : sessionDpopKey(session, true);
    // forRoute() gives a token only with a session, except to `client` routes
    if (key === undefined) throw new Error('a DPoP-bound token without a key');
    return upstreamDpop.bind(key, accessToken, method, upstream.target, path);
  }
}

export function routeSpec(route: ProxyRoute): RouteTokenSpec {
  return { key: route.prefix, target: routeTarget(route), exchange: route.exchange };
}
