import { randomBytes } from 'node:crypto';
import type { Environment } from '../../src/config/config.js';
import type { DiscoveryBehaviour, EndpointName, EndSessionAnswer, ProviderBehaviour, RogueOp, ScenarioResult, TokenContext } from './rogue-op.js';

/**
 * Five production providers as their public documentation describes them, played by the rogue
 * provider: each one's discovery document, endpoint paths, and the deviations the gateway must
 * handle. The README's provider sections give the same gateway environment as `env` here.
 */
export type ProviderName = 'okta' | 'okta-org' | 'entra' | 'auth0' | 'google' | 'keycloak';

/** How a provider treats a used refresh token. */
type Rotation =
  /** A new one each time; the old one stays valid (Keycloak's and Entra ID's default). */
  | 'rotate'
  /** A new one each time; the old one works for a grace period, then not (Okta). */
  | 'rotate-with-grace'
  /** A new one each time; reusing an old one revokes the whole family (Auth0's reuse detection). */
  | 'rotate-with-reuse-detection'
  /** The same one for the grant's life (Google). */
  | 'none';

/** What one login granted, carried by its refresh tokens. */
interface Grant {
  readonly family: string;
  /** ID token claims besides the standard ones (sub, tid, iss, ...). */
  readonly claims: Readonly<Record<string, unknown>>;
  /** The access token's audience; undefined: an opaque access token. */
  readonly audience: string | undefined;
}

interface IssuedRefreshToken {
  readonly grant: Grant;
  usedAt: number | undefined;
}

/** Okta's default grace period for a rotated refresh token (configurable 0-60 s). */
const OKTA_GRACE_MS = 30_000;

/** Refresh tokens the way the provider keeps them: by grant family, rotating or not. */
class RefreshTokens {
  private readonly issued = new Map<string, IssuedRefreshToken>();
  private readonly revokedFamilies = new Set<string>();

  constructor(private readonly rotation: Rotation) {}

  issue(grant: Grant): string {
    const token = `rt-${randomBytes(18).toString('base64url')}`;
    this.issued.set(token, { grant, usedAt: undefined });
    return token;
  }

  /** The grant and the refresh token to answer with (undefined: none, the client keeps its own); undefined when refused. */
  use(token: string, now: number): { readonly grant: Grant; readonly next: string | undefined } | undefined {
    const entry = this.issued.get(token);
    if (entry === undefined || this.revokedFamilies.has(entry.grant.family)) return undefined;
    switch (this.rotation) {
      case 'none':
        return { grant: entry.grant, next: undefined };
      case 'rotate':
        return { grant: entry.grant, next: this.issue(entry.grant) };
      case 'rotate-with-grace':
        if (entry.usedAt !== undefined && now - entry.usedAt > OKTA_GRACE_MS) return undefined;
        entry.usedAt ??= now;
        return { grant: entry.grant, next: this.issue(entry.grant) };
      case 'rotate-with-reuse-detection':
        if (entry.usedAt !== undefined) {
          // Auth0: a reused refresh token means it leaked; every token of the family is revoked
          this.revokedFamilies.add(entry.grant.family);
          return undefined;
        }
        entry.usedAt = now;
        return { grant: entry.grant, next: this.issue(entry.grant) };
    }
  }
}

/** One emulated provider: what the rogue does, and what the gateway is told. */
export interface Emulation {
  readonly name: ProviderName;
  readonly behaviour: ProviderBehaviour;
  /** The gateway's environment for this provider, as its README section gives it. */
  env(rogue: RogueOp): Environment;
  /** The audience of JWT access tokens the sample API verifies; undefined: opaque tokens. */
  readonly apiAudience: string | undefined;
  /** The issuer of access tokens (for the sample API), given the provider's own issuer. */
  apiIssuer(rogue: RogueOp): string;
  /** The subject the provider's user has. */
  readonly sub: string;
  /** Registers a post-logout redirect URI at the provider (Okta and Auth0 refuse others). */
  registerPostLogoutUri(uri: string): void;
  /** Installs the token endpoint's behaviour on the rogue (a fresh set of refresh tokens). */
  install(rogue: RogueOp): void;
}

