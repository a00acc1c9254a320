/**
 * The local OpenID provider for `npm run demo` and the e2e tests: oidc-provider with one confidential
 * client (the gateway), the built-in login and consent pages (any login, any password), JWT access
 * tokens for the sample API, refresh tokens, RP-initiated and back-channel logout, and step-up
 * (`acr_values` urn:bff-demo:pwd or urn:bff-demo:mfa; `max_age`).
 *
 *   node --import tsx demo/provider.ts
 *
 * Environment (all optional): DEMO_PROVIDER_PORT (4000; 0 = any free port), DEMO_PROVIDER_HOST
 * (127.0.0.1), DEMO_GATEWAY_URL (http://localhost:3000), DEMO_CLIENT_ID (bff-demo), DEMO_CLIENT_SECRET
 * (bff-demo-secret), DEMO_API_AUDIENCE (urn:bff-demo:api), DEMO_ACCESS_TOKEN_TTL_S (300),
 * DEMO_TOKEN_ENDPOINT_AUTH_METHOD (client_secret_basic | client_secret_post), DEMO_RESOURCES (the
 * resource servers as `resource=scope ...` pairs, comma separated; default `DEMO_API_AUDIENCE=api`):
 * each gets JWT access tokens whose `aud` is its resource (RFC 8707, RFC 9068); the gateway's client
 * may also use the client_credentials grant for them. DEMO_DPOP (on | off | nonce): see dpopFeature().
 *
 * Key-based client authentication and FAPI 2.0 (see fapiSettings below): DEMO_CLIENT_JWKS_URI (the
 * gateway's `/auth/jwks.json`) or DEMO_CLIENT_JWKS (a JWK Set, public keys) registers the client with
 * `private_key_jwt` instead of its secret; DEMO_REQUIRE_PAR=true requires pushed authorization
 * requests; DEMO_FAPI2=true is a FAPI 2.0 provider: the `fapi` 2.0 profile, PAR required,
 * `private_key_jwt` only, DPoP-bound access tokens, ES256 ID tokens.
 *
 * stdout carries exactly one line, `{"event":"listening","issuer":"http://127.0.0.1:PORT"}`, for the
 * process that started it; everything else goes to stderr.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type RequestListener, type Server } from 'node:http';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider, { errors, interactionPolicy, type Account, type ClientMetadata, type Configuration, type InteractionPolicy, type Middleware } from 'oidc-provider';

type TokenEndpointAuthMethod = 'client_secret_basic' | 'client_secret_post';

interface ProviderSettings {
  port: number;
  host: string;
  gatewayUrl: string;
  clientId: string;
  clientSecret: string;
  audience: string;
  accessTokenTtlS: number;
  tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  /** Resource indicator → the scopes its tokens may carry. */
  resources: ReadonlyMap<string, readonly string[]>;
  fapi: FapiSettings;
  dpop: DpopMode;
}

// ---- DPoP (RFC 9449) -------------------------------------------------------------------------
/**
 * DEMO_DPOP: `on` (default, oidc-provider 9's own default: a token requested with a DPoP proof is
 * bound to its key, `token_type` DPoP, `cnf.jkt` in the JWT), `off` (the feature disabled: proofs
 * are ignored and every token is Bearer), `nonce` (on, and every proof must carry the provider's
 * nonce: a request without one gets 400 `use_dpop_nonce` with a `DPoP-Nonce` header, RFC 9449 §8).
 */
type DpopMode = 'on' | 'off' | 'nonce';

function readDpopMode(value: string | undefined, problems: string[]): DpopMode {
  const mode = value ?? 'on';
  if (mode === 'on' || mode === 'off' || mode === 'nonce') return mode;
  problems.push(`DEMO_DPOP must be on, off or nonce (got "${mode}")`);
  return 'on';
}

function dpopFeature(mode: DpopMode): NonNullable<NonNullable<Configuration['features']>['dPoP']> {
  if (mode === 'off') return { enabled: false };
  if (mode === 'on') return { enabled: true };
  // the nonces are HMACs under this secret, rotating over time (oidc-provider's ServerChallenge)
  return { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true };
}
// ----------------------------------------------------------------------------------------------

function readResources(value: string | undefined, audience: string, problems: string[]): Map<string, string[]> {
  const resources = new Map<string, string[]>();
  for (const pair of (value ?? `${audience}=api`).split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const [resource = '', scopes = ''] = pair.split('=', 2);
    if (!URL.canParse(resource)) problems.push(`DEMO_RESOURCES: "${resource}" is not an absolute URI`);
    resources.set(resource, scopes.split(/\s+/).filter((s) => s !== ''));
  }
  return resources;
}

