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
    /** private_key_jwt: the client's public keys, by URL or inline. */
    jwks_uri?: string;
    jwks?: { keys: Array<Record<string, unknown>> };
    id_token_signed_response_alg?: string;
    dpop_bound_access_tokens?: boolean;
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
      pushedAuthorizationRequests?: { enabled: boolean; requirePushedAuthorizationRequests?: boolean };
      fapi?: { enabled: boolean; profile: '2.0' | '1.0 Final' };
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
    clientAuthMethods?: string[];
    /** acr_values_supported; the first is the default for clients (unused here). */
    acrValues?: string[];
    interactions?: { policy?: InteractionPolicy };
    /** `options.dispatcher` is oidc-provider's SSRF-guarded undici agent. */
    fetch?: (url: string, options: RequestInit) => Promise<Response>;
  }

  /** What a login interaction ends with (provider.interactionFinished). */
  export interface InteractionResults {
    login?: { accountId: string; acr?: string; amr?: string[]; remember?: boolean; ts?: number };
    [key: string]: unknown;
  }

  export interface InteractionDetails {
    readonly uid: string;
    readonly params: Readonly<Record<string, unknown>>;
    readonly prompt: { readonly name: string };
  }

  /** The slice of OIDCContext an interaction check reads. */
  export interface CheckContext {
    readonly oidc: {
      readonly params: Readonly<Record<string, unknown>>;
      /** The provider session's acr. */
      readonly acr: string | undefined;
      /** Set once a login interaction finished in this request. */
      readonly result?: { readonly login?: unknown };
    };
  }

  export namespace interactionPolicy {
    class Check {
      constructor(reason: string, description: string, check: (ctx: CheckContext) => boolean | Promise<boolean>);
    }
    interface Prompt {
      readonly name: string;
      readonly checks: Check[] & { add(check: Check, index?: number): void };
    }
    function base(): InteractionPolicy;
  }
  export type InteractionPolicy = interactionPolicy.Prompt[] & { get(name: string): interactionPolicy.Prompt | undefined };

  export class Provider {
    interactionFinished(req: IncomingMessage, res: ServerResponse, result: InteractionResults, options?: { mergeWithLastSubmission?: boolean }): Promise<void>;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
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
