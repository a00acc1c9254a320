/**
 * The local OpenID provider for `npm run demo` and the e2e tests: oidc-provider with one confidential
 * client (the gateway), the built-in login and consent pages (any login, any password), JWT access
 * tokens for the sample API, refresh tokens, RP-initiated and back-channel logout.
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
 * stdout carries exactly one line, `{"event":"listening","issuer":"http://127.0.0.1:PORT"}`, for the
 * process that started it; everything else goes to stderr.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type RequestListener, type Server } from 'node:http';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import Provider, { errors, type Account, type Configuration, type Middleware } from 'oidc-provider';

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
  };
}

/** `alice` is the documented demo user; any other login signs in as a user named after it (tests use several). */
function demoClaims(login: string): { sub: string } & Record<string, unknown> {
  if (login === 'alice') {
    return { sub: 'alice', name: 'Alice Example', given_name: 'Alice', family_name: 'Example', email: 'alice@example.com', email_verified: true };
  }
  return { sub: login, name: login };
}

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
  return {
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
      openid: ['sub'],
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
    // Lets the sample API greet the caller by name from the access token alone.
    extraTokenClaims: (_ctx, token) => {
      const name = token.kind === 'AccessToken' && token.accountId !== undefined ? demoClaims(token.accountId)['name'] : undefined;
      return Promise.resolve(typeof name === 'string' ? { name } : undefined);
    },
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
  };
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