/** What the provider remembers about its client and user. */
interface ProviderState {
  readonly postLogoutRedirectUris: string[];
  /** Users who consented once (Google issues a refresh token at the first consent). */
  readonly consented: Set<string>;
}

interface Spec {
  readonly name: ProviderName;
  readonly behaviour: ProviderBehaviour;
  /** The end-session endpoint's answer, knowing the registered post-logout URIs. */
  readonly endSession?: (params: Readonly<Record<string, string>>, state: ProviderState) => EndSessionAnswer;
  readonly env: (rogue: RogueOp) => Environment;
  readonly rotation: Rotation;
  readonly sub: string;
  /** `token_type` as the provider spells it. */
  readonly tokenType: string;
  /** Whether this authorization request gets a refresh token. */
  readonly grantsRefresh: (params: Readonly<Record<string, string>>, state: ProviderState) => boolean;
  /** The access token's audience for this request; undefined: opaque. */
  readonly audience: (params: Readonly<Record<string, string>>) => string | undefined;
  /** ID token claims merged over the correct ones (undefined removes one). */
  readonly idTokenClaims: (ctx: TokenContext) => Readonly<Record<string, unknown>>;
  readonly apiAudience: string | undefined;
  readonly apiIssuer?: (rogue: RogueOp) => string;
}

function emulation(spec: Spec): Emulation {
  const state: ProviderState = { postLogoutRedirectUris: [], consented: new Set() };
  const { endSession } = spec;
  return {
    name: spec.name,
    behaviour: endSession === undefined ? spec.behaviour : { ...spec.behaviour, endSession: (params) => endSession(params, state) },
    env: spec.env,
    apiAudience: spec.apiAudience,
    apiIssuer: spec.apiIssuer ?? ((rogue) => rogue.issuer),
    sub: spec.sub,
    registerPostLogoutUri(uri) {
      state.postLogoutRedirectUris.push(uri);
    },
    install(rogue) {
      const refreshTokens = new RefreshTokens(spec.rotation);
      const answer = async (ctx: TokenContext, grant: Grant, refreshToken: string | undefined): Promise<ScenarioResult> => {
        const iss = typeof grant.claims['iss'] === 'string' ? grant.claims['iss'] : ctx.issuer;
        const accessToken =
          grant.audience === undefined
            ? `opaque-${randomBytes(18).toString('base64url')}`
            : await ctx.sign({ iss, sub: spec.sub, aud: grant.audience, client_id: ctx.clientId, iat: ctx.now, exp: ctx.now + 300, jti: randomBytes(8).toString('hex') }, { header: { typ: 'at+jwt' } });
        return {
          claims: grant.claims,
          response: { access_token: accessToken, token_type: spec.tokenType, expires_in: 300, refresh_token: refreshToken },
        };
      };
      rogue.scenario = async (ctx) => {
        const params = ctx.authorizationParams;
        const grant: Grant = { family: randomBytes(8).toString('hex'), claims: { sub: spec.sub, ...spec.idTokenClaims(ctx) }, audience: spec.audience(params) };
        return answer(ctx, grant, spec.grantsRefresh(params, state) ? refreshTokens.issue(grant) : undefined);
      };
      rogue.refreshScenario = async (ctx) => {
        const used = refreshTokens.use(ctx.code, ctx.now * 1000);
        if (used === undefined) return { http: { status: 400, body: JSON.stringify({ error: 'invalid_grant', error_description: 'refresh token revoked or reused' }) } };
        // a refreshed ID token: the same iss, sub and aud, no nonce (OIDC Core §12.2)
        const refreshed = { ...used.grant, claims: { ...used.grant.claims, nonce: undefined, auth_time: undefined } };
        return answer(ctx, refreshed, used.next);
      };
    },
  };
}

