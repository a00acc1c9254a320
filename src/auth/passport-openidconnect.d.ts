// The parts of passport-openidconnect 0.1.2 the gateway uses, including the "protected" members a
// subclass may replace per request (lib/strategy.js). Declared once here; no casts elsewhere.
declare module 'passport-openidconnect' {
  /** What the strategy remembers between the redirect and the callback (its `ctx`). */
  export interface LoginContext {
    nonce?: string;
    maxAge?: number;
    issued?: Date;
  }

  /** lib/state/session.js's interface: where state lives between the redirect and the callback. */
  export interface StateStore {
    store(req: unknown, ctx: LoginContext, appState: unknown, meta: unknown, callback: (err: Error | null, state?: string) => void): void;
    verify(req: unknown, state: unknown, callback: (err: Error | null, ctx?: LoginContext | false, info?: unknown) => void): void;
  }

  /** The subset of `oauth`'s OAuth2 client the strategy calls. */
  export interface TokenEndpoint {
    readonly _authorizeUrl: string;
    readonly _accessTokenUrl: string;
    readonly _clientId: string;
    getOAuthAccessToken(
      code: string,
      params: Record<string, string>,
      callback: (err: unknown, accessToken?: string, refreshToken?: string, params?: Record<string, unknown>) => void,
    ): void;
  }

  export interface StrategyOptions {
    issuer: string;
    authorizationURL: string;
    tokenURL: string;
    clientID: string;
    clientSecret: string;
    callbackURL: string;
    scope?: string[];
    nonce?: boolean;
    passReqToCallback?: boolean;
    skipUserProfile?: boolean;
    store?: StateStore;
  }

  export interface AuthenticateOptions {
    prompt?: string;
    loginHint?: string;
  }

  export class Strategy {
    constructor(options: StrategyOptions, verify: (...args: never[]) => void);
    name: string;
    authenticate(req: unknown, options?: AuthenticateOptions): void;
    authorizationParams(options: AuthenticateOptions): Record<string, string | readonly string[]>;
    protected _stateStore: StateStore;
    protected _oauth2: TokenEndpoint;
  }
}
