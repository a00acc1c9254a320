import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { CompactSign, exportJWK, exportSPKI, generateKeyPair, type CompactJWSHeaderParameters, type CryptoKey, type JWK } from 'jose';
import type { Environment } from '../../src/config/config.js';
import { SESSION_STORE, type SessionStore } from '../../src/session/session-store.js';
import { BrowserClient } from './browser.js';
import { TOKEN_EXCHANGE_GRANT, TokenExchangeEmulation } from './rogue-token-exchange.js';
import { startGateway, type RunningGateway } from './gateway.js';
import { waitUntilReady } from './wait.js';

/**
 * A small OpenID provider that misbehaves on demand, in the spirit of the OpenID RP certification
 * (rp-* test plans): real keys, real signatures, a real code flow with PKCE and client_secret_basic.
 * The ID token (or the whole token response) of each code exchange comes from `scenario`, set per test.
 */

/** `rs256` and `es256` are published from the start; `rotated` once publish('rotated') is called; `unpublished` never. */
export type SigningKeyName = 'rs256' | 'es256' | 'rotated' | 'unpublished';
const INITIALLY_PUBLISHED: readonly SigningKeyName[] = ['rs256', 'es256'];

interface SigningKey {
  readonly alg: 'RS256' | 'ES256';
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  readonly publicPem: string;
}

/** Header members merged over `{ alg, typ: 'JWT', kid }`; undefined removes one. `alg` follows the key. */
export type HeaderOverrides = Readonly<Record<string, unknown>>;
/** Claims merged over the correct ones; undefined removes one. */
export type ClaimOverrides = Readonly<Record<string, unknown>>;

/** What the token endpoint answers to one valid code exchange. */
export interface ScenarioResult {
  /** A raw HTTP answer instead of a token response; everything else is ignored. */
  readonly http?: { readonly status: number; readonly body: string; readonly contentType?: string; readonly headers?: Readonly<Record<string, string>> };
  /** Sent as the id_token exactly as given (not signed here). */
  readonly idToken?: string;
  readonly claims?: ClaimOverrides;
  readonly header?: HeaderOverrides;
  /** Which key signs the ID token (default `rs256`). */
  readonly key?: SigningKeyName;
  /** Members merged over the token response; `id_token: undefined` leaves the ID token out. */
  readonly response?: Readonly<Record<string, unknown>>;
}

/** What a scenario knows about the exchange it answers, and tools to build tokens. */
export interface TokenContext {
  readonly issuer: string;
  readonly clientId: string;
  readonly code: string;
  /** The nonce the authorization request carried for this code. */
  readonly nonce: string | undefined;
  /** The authorization request behind this code (empty for a refresh). */
  readonly authorizationParams: Readonly<Record<string, string>>;
  /** Epoch seconds. */
  readonly now: number;
  /** The claims of a correct ID token for this exchange. */
  readonly claims: Readonly<Record<string, unknown>>;
  /** A real JWS over `claims` with one of the provider's keys. */
  sign(claims: ClaimOverrides, options?: { readonly key?: SigningKeyName; readonly header?: HeaderOverrides }): Promise<string>;
  /** An HMAC (HS256) JWS keyed with `secret`, e.g. the RSA public key's PEM bytes (key confusion). */
  signWithSecret(claims: ClaimOverrides, secret: Uint8Array, header?: HeaderOverrides): Promise<string>;
  /** An unsecured JWT (`alg: none`, empty signature). */
  unsigned(claims: ClaimOverrides): string;
  kid(key: SigningKeyName): string;
  publicKeyPem(key: SigningKeyName): string;
}

export type Scenario = (ctx: TokenContext) => ScenarioResult | Promise<ScenarioResult>;

/**
 * What the token endpoint answers to one refresh_token grant. `ctx.claims` are those of a correct
 * refreshed ID token (OIDC Core §12.2: no nonce, no auth_time); `ctx.code` is the refresh token sent.
 * A result without `claims`, `header`, `key` or `idToken` carries no ID token.
 */
export type RefreshScenario = (ctx: TokenContext) => ScenarioResult | Promise<ScenarioResult>;

/** A correct refresh: a new access token and a rotated refresh token, no ID token (as glewlwyd does). */
export const correctRefresh: RefreshScenario = () => ({ response: { id_token: undefined } });

export interface AuthorizationRequestRecord {
  readonly params: Readonly<Record<string, string>>;
  /** The code issued, or undefined when the request was refused. */
  readonly code: string | undefined;
}

