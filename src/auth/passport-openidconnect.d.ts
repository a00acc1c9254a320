// The parts of passport-openidconnect 0.1.2 the gateway uses (lib/strategy.js): its authorization
// request branch, its state-store interface and the actions passport gives every strategy run.
// Declared once here; no casts elsewhere.
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

  export interface StrategyOptions {
    issuer: string;
    authorizationURL: string;
    tokenURL: string;
    clientID: string;
    /** Only for the strategy's own token requests, which the gateway never makes. */
    clientSecret?: string;
    callbackURL: string;
    scope?: string[];
    nonce?: boolean;
    skipUserProfile?: boolean;
    store?: StateStore;
  }

  /** `state` reaches the state store as its appState; the rest goes to authorizationParams(). */
  export interface AuthenticateOptions {
    prompt?: string;
    loginHint?: string;
    state?: string;
    params?: Readonly<Record<string, string | readonly string[]>>;
  }

  /** What the strategy reads of a request: the query (no `code`, no `error`: the authorization branch). */
  export interface StrategyRequest {
    readonly query: Readonly<Record<string, string | undefined>>;
  }

  export class Strategy {
    constructor(options: StrategyOptions, verify: (...args: never[]) => void);
    name: string;
    authenticate(req: StrategyRequest, options?: AuthenticateOptions): void;
    authorizationParams(options: AuthenticateOptions): Record<string, string | readonly string[]>;
  }
}
