import { createHash, randomBytes } from 'node:crypto';
import { PassportStrategy } from '@nestjs/passport';
import type { FastifyRequest } from 'fastify';
import { Strategy, type AuthenticateOptions, type TokenEndpoint } from 'passport-openidconnect';
import type { Clock } from '../common/clock.js';
import type { Config } from '../config/config.js';
import { IdTokenValidator } from '../oidc/id-token.validator.js';
import { TokenResponseInvalidError } from '../oidc/oidc.errors.js';
import type { IdTokenClaims } from '../oidc/id-token.validator.js';
import type { DiscoveryDocument } from '../oidc/provider-metadata.js';
import { TokenClient } from '../oidc/token-client.js';
import { loginResourceParams } from '../config/route-policy.js';
import type { LoginAttempt, LoginResult } from './login-attempt.js';
import { LoginTransactionStore } from './login-transaction.store.js';

/** The request object passport sees: what the strategy reads, plus this login's attempt. */
export interface PassportRequest {
  readonly query: Readonly<Record<string, string | undefined>>;
  readonly session: FastifyRequest['session'];
  readonly attempt: LoginAttempt;
}

export const OIDC_STRATEGY = 'oidc';

interface StrategyDeps {
  readonly config: Config;
  readonly tokens: TokenClient;
  readonly idTokens: IdTokenValidator;
  readonly clock: Clock;
}

/**
 * passport-openidconnect, completed: PKCE S256, client_secret_basic, and ID-token signature
 * validation (it has none of these). Per request (passport runs each request on
 * Object.create(strategy)), the state store and the token endpoint client are replaced by ones
 * bound to this request's cookie and login attempt.
 */
export class OidcStrategy extends PassportStrategy(Strategy, OIDC_STRATEGY, 9) {
  /** Set on passport's per-request copy of the strategy, never on the shared instance. */
  private attempt: LoginAttempt | undefined;

  constructor(
    document: DiscoveryDocument,
    private readonly deps: StrategyDeps,
  ) {
    const { oidc } = deps.config;
    super({
      issuer: oidc.issuer,
      authorizationURL: document.authorization_endpoint,
      tokenURL: document.token_endpoint,
      clientID: oidc.clientId,
      clientSecret: oidc.clientSecret,
      // absolute: a relative callbackURL makes the strategy read req.connection, which Fastify lacks
      callbackURL: oidc.redirectUri,
      scope: [...oidc.scopes],
      // the nonce comes from authorizationParams(): the strategy's own has only 120 bits
      nonce: false,
      passReqToCallback: true,
      skipUserProfile: true,
    });
  }

  override authenticate(req: PassportRequest, options: AuthenticateOptions = {}): void {
    const { attempt } = req;
    this.attempt = attempt;
    if (req.query['code'] === undefined && req.query['error'] === undefined) {
      // RFC 7636 §4.1: 32 random bytes, base64url
      attempt.codeVerifier = randomBytes(32).toString('base64url');
      attempt.nonce = randomBytes(32).toString('base64url');
    }
    this._stateStore = new LoginTransactionStore(req.session, attempt, this.deps.clock);
    this._oauth2 = new ValidatingTokenEndpoint(this._oauth2, attempt, this.deps);
    super.authenticate(req, options);
  }

  override authorizationParams(): Record<string, string | readonly string[]> {
    const verifier = this.attempt?.codeVerifier;
    const nonce = this.attempt?.nonce;
    if (verifier === undefined || nonce === undefined) throw new Error('authorizationParams called outside a login');
    return {
      ...this.deps.config.oidc.extraAuthParams,
      ...loginResourceParams(this.deps.config.oidc.loginResources),
      nonce,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    };
  }

  /** passport's verify callback (arity 9 with passReqToCallback): the attempt already holds the validated result. */
  validate(req: PassportRequest): LoginResult {
    const result = req.attempt.result;
    if (result === undefined) throw new Error('verify called before the token exchange completed');
    return result;
  }
}

/**
 * Stands in for the strategy's `oauth` client at the callback: exchanges the code with PKCE and the
 * configured client authentication, then validates the ID token before the strategy reads it.
 */
class ValidatingTokenEndpoint implements TokenEndpoint {
  readonly _authorizeUrl: string;
  readonly _accessTokenUrl: string;
  readonly _clientId: string;

  constructor(
    original: TokenEndpoint,
    private readonly attempt: LoginAttempt,
    private readonly deps: StrategyDeps,
  ) {
    this._authorizeUrl = original._authorizeUrl;
    this._accessTokenUrl = original._accessTokenUrl;
    this._clientId = original._clientId;
  }

  getOAuthAccessToken(
    code: string,
    _params: Record<string, string>,
    callback: (err: unknown, accessToken?: string, refreshToken?: string, params?: Record<string, unknown>) => void,
  ): void {
    this.exchange(code).then(
      (result) => callback(null, result.tokens.access_token, result.tokens.refresh_token, { ...result.tokens, id_token: passportView(result.claims) }),
      (error: unknown) => {
        this.attempt.error = error;
        callback(error);
      },
    );
  }

  private async exchange(code: string): Promise<LoginResult> {
    const transaction = this.attempt.transaction;
    if (transaction === undefined) throw new Error('code exchange without a verified login transaction');
    const tokens = await this.deps.tokens.exchangeCode(code, transaction.codeVerifier);
    if (tokens.id_token === undefined) throw new TokenResponseInvalidError('The token response carries no ID token (was the openid scope granted?).');
    const claims = await this.deps.idTokens.validate(tokens.id_token, transaction.nonce);
    const result: LoginResult = { claims, tokens: { ...tokens, id_token: tokens.id_token }, returnTo: transaction.returnTo };
    this.attempt.result = result;
    return result;
  }
}

/**
 * Far beyond any clock: passport-openidconnect's own exp check must never decide (see passportView).
 * 9999-12-31T23:59:59Z.
 */
const PASSPORT_VIEW_EXP_S = 253_402_300_799;

/**
 * What the strategy re-checks, after IdTokenValidator has done the real validation: the validated
 * claims, unsigned. passport-openidconnect repeats the exp check against the process clock, without
 * clock skew: it would refuse a token our validator accepted within OIDC_CLOCK_SKEW_S, and it would
 * disagree with the injected clock the validator used. Expiry was decided there, so this copy's exp
 * cannot fail. The session keeps the provider's own ID token; this copy never leaves the strategy.
 */
function passportView(claims: IdTokenClaims): string {
  return `e30.${Buffer.from(JSON.stringify({ ...claims, exp: PASSPORT_VIEW_EXP_S })).toString('base64url')}.`;
}