export type ClientAuthentication = 'client_secret_basic' | 'client_secret_post' | 'none';

export interface TokenRequestRecord {
  readonly params: Readonly<Record<string, string>>;
  readonly clientAuthentication: ClientAuthentication;
  /** The Basic credentials decoded per RFC 6749 §2.3.1 matched the registered client. */
  readonly clientAuthenticated: boolean;
  /** BASE64URL(SHA-256(code_verifier)) equals the stored code_challenge; undefined when not checked. */
  readonly pkceValid: boolean | undefined;
  /** `issued` (the scenario answered), or the OAuth error sent. */
  readonly outcome: string;
}

export interface EndpointCallRecord {
  readonly params: Readonly<Record<string, string>>;
  readonly clientAuthenticated: boolean;
}

export interface RogueOp {
  readonly issuer: string;
  readonly clientId: string;
  /** Answers the next code exchanges; reset() restores a correct RS256 ID token. */
  scenario: Scenario;
  /** Answers the next refresh_token grants; reset() restores correctRefresh. */
  refreshScenario: RefreshScenario;
  /** Refresh grants received so far (whatever was answered). */
  readonly refreshCount: number;
  /** A raw answer for the JWKS endpoint instead of the published keys (reset() clears it). */
  jwksOverride: { readonly status: number; readonly body: string } | undefined;
  /** Fields replaced in the discovery document (reset() clears them; the gateway reads discovery at start-up). */
  discoveryOverrides: Readonly<Record<string, unknown>>;
  readonly authorizationRequests: readonly AuthorizationRequestRecord[];
  readonly tokenRequests: readonly TokenRequestRecord[];
  readonly revocationRequests: readonly EndpointCallRecord[];
  readonly endSessionRequests: readonly EndpointCallRecord[];
  /** Every id_token the token endpoint sent (to check they never reach a log). */
  readonly issuedIdTokens: readonly string[];
  /** Scenario or server errors: a test whose rogue fails proves nothing, so tests assert this is empty. */
  readonly failures: readonly string[];
  readonly jwksRequests: number;
  /**
   * The provider's clock (epoch ms) for the tokens it issues: real time unless a test shares the
   * gateway's moved clock with it (time passes for both), so tokens issued "later" are valid later.
   */
  now: () => number;
  /** Answers the userinfo endpoint for a known access token; reset() restores the correct answer. */
  userinfoScenario: UserinfoScenario;
  readonly userinfoRequests: readonly EndpointCallRecord[];
  /** A real JWS with the provider's `rs256` key (logout tokens, JWT access tokens). */
  sign(claims: ClaimOverrides): Promise<string>;
  /** RFC 8693 token exchange (test/support/rogue-token-exchange.ts); reset() clears its targets and records. */
  readonly tokenExchange: TokenExchangeEmulation;
  /** Adds a key to the JWKS (key rotation). */
  publish(key: SigningKeyName): void;
  kid(key: SigningKeyName): string;
  /** Restores the correct scenario and clears the records; published keys stay (the gateway caches them). */
  reset(): void;
  /** Stops listening and drops open connections: the provider is down. */
  stop(): Promise<void>;
  /** Listens again on the same port (its URL is its issuer). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** The discovery document served at `path`, from the correct one; undefined: 404. */
export type DiscoveryBehaviour = (document: Readonly<Record<string, unknown>>, path: string) => Record<string, unknown> | undefined;

const ENDPOINTS = ['authorize', 'token', 'jwks', 'revoke', 'endSession', 'userinfo'] as const;
export type EndpointName = (typeof ENDPOINTS)[number];

/** An answer of the end-session endpoint: a redirect, or a page (a refusal). */
export type EndSessionAnswer = { readonly location: string } | { readonly status: number; readonly body: string };

/**
 * How one provider deviates (its documented behaviour; see provider-emulations.ts). Fixed for the
 * provider's life: reset() leaves it alone.
 */
export interface ProviderBehaviour {
  /** The issuer below the origin: '' (the default), '/' (a trailing slash), '/realms/demo', ... */
  readonly issuerPath?: string;
  /** Endpoint paths (defaults /authorize, /token, /jwks, /revoke, /end-session, /userinfo). */
  readonly paths?: Partial<Record<EndpointName, string>>;
  /**
   * The discovery document served at `path` (any path ending in /.well-known/openid-configuration),
   * from the correct one for the issuer; undefined: 404. Fields set to undefined are left out.
   * Without it, only the issuer's own path serves the correct document.
   */
  readonly discovery?: DiscoveryBehaviour;
  /** An OAuth error code to send back for an authorization request this provider refuses. */
  readonly authorizeError?: (params: Readonly<Record<string, string>>) => string | undefined;
  /** Parameters merged over the authorization response's code, state and iss (undefined removes one). */
  readonly callbackParams?: (params: Readonly<Record<string, string>>) => Readonly<Record<string, string | undefined>>;
  /** The end-session endpoint's answer (default: back to post_logout_redirect_uri, if any). */
  readonly endSession?: (params: Readonly<Record<string, string>>) => EndSessionAnswer;
}

export interface RogueOpOptions {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly behaviour?: ProviderBehaviour;
}

/** The userinfo answer for an access token the provider issued, with the claims of its ID token. */
export type UserinfoScenario = (claims: Readonly<Record<string, unknown>>) => { readonly status: number; readonly body: unknown };

/** OIDC Core §5.3.2: the user's claims, `sub` first. */
export const correctUserinfo: UserinfoScenario = (claims) => ({
  status: 200,
  body: { sub: claims['sub'], name: 'Rogue User', email: 'rogue@example.test', picture: 'https://pictures.example/rogue.png' },
});

interface IssuedCode {
  readonly redirectUri: string;
  readonly nonce: string | undefined;
  readonly params: Readonly<Record<string, string>>;
  readonly codeChallenge: string;
  used: boolean;
}

const MAX_BODY_BYTES = 64 * 1024;
const ID_TOKEN_LIFETIME_S = 300;
const VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;

export const correctIdToken: Scenario = () => ({});

async function makeKey(name: SigningKeyName, alg: 'RS256' | 'ES256'): Promise<SigningKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `${name}-${randomBytes(6).toString('hex')}`;
  return { alg, kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }, publicPem: await exportSPKI(publicKey) };
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** Overrides applied to a copy: a present value replaces, undefined removes. */
function merged(base: Readonly<Record<string, unknown>>, overrides: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const result: Record<string, unknown> = { ...base };
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete result[name];
    else result[name] = value;
  }
  return result;
}