function scopes(params: Readonly<Record<string, string>>): string[] {
  return (params['scope'] ?? '').split(' ').filter((s) => s !== '');
}

/** Discovery with only these members changed (undefined leaves one out), served at the issuer's path only. */
function discoveryAt(issuerPath: string, changes: Readonly<Record<string, unknown>>): DiscoveryBehaviour {
  const wellKnown = `${issuerPath.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  return (document, path) => (path === wellKnown ? { ...document, ...changes } : undefined);
}

/** A page the provider shows instead of returning to the app (the user is stranded there). */
function refusal(body: string): EndSessionAnswer {
  return { status: 400, body };
}

const NO_LOGOUT_CHANNELS = {
  backchannel_logout_supported: undefined,
  backchannel_logout_session_supported: undefined,
  frontchannel_logout_supported: undefined,
  frontchannel_logout_session_supported: undefined,
};

const OKTA_PATHS = (base: string): Partial<Record<EndpointName, string>> => ({
  authorize: `${base}/v1/authorize`,
  token: `${base}/v1/token`,
  jwks: `${base}/v1/keys`,
  revoke: `${base}/v1/revoke`,
  endSession: `${base}/v1/logout`,
  userinfo: `${base}/v1/userinfo`,
});

/** Okta /v1/logout: id_token_hint required; post_logout_redirect_uri must be registered. */
function oktaLogout(params: Readonly<Record<string, string>>, state: ProviderState): EndSessionAnswer {
  const target = params['post_logout_redirect_uri'];
  if (params['id_token_hint'] === undefined) return refusal('id_token_hint is required');
  if (target !== undefined && !state.postLogoutRedirectUris.includes(target)) return refusal('The post_logout_redirect_uri is not registered');
  return target === undefined ? { status: 200, body: 'signed out' } : { location: target };
}

const okta: Spec = {
  name: 'okta',
  behaviour: {
    issuerPath: '/oauth2/default',
    paths: OKTA_PATHS('/oauth2/default'),
    discovery: discoveryAt('/oauth2/default', { ...NO_LOGOUT_CHANNELS, authorization_response_iss_parameter_supported: undefined }),
  },
  endSession: oktaLogout,
  env: () => ({ OIDC_SCOPES: 'openid profile email offline_access' }),
  rotation: 'rotate-with-grace',
  sub: '00u1okta',
  tokenType: 'Bearer',
  // Okta: a refresh token only with offline_access (and the refresh grant enabled for the app)
  grantsRefresh: (params) => scopes(params).includes('offline_access'),
  audience: () => 'api://default',
  idTokenClaims: () => ({ name: 'Okta User', email: 'user@okta.example', preferred_username: 'user@okta.example', ver: 1, idp: '00o1' }),
  apiAudience: 'api://default',
};

const oktaOrg: Spec = {
  ...okta,
  name: 'okta-org',
  behaviour: {
    issuerPath: '',
    paths: OKTA_PATHS('/oauth2'),
    discovery: discoveryAt('', { ...NO_LOGOUT_CHANNELS, authorization_response_iss_parameter_supported: undefined }),
  },
  // the org server's access tokens are for Okta's own APIs: opaque to anyone else
  audience: () => undefined,
  apiAudience: undefined,
};

const ENTRA_TENANT = '9b1c7a2e-0000-4000-8000-00000000c0de';
const ENTRA_OTHER_TENANT = 'f00dfeed-0000-4000-8000-00000000beef';
const ENTRA_API = 'api://bff-api';

/** Entra ID v2: /common discovery names the `{tenantid}` template; each tenant's its own issuer. */
function entraDiscovery(document: Readonly<Record<string, unknown>>, path: string): Record<string, unknown> | undefined {
  const segment = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/.exec(path)?.[1];
  if (segment === undefined) return undefined;
  const origin = new URL(String(document['issuer'])).origin;
  return {
    ...document,
    ...NO_LOGOUT_CHANNELS,
    issuer: segment === 'common' || segment === 'organizations' ? `${origin}/{tenantid}/v2.0` : `${origin}/${segment}/v2.0`,
    // Entra ID: no RFC 7009 revocation, no RFC 9207 iss in the response; front-channel logout only
    revocation_endpoint: undefined,
    authorization_response_iss_parameter_supported: undefined,
    frontchannel_logout_supported: true,
    userinfo_endpoint: 'https://graph.microsoft.com/oidc/userinfo',
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
  };
}

const entra: Spec = {
  name: 'entra',
  behaviour: {
    issuerPath: '/common/v2.0',
    paths: {
      authorize: '/common/oauth2/v2.0/authorize',
      token: '/common/oauth2/v2.0/token',
      jwks: '/common/discovery/v2.0/keys',
      endSession: '/common/oauth2/v2.0/logout',
    },
    discovery: entraDiscovery,
    // one resource per access token: scopes of two resources are refused (AADSTS28000)
    authorizeError: (params) => (new Set(scopes(params).filter((s) => s.includes('/')).map((s) => s.slice(0, s.lastIndexOf('/')))).size > 1 ? 'invalid_scope' : undefined),
    callbackParams: () => ({ iss: undefined, session_state: randomBytes(8).toString('hex') }),
  },
  env: () => ({ OIDC_SCOPES: `openid profile email offline_access ${ENTRA_API}/.default`, OIDC_ALLOWED_TENANTS: ENTRA_TENANT }),
  rotation: 'rotate',
  sub: 'AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ',
  tokenType: 'Bearer',
  grantsRefresh: (params) => scopes(params).includes('offline_access'),
  audience: () => ENTRA_API,
  // v2 ID tokens: the tenant's issuer and tid, few profile claims (no email unless configured)
  idTokenClaims: (ctx) => ({ iss: `${new URL(ctx.issuer).origin}/${ENTRA_TENANT}/v2.0`, tid: ENTRA_TENANT, oid: '00000000-0000-0000-66f3-3332eca7ea81', name: 'Entra User', preferred_username: 'user@contoso.example', ver: '2.0', email: undefined }),
  apiAudience: ENTRA_API,
  apiIssuer: (rogue) => `${new URL(rogue.issuer).origin}/${ENTRA_TENANT}/v2.0`,
};

const AUTH0_API = 'https://api.bff.example';

const auth0: Spec = {
  name: 'auth0',
  behaviour: {
    // Auth0's issuer ends with a slash, and is compared exactly
    issuerPath: '/',
    paths: { authorize: '/authorize', token: '/oauth/token', jwks: '/.well-known/jwks.json', revoke: '/oauth/revoke', userinfo: '/userinfo', endSession: '/v2/logout' },
    // RP-Initiated Logout is off unless enabled in the tenant: no end_session_endpoint
    discovery: discoveryAt('/', { ...NO_LOGOUT_CHANNELS, end_session_endpoint: undefined, authorization_response_iss_parameter_supported: undefined }),
  },
  endSession: (params, state) => {
    const target = params['returnTo'];
    if (params['client_id'] === undefined) return { status: 200, body: 'signed out' };
    if (target === undefined || !state.postLogoutRedirectUris.includes(target)) return refusal('returnTo is not in the Allowed Logout URLs');
    return { location: target };
  },
  env: (rogue) => ({
    OIDC_EXTRA_AUTH_PARAMS: `audience=${AUTH0_API}`,
    OIDC_END_SESSION_URL: `${new URL(rogue.issuer).origin}/v2/logout`,
    OIDC_END_SESSION_REDIRECT_PARAM: 'returnTo',
  }),
  rotation: 'rotate-with-reuse-detection',
  sub: 'auth0|65a1b2c3d4e5f60718293a4b',
  tokenType: 'Bearer',
  grantsRefresh: (params) => scopes(params).includes('offline_access'),
  // opaque unless an API audience is requested
  audience: (params) => params['audience'],
  idTokenClaims: () => ({ name: 'Auth0 User', nickname: 'user', email: 'user@auth0.example', email_verified: true, updated_at: '2026-11-30T10:00:00.000Z' }),
  apiAudience: AUTH0_API,
};

const google: Spec = {
  name: 'google',
  behaviour: {
    paths: { authorize: '/o/oauth2/v2/auth', token: '/token', jwks: '/oauth2/v3/certs', revoke: '/revoke', userinfo: '/v1/userinfo' },
    discovery: discoveryAt('', {
      ...NO_LOGOUT_CHANNELS,
      end_session_endpoint: undefined,
      authorization_response_iss_parameter_supported: undefined,
      scopes_supported: ['openid', 'email', 'profile'],
      code_challenge_methods_supported: ['plain', 'S256'],
    }),
    // offline_access is not a Google scope
    authorizeError: (params) => (scopes(params).includes('offline_access') ? 'invalid_scope' : undefined),
  },
  env: () => ({ OIDC_SCOPES: 'openid profile email', OIDC_EXTRA_AUTH_PARAMS: 'access_type=offline&prompt=consent', OIDC_USERINFO: 'true' }),
  rotation: 'none',
  sub: '110169484474386276334',
  tokenType: 'Bearer',
  // a refresh token with access_type=offline at the first consent, and again only with prompt=consent
  grantsRefresh: (params, state) => {
    if (params['access_type'] !== 'offline') return false;
    const first = !state.consented.has(google.sub);
    state.consented.add(google.sub);
    return first || (params['prompt'] ?? '').split(' ').includes('consent');
  },
  audience: () => undefined,
  // few claims: no name, no auth_time (userinfo has the profile)
  idTokenClaims: (ctx) => ({ name: undefined, auth_time: undefined, sid: undefined, email: 'user@gmail.example', email_verified: true, azp: ctx.clientId }),
  apiAudience: undefined,
};

const keycloak: Spec = {
  name: 'keycloak',
  behaviour: {
    issuerPath: '/realms/demo',
    paths: {
      authorize: '/realms/demo/protocol/openid-connect/auth',
      token: '/realms/demo/protocol/openid-connect/token',
      jwks: '/realms/demo/protocol/openid-connect/certs',
      revoke: '/realms/demo/protocol/openid-connect/revoke',
      endSession: '/realms/demo/protocol/openid-connect/logout',
      userinfo: '/realms/demo/protocol/openid-connect/userinfo',
    },
    discovery: discoveryAt('/realms/demo', {}),
    // Keycloak adds session_state to every authorization response
    callbackParams: () => ({ session_state: randomBytes(16).toString('hex') }),
    // Keycloak 18+: id_token_hint or client_id, else an error page
    endSession: (params) => {
      if (params['id_token_hint'] === undefined && params['client_id'] === undefined) return refusal('Missing parameters: id_token_hint');
      const target = params['post_logout_redirect_uri'];
      return target === undefined ? { status: 200, body: 'You are logged out' } : { location: target };
    },
  },
  env: () => ({ OIDC_LOGIN_PARAMS_ALLOWED: 'kc_idp_hint,ui_locales', OIDC_FRONTCHANNEL_LOGOUT: 'true' }),
  rotation: 'rotate',
  sub: 'f3c2b1a0-1111-4222-8333-944455556666',
  // older Keycloak spells it in lower case (RFC 6749 §7.1: case-insensitive)
  tokenType: 'bearer',
  grantsRefresh: () => true,
  audience: () => 'urn:bff:api',
  idTokenClaims: () => ({ preferred_username: 'kc-user', name: 'Keycloak User', email: 'user@keycloak.example', typ: 'ID', session_state: randomBytes(8).toString('hex') }),
  apiAudience: 'urn:bff:api',
};

const SPECS: Readonly<Record<ProviderName, Spec>> = { okta, 'okta-org': oktaOrg, entra, auth0, google, keycloak };

export function emulate(name: ProviderName): Emulation {
  return emulation(SPECS[name]);
}

export const ENTRA = { tenant: ENTRA_TENANT, otherTenant: ENTRA_OTHER_TENANT } as const;
