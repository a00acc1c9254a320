import { Inject, Injectable } from '@nestjs/common';
import { CLOCK, type Clock } from '../common/clock.js';
import { CONFIG } from '../config/config.module.js';
import type { Config, ProxyRoute } from '../config/config.js';
import { hasOwnUserToken } from '../config/route-policy.js';
import { TokenRequestRejectedError } from '../oidc/oidc.errors.js';
import { TokenClient, type TokenResponse, type TokenTarget } from '../oidc/token-client.js';
import { RouteTokenRejectedError, SessionRequiredError } from '../session/session.errors.js';
import type { SessionRecord } from '../session/session-store.js';
import { accessTokenExpiresAt } from '../session/session-timing.js';
import { TokenRefresher, type RouteTokenSpec } from '../session/token-refresher.js';

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
      answer = await this.tokens.clientCredentials(routeTarget(route));
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
export class RouteTokens {
  private readonly clientTokens: ClientTokens;

  constructor(
    @Inject(CONFIG) config: Config,
    @Inject(TokenRefresher) private readonly refresher: Pick<TokenRefresher, 'fresh' | 'routeToken'>,
    @Inject(TokenClient) tokens: Pick<TokenClient, 'clientCredentials'>,
    @Inject(CLOCK) clock: Clock,
  ) {
    this.clientTokens = new ClientTokens(tokens, clock, config.session.refreshSkewS);
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
}

export function routeSpec(route: ProxyRoute): RouteTokenSpec {
  return { key: route.prefix, target: routeTarget(route), exchange: route.exchange };
}