/** `alg` always follows the key: a mismatching one is what signWithSecret() and unsigned() are for. */
function jwsHeader(alg: CompactJWSHeaderParameters['alg'], fields: Readonly<Record<string, unknown>>, overrides: HeaderOverrides): CompactJWSHeaderParameters {
  if (overrides['alg'] !== undefined) throw new Error('header overrides cannot change alg; use signWithSecret() or unsigned()');
  return { ...merged(fields, overrides), alg };
}

function withoutUndefined(record: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined));
}

function formDecode(value: string): string {
  return decodeURIComponent(value.replace(/\+/g, ' '));
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** RFC 6749 §2.3.1: `Basic base64(urlencode(id) ":" urlencode(secret))`. */
function basicCredentials(header: string | undefined): { id: string; secret: string } | undefined {
  const match = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header ?? '');
  if (match?.[1] === undefined) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  try {
    return { id: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) };
  } catch {
    return undefined; // malformed percent-encoding: not credentials
  }
}

async function readForm(request: IncomingMessage): Promise<Record<string, string>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > MAX_BODY_BYTES) throw new Error('request body too large');
    chunks.push(buffer);
  }
  return Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
}

function escapeAttribute(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function send(response: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body), ...headers });
  response.end(body);
}

function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  send(response, status, JSON.stringify(body), { 'content-type': 'application/json', ...headers });
}