function readSettings(env: NodeJS.ProcessEnv): ProviderSettings {
  const problems: string[] = [];
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name] ?? String(fallback);
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) problems.push(`${name} must be an integer from ${min} to ${max} (got "${raw}")`);
    return value;
  };
  const port = integer('DEMO_PROVIDER_PORT', 4000, 0, 65_535);
  const accessTokenTtlS = integer('DEMO_ACCESS_TOKEN_TTL_S', 300, 1, 86_400);
  const gatewayUrl = (env['DEMO_GATEWAY_URL'] ?? 'http://localhost:3000').replace(/\/+$/, '');
  if (URL.parse(gatewayUrl) === null) problems.push(`DEMO_GATEWAY_URL must be an absolute URL (got "${gatewayUrl}")`);
  const method = env['DEMO_TOKEN_ENDPOINT_AUTH_METHOD'] ?? 'client_secret_basic';
  if (method !== 'client_secret_basic' && method !== 'client_secret_post') {
    problems.push(`DEMO_TOKEN_ENDPOINT_AUTH_METHOD must be client_secret_basic or client_secret_post (got "${method}")`);
  }
  const audience = env['DEMO_API_AUDIENCE'] ?? 'urn:bff-demo:api';
  const resources = readResources(env['DEMO_RESOURCES'], audience, problems);
  const fapi = readFapiSettings(env, problems);
  const dpop = readDpopMode(env['DEMO_DPOP'], problems);
  if (problems.length > 0) throw new Error(`Invalid demo provider configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  return {
    port,
    host: env['DEMO_PROVIDER_HOST'] ?? '127.0.0.1',
    gatewayUrl,
    clientId: env['DEMO_CLIENT_ID'] ?? 'bff-demo',
    clientSecret: env['DEMO_CLIENT_SECRET'] ?? 'bff-demo-secret',
    audience,
    resources,
    dpop,
    accessTokenTtlS,
    tokenEndpointAuthMethod: method === 'client_secret_post' ? 'client_secret_post' : 'client_secret_basic',
    fapi,
  };
}

// ---- Key-based client authentication, PAR and FAPI 2.0 (DEMO_CLIENT_JWKS_URI, DEMO_CLIENT_JWKS,
// DEMO_REQUIRE_PAR, DEMO_FAPI2): applied on top of the configuration below, nothing else changes.

interface FapiSettings {
  /** The client's keys for private_key_jwt: a URL (the gateway's /auth/jwks.json) or a JWK Set. */
  clientKeys: { jwks_uri: string } | { jwks: { keys: JWK[] } } | undefined;
  requirePar: boolean;
  fapi2: boolean;
}

function readFapiSettings(env: NodeJS.ProcessEnv, problems: string[]): FapiSettings {
  const flag = (name: string): boolean => {
    const value = env[name] ?? 'false';
    if (value !== 'true' && value !== 'false') problems.push(`${name} must be true or false (got "${value}")`);
    return value === 'true';
  };
  const jwksUri = env['DEMO_CLIENT_JWKS_URI'];
  const jwks = env['DEMO_CLIENT_JWKS'];
  let clientKeys: FapiSettings['clientKeys'];
  if (jwksUri !== undefined && jwks !== undefined) problems.push('set DEMO_CLIENT_JWKS_URI or DEMO_CLIENT_JWKS, not both');
  else if (jwksUri !== undefined) {
    if (!URL.canParse(jwksUri)) problems.push(`DEMO_CLIENT_JWKS_URI must be an absolute URL (got "${jwksUri}")`);
    clientKeys = { jwks_uri: jwksUri };
  } else if (jwks !== undefined) {
    const set: unknown = JSON.parse(jwks);
    const keys: unknown = typeof set === 'object' && set !== null ? Reflect.get(set, 'keys') : undefined;
    if (!Array.isArray(keys)) problems.push('DEMO_CLIENT_JWKS must be a JWK Set ({"keys":[...]})');
    else clientKeys = { jwks: { keys: keys.filter((k): k is JWK => typeof k === 'object' && k !== null) } };
  }
  const fapi2 = flag('DEMO_FAPI2');
  if (fapi2 && clientKeys === undefined) problems.push('DEMO_FAPI2=true needs DEMO_CLIENT_JWKS_URI or DEMO_CLIENT_JWKS (private_key_jwt only)');
  return { clientKeys, requirePar: flag('DEMO_REQUIRE_PAR') || fapi2, fapi2 };
}

/** The configuration with the client, features and client authentication methods FapiSettings asks for. */
function withFapi(fapi: FapiSettings, configuration: Configuration): Configuration {
  const clients = (configuration.clients ?? []).map((client): ClientMetadata => {
    if (fapi.clientKeys === undefined) return client;
    const { client_secret: _secret, ...rest } = client;
    return {
      ...rest,
      token_endpoint_auth_method: 'private_key_jwt',
      ...fapi.clientKeys,
      // FAPI 2.0 §5.4.1: PS256, ES256 or EdDSA; the provider's ES256 key signs them
      ...(fapi.fapi2 ? { id_token_signed_response_alg: 'ES256', dpop_bound_access_tokens: true } : {}),
    };
  });
  return {
    ...configuration,
    clients,
    ...(fapi.fapi2 ? { clientAuthMethods: ['private_key_jwt'] } : {}),
    features: {
      ...configuration.features,
      // RFC 9126 §5: discovery then says require_pushed_authorization_requests
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: fapi.requirePar },
      // DPoP stays as DEMO_DPOP set it (on by default): the client's dpop_bound_access_tokens makes it required
      ...(fapi.fapi2 ? { fapi: { enabled: true, profile: '2.0' } } : {}),
    },
  };
}
// ---- end of the key-based client authentication, PAR and FAPI 2.0 block

/** `alice` is the documented demo user; any other login signs in as a user named after it (tests use several). */
function demoClaims(login: string): { sub: string } & Record<string, unknown> {
  if (login === 'alice') {
    return { sub: 'alice', name: 'Alice Example', given_name: 'Alice', family_name: 'Example', email: 'alice@example.com', email_verified: true };
  }
  return { sub: login, name: login };
}

// --- Step-up authentication (acr_values, max_age) -------------------------------------------
// The demo login asserts one of two authentication levels: a password (the default), or password
// plus a one-time code when the client asks for it with acr_values (the development login page asks
// for neither: any password will do). oidc-provider honours max_age by itself (its login prompt).
const ACR_PASSWORD = 'urn:bff-demo:pwd';
const ACR_MFA = 'urn:bff-demo:mfa';
/** acr → amr (RFC 8176 method names). */
const AUTHENTICATION_LEVELS: ReadonlyMap<string, string[]> = new Map([
  [ACR_PASSWORD, ['pwd']],
  [ACR_MFA, ['pwd', 'otp']],
]);

/** The requested acr_values this provider can assert, in the client's order of preference. */
function supportedAcrValues(acrValues: unknown): string[] {
  return typeof acrValues === 'string' ? acrValues.split(' ').filter((value) => AUTHENTICATION_LEVELS.has(value)) : [];
}

/**
 * acr_values are voluntary (OIDC Core §5.5.1.1), so oidc-provider does not prompt for them: this
 * check makes the login prompt run again when the session's level is not one the client asked for
 * and the provider can reach. Values it cannot reach are ignored, and the ID token then carries the
 * session's acr (what real providers do; the gateway refuses that answer).
 */
function stepUpPolicy(): InteractionPolicy {
  const policy = interactionPolicy.base();
  policy.get('login')?.checks.add(
    new interactionPolicy.Check('acr_values', 'the requested authentication level was not reached', (ctx) => {
      const wanted = supportedAcrValues(ctx.oidc.params['acr_values']);
      return wanted.length > 0 && !wanted.includes(ctx.oidc.acr ?? '') && ctx.oidc.result?.login === undefined;
    }),
  );
  return policy;
}

/**
 * The development login pages finish a login with `{ login: { accountId } }` only: the level the
 * client asked for (the first it prefers that the provider has) is added here, so the session, the
 * ID token and the access tokens carry its acr and amr.
 */
function assertRequestedLevel(provider: Provider): void {
  const finish = provider.interactionFinished.bind(provider);
  provider.interactionFinished = async (req, res, result, options) => {
    if (result.login === undefined) return finish(req, res, result, options);
    const { params } = await provider.interactionDetails(req, res);
    const acr = supportedAcrValues(params['acr_values'])[0] ?? ACR_PASSWORD;
    return finish(req, res, { ...result, login: { ...result.login, acr, amr: AUTHENTICATION_LEVELS.get(acr) ?? [] } }, options);
  };
}

/**
 * RFC 9068 §2.2.1: how the user authenticated, for the resource server's step-up decision (RFC 9470
 * §4). oidc-provider keeps it on the code or refresh token the access token is issued from.
 */
function authenticationOf(ctx: unknown): Record<string, unknown> {
  const oidc: unknown = typeof ctx === 'object' && ctx !== null ? Reflect.get(ctx, 'oidc') : undefined;
  const entities: unknown = typeof oidc === 'object' && oidc !== null ? Reflect.get(oidc, 'entities') : undefined;
  if (typeof entities !== 'object' || entities === null) return {};
  const source: unknown = Reflect.get(entities, 'AuthorizationCode') ?? Reflect.get(entities, 'RefreshToken');
  if (typeof source !== 'object' || source === null) return {};
  const acr: unknown = Reflect.get(source, 'acr');
  const amr: unknown = Reflect.get(source, 'amr');
  const authTime: unknown = Reflect.get(source, 'authTime');
  return { ...(typeof acr === 'string' ? { acr } : {}), ...(Array.isArray(amr) ? { amr } : {}), ...(typeof authTime === 'number' ? { auth_time: authTime } : {}) };
}
// --- end of step-up -------------------------------------------------------------------------

/** Fresh per run: nothing signed by an earlier run verifies against this one. */
async function signingKeys(): Promise<Array<Record<string, unknown>>> {
  return Promise.all(
    (['RS256', 'ES256'] as const).map(async (alg) => {
      const { privateKey } = await generateKeyPair(alg, { extractable: true });
      const jwk = await exportJWK(privateKey);
      return { ...jwk, alg, use: 'sig', kid: await calculateJwkThumbprint(jwk) };
    }),
  );
}

function configuration(settings: ProviderSettings, keys: Array<Record<string, unknown>>): Configuration {
  const { gatewayUrl, audience, accessTokenTtlS, resources } = settings;
  const resourceScopes = [...new Set([...resources.values()].flat())];
  const gatewayOrigin = new URL(gatewayUrl).origin;
  return withFapi(settings.fapi, {
    clients: [
      {
        client_id: settings.clientId,
        client_secret: settings.clientSecret,
        redirect_uris: [`${gatewayUrl}/auth/callback`],
        post_logout_redirect_uris: [`${gatewayUrl}/`],
        // client_credentials: the gateway's own tokens for its `client` routes
        grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
        response_types: ['code'],
        token_endpoint_auth_method: settings.tokenEndpointAuthMethod,
        backchannel_logout_uri: `${gatewayUrl}/auth/backchannel-logout`,
        backchannel_logout_session_required: true,
      },
    ],
    jwks: { keys },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    claims: {
      // how the user authenticated, in every ID token (as Keycloak and Entra ID do), not only when asked for
      openid: ['sub', 'acr', 'amr', 'auth_time'],
      profile: ['name', 'given_name', 'family_name'],
      email: ['email', 'email_verified'],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email', ...resourceScopes],
    responseTypes: ['code'],
    // Access tokens are JWTs for the sample API, so userinfo cannot be called with them: the ID
    // token carries the profile and email claims instead (OIDC Core 5.4 would move them to userinfo).
    conformIdTokenClaims: false,
    // RFC 9700 §2.1.1: PKCE for confidential clients too (oidc-provider supports only S256).
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      backchannelLogout: { enabled: true },
      clientCredentials: { enabled: true },
      dPoP: dpopFeature(settings.dpop),
      resourceIndicators: {
        enabled: true,
        // A grant without a `resource` parameter is for the API (DEMO_API_AUDIENCE) when it was
        // granted, else for the first resource granted at login (a route's own API).
        defaultResource: (_ctx, _client, oneOf) => Promise.resolve(oneOf === undefined || oneOf.includes(audience) ? audience : (oneOf[0] ?? audience)),
        useGrantedResource: () => Promise.resolve(true),
        getResourceServerInfo: (_ctx, resourceIndicator) => {
          const scopes = resources.get(resourceIndicator);
          if (scopes === undefined) return Promise.reject(new errors.InvalidTarget(`unknown resource ${resourceIndicator}`));
          return Promise.resolve({ scope: scopes.join(' '), audience: resourceIndicator, accessTokenFormat: 'jwt', accessTokenTTL: accessTokenTtlS });
        },
      },
    },
    findAccount: (_ctx, sub): Promise<Account> =>
      Promise.resolve({ accountId: sub, claims: () => Promise.resolve(demoClaims(sub)) }),
    // Lets the sample API greet the caller by name from the access token alone, and judge a step-up.
    extraTokenClaims: (ctx, token) => {
      if (token.kind !== 'AccessToken' || token.accountId === undefined) return Promise.resolve(undefined);
      const name = demoClaims(token.accountId)['name'];
      return Promise.resolve({ ...(typeof name === 'string' ? { name } : {}), ...authenticationOf(ctx) });
    },
    acrValues: [...AUTHENTICATION_LEVELS.keys()],
    interactions: { policy: stepUpPolicy() },
    // oidc-provider drops offline_access unless the request has prompt=consent (OIDC Core 11),
    // which the gateway does not send; any client allowed the refresh_token grant gets one. Such
    // tokens end with the provider session, so logging out at the provider also kills them.
    issueRefreshToken: (_ctx, client) => Promise.resolve(client.grantTypeAllowed('refresh_token')),
    // Rotation on every use; replaying a used refresh token revokes the whole grant.
    rotateRefreshToken: true,
    ttl: {
      AccessToken: accessTokenTtlS,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 24 * 3600,
      Interaction: 3600,
      Session: 24 * 3600,
      Grant: 24 * 3600,
    },
    // oidc-provider refuses to call loopback and private addresses (an SSRF guard), but the gateway's
    // back-channel logout endpoint is on loopback in the demo and the tests: lift the guard for it only.
    fetch: (url, options) => {
      if (new URL(url).origin !== gatewayOrigin) return fetch(url, options);
      const unguarded: RequestInit = { ...options };
      delete unguarded.dispatcher;
      return fetch(url, unguarded);
    },
  });
}

// The dev pages @import Google web fonts. Strip the import (nothing leaves the machine, nothing waits
// on the network) and forbid any other remote resource; form_post pages add their script hash to
// script-src themselves.
const CONTENT_SECURITY_POLICY = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'";
const REMOTE_IMPORT = /@import url\(\s*['"]?https?:\/\/[^)]*\)\s*;?/g;

const offlinePages: Middleware = async (ctx, next) => {
  ctx.set('content-security-policy', CONTENT_SECURITY_POLICY);
  await next();
  if (ctx.type === 'text/html' && typeof ctx.body === 'string') ctx.body = ctx.body.replace(REMOTE_IMPORT, '');
};

function logEvent(event: string, fields: Record<string, unknown>): void {
  process.stderr.write(`${JSON.stringify({ event, ...fields })}\n`);
}

function describeError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { error: String(error) };
  const description: unknown = Reflect.get(error, 'error_description');
  // e.g. `refresh token already used`: oidc-provider's reuse detection, which revokes the whole grant
  const detail: unknown = Reflect.get(error, 'error_detail');
  return { error: error.message, ...(typeof description === 'string' ? { error_description: description } : {}), ...(typeof detail === 'string' ? { error_detail: detail } : {}) };
}

async function listen(server: Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('server has no TCP address');
  return address.port;
}

async function main(): Promise<void> {
  const settings = readSettings(process.env);
  // oidc-provider prints its development notices with console.info; stdout is reserved for the
  // one machine-read line.
  console.info = console.error.bind(console);
  const keys = await signingKeys();

  let handle: RequestListener = (_req, res) => {
    res.writeHead(503, { 'retry-after': '1' }).end();
  };
  const server = createServer((req, res) => handle(req, res));
  // Listen first: with port 0 the issuer URL is only known once the port is bound.
  const port = await listen(server, settings.port, settings.host);
  const host = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
  const issuer = `http://${host}:${port}`;

  const provider = new Provider(issuer, configuration(settings, keys));
  provider.use(offlinePages);
  assertRequestedLevel(provider);
  for (const event of ['server_error', 'grant.error', 'authorization.error', 'end_session.error', 'revocation.error', 'backchannel.error']) {
    // Every oidc-provider error event passes (ctx, error, ...).
    provider.on(event, (_ctx: unknown, error: unknown) => logEvent(event, describeError(error)));
  }
  // tests count refreshes at the provider from these lines
  provider.on('grant.success', (ctx: unknown) => {
    const params: unknown = typeof ctx === 'object' && ctx !== null ? Reflect.get(Reflect.get(ctx, 'oidc') ?? {}, 'params') : undefined;
    const param = (name: string): unknown => (typeof params === 'object' && params !== null ? Reflect.get(params, name) : undefined);
    logEvent('grant.success', { grantType: param('grant_type'), resource: param('resource'), scope: param('scope') });
  });
  provider.on('backchannel.success', (_ctx: unknown, _client: unknown, accountId: unknown) => logEvent('backchannel.success', { accountId }));
  const callback = provider.callback();
  handle = (req, res) => void callback(req, res);

  const stop = (): void => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);

  process.stdout.write(`${JSON.stringify({ event: 'listening', issuer })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
