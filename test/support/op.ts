import { fileURLToPath } from 'node:url';
import { spawnChild, waitForLine, type Child } from './processes.js';

const PROVIDER_SCRIPT = fileURLToPath(new URL('../../demo/provider.ts', import.meta.url));

export interface OpOptions {
  /** The gateway's public URL: the client's redirect, post-logout and back-channel URIs hang off it. */
  gatewayUrl: string;
  accessTokenTtlS?: number;
  clientId?: string;
  clientSecret?: string;
  tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post';
  /**
   * Resource servers besides the default API, resource indicator → scopes: each gets JWT access
   * tokens with its own `aud` (resource indicators and client credentials are always enabled).
   */
  resources?: Readonly<Record<string, string>>;
  /** private_key_jwt instead of the secret: the client's keys by URL (the gateway's /auth/jwks.json) or as a JWK Set. */
  clientKeys?: { readonly jwksUri: string } | { readonly jwks: { readonly keys: readonly object[] } };
  /** Discovery says require_pushed_authorization_requests, and the provider refuses any other request. */
  requirePar?: boolean;
  /** A FAPI 2.0 provider (needs clientKeys): PAR, private_key_jwt only, DPoP-bound tokens. */
  fapi2?: boolean;
  /** DEMO_DPOP: `on` (default: tokens asked for with a proof are DPoP-bound), `off` (always Bearer), `nonce` (a DPoP nonce is required). */
  dpop?: 'on' | 'off' | 'nonce';
}

export interface RunningOp {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** The resource indicator every access token is issued for (a JWT with this `aud`). */
  audience: string;
  child: Child;
  stop(): Promise<void>;
}

const AUDIENCE = 'urn:bff-demo:api';

/**
 * Starts demo/provider.ts (oidc-provider) in its own process on a free loopback port. Sign in with
 * BrowserClient.signIn(): any login and password are accepted, `alice` has a full profile.
 */
export async function startOp(options: OpOptions): Promise<RunningOp> {
  // The defaults match testEnvironment() in gateway.ts.
  const clientId = options.clientId ?? 'bff-test';
  const clientSecret = options.clientSecret ?? 'bff-test-secret';
  const child = spawnChild(process.execPath, ['--import', 'tsx', PROVIDER_SCRIPT], {
    DEMO_PROVIDER_PORT: '0',
    DEMO_PROVIDER_HOST: '127.0.0.1',
    DEMO_GATEWAY_URL: options.gatewayUrl,
    DEMO_CLIENT_ID: clientId,
    DEMO_CLIENT_SECRET: clientSecret,
    DEMO_API_AUDIENCE: AUDIENCE,
    DEMO_ACCESS_TOKEN_TTL_S: String(options.accessTokenTtlS ?? 300),
    DEMO_TOKEN_ENDPOINT_AUTH_METHOD: options.tokenEndpointAuthMethod ?? 'client_secret_basic',
    DEMO_DPOP: options.dpop ?? 'on',
    DEMO_RESOURCES: Object.entries({ [AUDIENCE]: 'api', ...options.resources })
      .map(([resource, scopes]) => `${resource}=${scopes}`)
      .join(','),
    ...fapiEnvironment(options),
  });
  try {
    const [, issuer] = await waitForLine(child, /^\{"event":"listening","issuer":"([^"]+)"\}$/);
    if (issuer === undefined) throw new Error('listening line without issuer');
    return { issuer, clientId, clientSecret, audience: AUDIENCE, child, stop: () => stopGracefully(child) };
  } catch (error) {
    await child.stop();
    throw error;
  }
}

function fapiEnvironment(options: OpOptions): Record<string, string> {
  const keys = options.clientKeys;
  return {
    ...(keys === undefined ? {} : 'jwksUri' in keys ? { DEMO_CLIENT_JWKS_URI: keys.jwksUri } : { DEMO_CLIENT_JWKS: JSON.stringify(keys.jwks) }),
    ...(options.requirePar === true ? { DEMO_REQUIRE_PAR: 'true' } : {}),
    ...(options.fapi2 === true ? { DEMO_FAPI2: 'true' } : {}),
  };
}

/** SIGTERM so the provider's own shutdown runs; SIGKILL if it has not exited within 5 s. */
async function stopGracefully(child: Child): Promise<void> {
  const deadline = setTimeout(() => void child.stop('SIGKILL'), 5_000);
  try {
    await child.stop('SIGTERM');
  } finally {
    clearTimeout(deadline);
  }
}