/** Starts the rogue provider on 127.0.0.1, port 0; its issuer is its own URL. */
export async function startRogueOp(options: RogueOpOptions): Promise<RogueOp> {
  const keys: Record<SigningKeyName, SigningKey> = {
    rs256: await makeKey('rs256', 'RS256'),
    es256: await makeKey('es256', 'ES256'),
    rotated: await makeKey('rotated', 'RS256'),
    unpublished: await makeKey('unpublished', 'RS256'),
  };
  const published = new Set<SigningKeyName>(INITIALLY_PUBLISHED);
  const codes = new Map<string, IssuedCode>();
  const authorizationRequests: AuthorizationRequestRecord[] = [];
  const tokenRequests: TokenRequestRecord[] = [];
  const revocationRequests: EndpointCallRecord[] = [];
  const endSessionRequests: EndpointCallRecord[] = [];
  const userinfoRequests: EndpointCallRecord[] = [];
  /** The ID token claims of each access token issued, for the userinfo endpoint. */
  const accessTokenClaims = new Map<string, Readonly<Record<string, unknown>>>();
  const issuedIdTokens: string[] = [];
  const behaviour = options.behaviour ?? {};
  const paths: Record<EndpointName, string> = {
    authorize: '/authorize',
    token: '/token',
    jwks: '/jwks',
    revoke: '/revoke',
    endSession: '/end-session',
    userinfo: '/userinfo',
    ...behaviour.paths,
  };
  const failures: string[] = [];
  let jwksRequests = 0;
  let refreshCount = 0;

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      failures.push(`${request.method ?? ''} ${request.url ?? ''}: ${error instanceof Error ? error.message : String(error)}`);
      if (!response.headersSent) sendJson(response, 500, { error: 'server_error' });
      else response.destroy();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('rogue provider has no TCP address');
  const port = address.port;
  const origin = `http://127.0.0.1:${port}`;
  const issuer = `${origin}${behaviour.issuerPath ?? ''}`;
  const issuerDiscoveryPath = `${new URL(issuer).pathname.replace(/\/+$/, '')}/.well-known/openid-configuration`;

  async function sign(claims: ClaimOverrides, key: SigningKeyName = 'rs256', header: HeaderOverrides = {}): Promise<string> {
    const signer = keys[key];
    return new CompactSign(Buffer.from(JSON.stringify(claims))).setProtectedHeader(jwsHeader(signer.alg, { typ: 'JWT', kid: signer.kid }, header)).sign(signer.privateKey);
  }

  function context(code: string, issued: IssuedCode, refresh = false): TokenContext {
    const now = Math.floor(rogue.now() / 1000);
    const claims = withoutUndefined({
      iss: issuer,
      sub: 'rogue-user',
      aud: options.clientId,
      exp: now + ID_TOKEN_LIFETIME_S,
      iat: now,
      auth_time: now,
      nonce: issued.nonce,
      sid: randomBytes(8).toString('hex'),
      name: 'Rogue User',
      email: 'rogue@example.test',
    });
    if (refresh) {
      // OIDC Core §12.2: a refreshed ID token carries no nonce; auth_time would be the original one
      delete claims['nonce'];
      delete claims['auth_time'];
    }
    return {
      issuer,
      clientId: options.clientId,
      code,
      nonce: issued.nonce,
      authorizationParams: issued.params,
      now,
      claims,
      sign: (overrides, signOptions = {}) => sign(overrides, signOptions.key, signOptions.header),
      signWithSecret: (overrides, secret, header = {}) =>
        new CompactSign(Buffer.from(JSON.stringify(overrides))).setProtectedHeader(jwsHeader('HS256', { typ: 'JWT' }, header)).sign(secret),
      unsigned: (overrides) => `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(overrides)}.`,
      kid: (key) => keys[key].kid,
      publicKeyPem: (key) => keys[key].publicPem,
    };
  }

  function discoveryDocument(path: string): Record<string, unknown> | undefined {
    const document: Record<string, unknown> = {
      issuer,
      authorization_endpoint: `${origin}${paths.authorize}`,
      token_endpoint: `${origin}${paths.token}`,
      jwks_uri: `${origin}${paths.jwks}`,
      end_session_endpoint: `${origin}${paths.endSession}`,
      revocation_endpoint: `${origin}${paths.revoke}`,
      userinfo_endpoint: `${origin}${paths.userinfo}`,
      response_types_supported: ['code'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256', 'ES256'],
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: ['client_secret_basic'],
      grant_types_supported: ['authorization_code', 'refresh_token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      // RFC 9207: every authorization response carries `iss`
      authorization_response_iss_parameter_supported: true,
      // both logout channels, with iss and sid (Back-Channel Logout §2.1, Front-Channel Logout §3)
      backchannel_logout_supported: true,
      backchannel_logout_session_supported: true,
      frontchannel_logout_supported: true,
      frontchannel_logout_session_supported: true,
    };
    const served = behaviour.discovery === undefined ? (path === issuerDiscoveryPath ? document : undefined) : behaviour.discovery(document, path);
    return served === undefined ? undefined : { ...served, ...rogue.discoveryOverrides };
  }

  /** The request's route: `GET discovery` for any discovery path, else the endpoint its path names. */
  function routeOf(method: string, pathname: string): string {
    if (pathname.endsWith('/.well-known/openid-configuration')) return `${method} discovery`;
    const endpoint = ENDPOINTS.find((name) => paths[name] === pathname);
    return `${method} ${endpoint ?? pathname}`;
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', origin);
    const route = routeOf(request.method ?? 'GET', url.pathname);
    switch (route) {
      case 'GET discovery': {
        const document = discoveryDocument(url.pathname);
        if (document === undefined) sendJson(response, 404, { error: 'not_found' });
        else sendJson(response, 200, document);
        return;
      }
      case 'GET jwks':
        jwksRequests++;
        if (rogue.jwksOverride !== undefined) send(response, rogue.jwksOverride.status, rogue.jwksOverride.body, { 'content-type': 'application/json' });
        else sendJson(response, 200, { keys: [...published].map((name) => keys[name].publicJwk) });
        return;
      case 'GET authorize':
        authorize(url, response);
        return;
      case 'POST token':
        await token(request, response);
        return;
      case 'POST revoke': {
        const params = await readForm(request);
        revocationRequests.push({ params, clientAuthenticated: authenticated(request) });
        send(response, 200, '');
        return;
      }
      case 'GET endSession': {
        const params = Object.fromEntries(url.searchParams);
        endSessionRequests.push({ params, clientAuthenticated: false });
        const target = params['post_logout_redirect_uri'];
        const answer: EndSessionAnswer = behaviour.endSession?.(params) ?? (target === undefined ? { status: 200, body: 'signed out' } : { location: target });
        if ('location' in answer) send(response, 302, '', { location: answer.location });
        else send(response, answer.status, answer.body, { 'content-type': 'text/plain' });
        return;
      }
      case 'GET userinfo': {
        const token = /^Bearer (\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
        userinfoRequests.push({ params: token === undefined ? {} : { access_token: token }, clientAuthenticated: false });
        const claims = token === undefined ? undefined : accessTokenClaims.get(token);
        if (claims === undefined) {
          sendJson(response, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
          return;
        }
        const answer = rogue.userinfoScenario(claims);
        sendJson(response, answer.status, answer.body);
        return;
      }
      case 'GET /logout-page': {
        // the provider's own "you are signed out" page: it loads each client's front-channel logout
        // URI (with iss and sid) in an iframe (Front-Channel Logout 1.0 §2); `frame` gives them
        const frames = url.searchParams.getAll('frame').map((src, i) => `<iframe id="frame-${i}" title="client ${i}" src="${escapeAttribute(src)}"></iframe>`);
        send(response, 200, `<!doctype html><html><head><meta charset="utf-8"><title>Signed out</title></head><body>${frames.join('')}</body></html>`, {
          'content-type': 'text/html; charset=utf-8',
        });
        return;
      }
      default:
        sendJson(response, 404, { error: 'not_found' });
    }
  }

  function authenticated(request: IncomingMessage): boolean {
    const credentials = basicCredentials(request.headers.authorization);
    return credentials !== undefined && sameText(credentials.id, options.clientId) && sameText(credentials.secret, options.clientSecret);
  }

  function authorize(url: URL, response: ServerResponse): void {
    const params = Object.fromEntries(url.searchParams);
    const redirectUri = params['redirect_uri'];
    // RFC 6749 §4.1.2.1: never redirect to an unverified client or redirect_uri
    if (params['client_id'] !== options.clientId || redirectUri === undefined || !/^https?:\/\//.test(redirectUri)) {
      authorizationRequests.push({ params, code: undefined });
      send(response, 400, 'unknown client or redirect_uri', { 'content-type': 'text/plain' });
      return;
    }
    const back = new URL(redirectUri);
    const challenge = params['code_challenge'];
    const refusal = behaviour.authorizeError?.(params);
    const answer: Record<string, string | undefined> = {};
    if (params['response_type'] !== 'code' || params['code_challenge_method'] !== 'S256' || challenge === undefined || !/(^| )openid( |$)/.test(params['scope'] ?? '')) {
      authorizationRequests.push({ params, code: undefined });
      answer['error'] = 'invalid_request';
    } else if (refusal !== undefined) {
      authorizationRequests.push({ params, code: undefined });
      answer['error'] = refusal;
    } else {
      const code = randomBytes(24).toString('base64url');
      codes.set(code, { redirectUri, nonce: params['nonce'], params, codeChallenge: challenge, used: false });
      authorizationRequests.push({ params, code });
      answer['code'] = code;
    }
    answer['state'] = params['state'];
    answer['iss'] = issuer;
    for (const [name, value] of Object.entries(merged(answer, behaviour.callbackParams?.(params) ?? {}))) back.searchParams.set(name, String(value));
    send(response, 302, '', { location: back.href });
  }

  async function token(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const params = await readForm(request);
    const clientAuthentication: ClientAuthentication =
      request.headers.authorization !== undefined ? 'client_secret_basic' : params['client_secret'] !== undefined ? 'client_secret_post' : 'none';
    // registered for client_secret_basic only (OIDC Core §9)
    const clientAuthenticated = clientAuthentication === 'client_secret_basic' && authenticated(request);
    const record = (outcome: string, pkceValid?: boolean): void => {
      tokenRequests.push({ params, clientAuthentication, clientAuthenticated, pkceValid, outcome });
    };
    if (!clientAuthenticated) {
      record('invalid_client');
      sendJson(response, 401, { error: 'invalid_client' }, { 'www-authenticate': 'Basic realm="rogue-op"' });
      return;
    }
    if (params['grant_type'] === 'refresh_token') {
      refreshCount++;
      await answerRefresh(params['refresh_token'] ?? '', response);
      record('refreshed');
      return;
    }
    if (params['grant_type'] === TOKEN_EXCHANGE_GRANT) {
      const { status, body } = rogue.tokenExchange.answer(params);
      record(typeof body['error'] === 'string' ? body['error'] : 'exchanged');
      sendJson(response, status, body);
      return;
    }
    if (params['grant_type'] !== 'authorization_code') {
      record('unsupported_grant_type');
      sendJson(response, 400, { error: 'unsupported_grant_type' });
      return;
    }
    const code = params['code'] ?? '';
    const issued = codes.get(code);
    const verifier = params['code_verifier'];
    // RFC 7636 §4.6
    const pkceValid =
      issued !== undefined && verifier !== undefined && VERIFIER.test(verifier) && createHash('sha256').update(verifier).digest('base64url') === issued.codeChallenge;
    if (issued === undefined || issued.used || params['redirect_uri'] !== issued.redirectUri || !pkceValid) {
      // RFC 6749 §4.1.2: a code is single use
      if (issued !== undefined) issued.used = true;
      record('invalid_grant', issued === undefined ? undefined : pkceValid);
      sendJson(response, 400, { error: 'invalid_grant' });
      return;
    }
    issued.used = true;
    const ctx = context(code, issued);
    const result = await rogue.scenario(ctx);
    record('issued', true);
    await answerTokens(ctx, result, response, true);
  }

  async function answerRefresh(refreshToken: string, response: ServerResponse): Promise<void> {
    const ctx = context(refreshToken, { redirectUri: '', nonce: undefined, params: {}, codeChallenge: '', used: true }, true);
    const result = await rogue.refreshScenario(ctx);
    const withIdToken = result.idToken !== undefined || result.claims !== undefined || result.header !== undefined || result.key !== undefined;
    await answerTokens(ctx, result, response, withIdToken);
  }

  async function answerTokens(ctx: TokenContext, result: ScenarioResult, response: ServerResponse, withIdToken: boolean): Promise<void> {
    if (result.http !== undefined) {
      send(response, result.http.status, result.http.body, { 'content-type': result.http.contentType ?? 'application/json', ...result.http.headers });
      return;
    }
    const idToken = withIdToken ? (result.idToken ?? (await sign(merged(ctx.claims, result.claims ?? {}), result.key, result.header))) : undefined;
    const body = merged(
      {
        access_token: randomBytes(24).toString('base64url'),
        token_type: 'Bearer',
        expires_in: 300,
        refresh_token: randomBytes(24).toString('base64url'),
        scope: 'openid profile email offline_access',
        id_token: idToken,
      },
      result.response ?? {},
    );
    if (typeof body.id_token === 'string') issuedIdTokens.push(body.id_token);
    if (typeof body.access_token === 'string') accessTokenClaims.set(body.access_token, merged(ctx.claims, result.claims ?? {}));
    if (typeof body.access_token === 'string') rogue.tokenExchange.issued.add(body.access_token);
    sendJson(response, 200, body);
  }

  const rogue: RogueOp = {
    issuer,
    clientId: options.clientId,
    scenario: correctIdToken,
    refreshScenario: correctRefresh,
    get refreshCount() {
      return refreshCount;
    },
    jwksOverride: undefined,
    discoveryOverrides: {},
    now: () => Date.now(),
    userinfoScenario: correctUserinfo,
    userinfoRequests,
    sign: (claims) => sign(claims),
    authorizationRequests,
    tokenRequests,
    revocationRequests,
    endSessionRequests,
    issuedIdTokens,
    failures,
    get jwksRequests() {
      return jwksRequests;
    },
    tokenExchange: new TokenExchangeEmulation(),
    publish(key) {
      published.add(key);
    },
    kid: (key) => keys[key].kid,
    reset() {
      rogue.scenario = correctIdToken;
      rogue.refreshScenario = correctRefresh;
      refreshCount = 0;
      rogue.jwksOverride = undefined;
      rogue.discoveryOverrides = {};
      rogue.userinfoScenario = correctUserinfo;
      rogue.tokenExchange.reset();
      for (const list of [authorizationRequests, tokenRequests, revocationRequests, endSessionRequests, userinfoRequests, failures]) list.length = 0;
    },
    async stop() {
      if (!server.listening) return;
      const closed = once(server, 'close');
      server.close();
      server.closeAllConnections();
      await closed;
    },
    async restart() {
      if (server.listening) return;
      server.listen(port, '127.0.0.1');
      await once(server, 'listening');
    },
    close: () => rogue.stop(),
  };
  return rogue;
}

// ---------------------------------------------------------------------------------------------
// The rogue provider wired to a real gateway, and what a test observes of one login.

/** The fields of an RFC 9457 problem the tests assert on. */
export interface Problem {
  readonly type: string;
  readonly status: number;
  readonly code: string;
  readonly detail?: string;
}

/** One HTTP answer, read completely (so a failed assertion shows the body). */
export interface Answer {
  readonly status: number;
  readonly contentType: string;
  readonly retryAfter: string | null;
  readonly location: string | null;
  /** The body parsed as JSON, or undefined. */
  readonly json: unknown;
  readonly problem: Problem | undefined;
  readonly body: string;
}

export interface StartedLogin {
  readonly browser: BrowserClient;
  /** The provider's redirect back to the gateway (code, state, iss), not yet requested. */
  readonly callback: URL;
}

export interface LoginOutcome {
  /** What /auth/callback answered (requested as a fetch that accepts JSON unless told otherwise). */
  readonly callback: Answer;
  /** /auth/me in the same browser afterwards. */
  readonly me: Answer;
  /** Sessions in the gateway's store after the callback minus before. */
  readonly sessionsCreated: number;
}

export interface RogueStack {
  readonly rogue: RogueOp;
  readonly gateway: RunningGateway;
  /** /auth/login in `browser` (a fresh one by default), through the rogue's authorization endpoint, stopped before the callback. */
  startLogin(browser?: BrowserClient): Promise<StartedLogin>;
  /** Requests `url` (a callback) in `browser` and observes the result. `accept` defaults to JSON. */
  finishLogin(browser: BrowserClient, url: URL, accept?: string): Promise<LoginOutcome>;
  /** A whole login whose code exchange the rogue answers with `scenario`. */
  login(scenario?: Scenario): Promise<LoginOutcome>;
  stop(): Promise<void>;
}

function problemOf(json: unknown): Problem | undefined {
  if (typeof json !== 'object' || json === null || !('type' in json) || !('status' in json) || !('code' in json)) return undefined;
  const { type, status, code } = json;
  if (typeof type !== 'string' || typeof status !== 'number' || typeof code !== 'string') return undefined;
  const detail = 'detail' in json && typeof json.detail === 'string' ? json.detail : undefined;
  return { type, status, code, ...(detail === undefined ? {} : { detail }) };
}

export async function answerOf(response: Response): Promise<Answer> {
  const body = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    json = undefined; // not JSON: the assertions look at `body`
  }
  return {
    status: response.status,
    contentType: response.headers.get('content-type') ?? '',
    retryAfter: response.headers.get('retry-after'),
    location: response.headers.get('location'),
    json,
    problem: problemOf(json),
    body,
  };
}

export const TEST_CLIENT_ID = 'bff-rogue';
// RFC 6749 §2.3.1: each of these characters must be form-urlencoded inside the Basic credentials
export const TEST_CLIENT_SECRET = 'rogue:secret with spaces+plus/%25&=';

/**
 * The rogue provider (behaving as `behaviour` says), and the real gateway (in this process)
 * configured for it, ready for logins. `env` may depend on the provider (its issuer).
 */
export async function startRogueStack(env: Environment | ((rogue: RogueOp) => Promise<Environment>) = {}, behaviour?: ProviderBehaviour): Promise<RogueStack> {
  const rogue = await startRogueOp({ clientId: TEST_CLIENT_ID, clientSecret: TEST_CLIENT_SECRET, ...(behaviour === undefined ? {} : { behaviour }) });
  let gateway: RunningGateway;
  try {
    gateway = await startGateway({
      OIDC_ISSUER: rogue.issuer,
      OIDC_CLIENT_ID: TEST_CLIENT_ID,
      OIDC_CLIENT_SECRET: TEST_CLIENT_SECRET,
      ...(typeof env === 'function' ? await env(rogue) : env),
    });
  } catch (error) {
    await rogue.close();
    throw error;
  }
  const stopAll = async (): Promise<void> => {
    await gateway.close();
    await rogue.close();
  };
  try {
    await waitUntilReady(gateway.url);
  } catch (error) {
    await stopAll();
    throw error;
  }
  const sessions = gateway.app.get<SessionStore>(SESSION_STORE);
  const callbackPrefix = `${gateway.url}/auth/callback`;

  const stack: RogueStack = {
    rogue,
    gateway,
    async startLogin(browser = new BrowserClient()) {
      const navigation = await browser.navigate(`${gateway.url}/auth/login`, { stopAt: (url) => url.href.startsWith(callbackPrefix) });
      if (navigation.stoppedAt === undefined) {
        throw new Error(`login did not come back to the callback: ${navigation.visited.join(' -> ')} ended with ${navigation.response.status}`);
      }
      return { browser, callback: new URL(navigation.stoppedAt) };
    },
    async finishLogin(browser, url, accept = 'application/json') {
      const before = sessions.size() ?? 0;
      const callback = await answerOf(await browser.request(url.href, { headers: { accept } }));
      const sessionsCreated = (sessions.size() ?? 0) - before;
      const me = await answerOf(await browser.request(`${gateway.url}/auth/me`, { headers: { accept: 'application/json' } }));
      return { callback, me, sessionsCreated };
    },
    async login(scenario = correctIdToken) {
      rogue.scenario = scenario;
      const { browser, callback } = await stack.startLogin();
      return stack.finishLogin(browser, callback);
    },
    stop: stopAll,
  };
  return stack;
}

/** A login that worked: a redirect to the app, one new session, /auth/me shows the rogue's user. */
export function expectSignedIn(outcome: LoginOutcome): void {
  const { status, location, problem } = outcome.callback;
  expect({ status, location, problem }).toEqual({ status: 302, location: '/', problem: undefined });
  expect(outcome.sessionsCreated).toBe(1);
  expect(outcome.me).toMatchObject({ status: 200, json: { sub: 'rogue-user', claims: { name: 'Rogue User' } } });
}

/** /healthz still answers 200 and a correct login still works (the rogue is reset for it). */
export async function expectStillHealthy(stack: RogueStack): Promise<void> {
  expect(stack.rogue.failures).toEqual([]);
  const health = await fetch(`${stack.gateway.url}/healthz`);
  expect(health.status).toBe(200);
  stack.rogue.reset();
  expectSignedIn(await stack.login());
}

/**
 * The callback failed with exactly this problem (JSON, as a fetch asked for), left no session
 * behind, and the gateway is still healthy and able to sign someone in.
 */
export async function expectRejectedWithoutSession(stack: RogueStack, outcome: LoginOutcome, status: number, code: string): Promise<void> {
  expect(outcome.callback).toMatchObject({ status, contentType: expect.stringMatching(/^application\/problem\+json/), problem: { status, code, type: `/problems/${code}` } });
  expect(outcome.sessionsCreated).toBe(0);
  expect(outcome.me).toMatchObject({ status: 401, problem: { code: 'session_required' } });
  await expectStillHealthy(stack);
}

/** Nothing logged at error level, and no ID token or client secret in any log line. */
/** No error-level line except for refused client credentials, and no ID token or client secret anywhere. */
export function expectCleanLogs(stack: RogueStack): void {
  // a refused client credential is the one failure an operator must see at error level
  const errors = stack.gateway.logLines().filter((line) => typeof line['level'] === 'number' && line['level'] >= 50 && line['code'] !== 'client_authentication_failed');
  expect(errors).toEqual([]);
  const text = stack.gateway.logText();
  expect(text).not.toContain(TEST_CLIENT_SECRET);
  expect(stack.rogue.issuedIdTokens.filter((token) => text.includes(token))).toEqual([]);
}
