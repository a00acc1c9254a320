// oidc-provider ships no typings and no @types package covers v9. These declare only what
// demo/provider.ts uses, so every cast at this library boundary lives here, in one place.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  /** The slice of Koa's context the demo's middleware touches. */
  export interface KoaContext {
    readonly method: string;
    readonly path: string;
    /** Response Content-Type without parameters (Koa's getter), '' when unset. */
    readonly type: string;
    body: unknown;
    set(field: string, value: string): void;
  }

  export type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

  export interface ClientMetadata {
    client_id: string;
    client_secret?: string;
    redirect_uris: string[];
    post_logout_redirect_uris?: string[];
    grant_types?: string[];
    response_types?: string[];
    token_endpoint_auth_method?: string;
    backchannel_logout_uri?: string;
    backchannel_logout_session_required?: boolean;
  }

  export interface Client {
    readonly clientId: string;
    grantTypeAllowed(grantType: string): boolean;
  }

  export interface Account {
    accountId: string;
    claims(use: string, scope: string): Promise<{ sub: string } & Record<string, unknown>>;
  }

  export interface ResourceServerInfo {
    scope: string;
    audience?: string;
    accessTokenTTL?: number;
    accessTokenFormat?: 'opaque' | 'jwt';
  }

  /** What extraTokenClaims receives: an AccessToken, ClientCredentials, ... model. */
  export interface TokenModel {
    readonly kind: string;
    readonly accountId?: string;
  }

  export interface Configuration {
    clients?: ClientMetadata[];
    jwks?: { keys: Array<Record<string, unknown>> };
    cookies?: { keys?: string[] };
    claims?: Record<string, string[] | null>;
    scopes?: string[];
    responseTypes?: string[];
    conformIdTokenClaims?: boolean;
    pkce?: { required?: (ctx: unknown, client: Client) => boolean };
    features?: {
      devInteractions?: { enabled: boolean };
      revocation?: { enabled: boolean };
      userinfo?: { enabled: boolean };
      rpInitiatedLogout?: { enabled: boolean };
      backchannelLogout?: { enabled: boolean };
      clientCredentials?: { enabled: boolean };
      /** RFC 9449; enabled by default in oidc-provider 9. nonceSecret: 32 bytes; requireNonce decides per request. */
      dPoP?: { enabled: boolean; nonceSecret?: Buffer; requireNonce?: (ctx: unknown) => boolean; allowReplay?: boolean };
      resourceIndicators?: {
        enabled: boolean;
        defaultResource?: (ctx: unknown, client: Client, oneOf?: string[]) => Promise<string | string[] | undefined>;
        useGrantedResource?: (ctx: unknown, model: unknown) => Promise<boolean>;
        getResourceServerInfo?: (ctx: unknown, resourceIndicator: string, client: Client) => Promise<ResourceServerInfo>;
      };
    };
    findAccount?: (ctx: unknown, sub: string, token?: unknown) => Promise<Account | undefined>;
    extraTokenClaims?: (ctx: unknown, token: TokenModel) => Promise<Record<string, unknown> | undefined>;
    issueRefreshToken?: (ctx: unknown, client: Client, code: unknown) => Promise<boolean>;
    rotateRefreshToken?: boolean | ((ctx: unknown) => boolean);
    ttl?: Record<string, number>;
    /** `options.dispatcher` is oidc-provider's SSRF-guarded undici agent. */
    fetch?: (url: string, options: RequestInit) => Promise<Response>;
  }

  export class Provider {
    constructor(issuer: string, configuration?: Configuration);
    readonly issuer: string;
    /** Koa's request listener for node:http. */
    callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
    /** Runs before oidc-provider's own routes. */
    use(middleware: Middleware): this;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }

  export const errors: {
    InvalidTarget: new (description?: string) => Error;
  };

  export default Provider;
}
