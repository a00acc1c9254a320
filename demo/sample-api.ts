/**
 * The sample resource server behind the gateway: it verifies `Authorization: Bearer <JWT>` against the
 * provider's JWKS (RFC 9068 access tokens) and echoes what it received, so the demo shows the caller and
 * the tests can assert on exactly what the gateway forwarded. Paths under a step-up rule (DEMO_STEP_UP:
 * `/api/transfers`) answer the RFC 9470 challenge unless the token's `acr` and `auth_time` meet it.
 *
 *   node --import tsx demo/sample-api.ts
 *
 * Environment: DEMO_API_PORT (4001), DEMO_API_HOST (127.0.0.1), DEMO_ISSUER (http://127.0.0.1:4000),
 * DEMO_API_AUDIENCE (urn:bff-demo:api), DEMO_API_DPOP_NONCE (`true`: DPoP proofs must carry this
 * API's nonce). Prints one stdout line `{"event":"listening","url":...}`.
 *
 * A token bound to a DPoP key (`cnf.jkt`, RFC 9449 §6) is accepted only as `Authorization: DPoP`
 * with a valid proof (§7.1, checks in verifyDpopProof()); presented as Bearer it is refused.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { pathToFileURL } from 'node:url';
import { calculateJwkThumbprint, createRemoteJWKSet, EmbeddedJWK, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';

export interface ReceivedRequest {
  method: string;
  /** The raw request target, exactly as it arrived. */
  url: string;
  headers: IncomingHttpHeaders;
  /** The verified token's subject; undefined when the request had no valid token. */
  sub: string | undefined;
  /** The verified token's DPoP key thumbprint (`cnf.jkt`), when it is DPoP-bound and its proof passed. */
  jkt: string | undefined;
  /** Why the request was refused (`invalid_token`, or what failed in the DPoP proof); undefined when served. */
  refusal: string | undefined;
  bodyBytes: number;
  bodySha256: string;
}

/**
 * RFC 9470 step-up: requests under `pathPrefix` need an access token whose `acr` is `acr` (and,
 * with `maxAgeS`, whose `auth_time` is at most that old); others get the step-up challenge.
 */
export interface StepUpRule {
  readonly pathPrefix: string;
  readonly acr: string;
  readonly maxAgeS?: number;
}

/** The demo's: a transfer needs the provider's password-plus-one-time-code level, from the last 5 minutes. */
export const DEMO_STEP_UP: readonly StepUpRule[] = [{ pathPrefix: '/api/transfers', acr: 'urn:bff-demo:mfa', maxAgeS: 300 }];

export interface SampleApiOptions {
  issuer: string;
  audience: string;
  port?: number;
  host?: string;
  /** Default DEMO_STEP_UP. */
  stepUp?: readonly StepUpRule[];
  /** DPoP proofs must carry this API's current nonce (RFC 9449 §9): a 401 use_dpop_nonce challenge otherwise. */
  requireDpopNonce?: boolean;
}

export interface RunningSampleApi {
  readonly url: string;
  /** Every request, valid or not, in arrival order. */
  readonly received: ReceivedRequest[];
  /** With requireDpopNonce: issues a new nonce; proofs with the old one are challenged from now on. */
  rotateDpopNonce(): void;
  close(): Promise<void>;
}

interface Caller {
  sub: string;
  name: string | undefined;
  acr: string | undefined;
  /** Epoch seconds. */
  authTime: number | undefined;
  jkt: string | undefined;
}

/** A refused request: the reason, and the RFC 6750 / RFC 9449 challenge to answer with. */
interface Refusal {
  reason: string;
  challenge: string;
  nonce?: string;
}

// ---- DPoP (RFC 9449 §7.1): the proof that goes with a DPoP-bound token ------------------------
/** RFC 9449 §11.2: proofs whose iat is further off than this are refused (oidc-provider's window too). */
const DPOP_IAT_WINDOW_S = 300;
/** jti values remembered for replay detection; the oldest are forgotten beyond this (they are then stale by iat anyway). */
const MAX_SEEN_JTI = 10_000;

interface DpopCheck {
  readonly proof: string | string[] | undefined;
  readonly accessToken: string;
  readonly jkt: string;
  readonly method: string;
  /** This API's own origin and the request path: what htu must name. */
  readonly htu: string;
  readonly nonce: string | undefined;
  readonly seen: Set<string>;
}

/** Undefined when the proof binds this request to the token's key; otherwise why not. */
async function verifyDpopProof(check: DpopCheck): Promise<Refusal | undefined> {
  const invalid = (reason: string): Refusal => ({ reason, challenge: 'DPoP error="invalid_dpop_proof", algs="ES256 EdDSA"' });
  if (typeof check.proof !== 'string') return invalid('exactly one DPoP proof is required');
  let payload: JWTPayload;
  let jwk: unknown;
  try {
    const verified = await jwtVerify(check.proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256', 'EdDSA'] });
    ({ payload } = verified);
    jwk = verified.protectedHeader.jwk;
  } catch (error) {
    if (error instanceof joseErrors.JOSEError) return invalid(`proof signature: ${error.code}`);
    throw error;
  }
  if (typeof jwk !== 'object' || jwk === null || (await calculateJwkThumbprint({ ...jwk })) !== check.jkt) return invalid('proof key is not the token\'s cnf.jkt');
  if (payload['htm'] !== check.method) return invalid('htm mismatch');
  if (payload['htu'] !== check.htu) return invalid('htu mismatch');
  if (payload['ath'] !== createHash('sha256').update(check.accessToken).digest('base64url')) return invalid('ath mismatch');
  if (typeof payload.iat !== 'number' || Math.abs(payload.iat - Date.now() / 1000) > DPOP_IAT_WINDOW_S) return invalid('iat not recent');
  if (typeof payload.jti !== 'string' || payload.jti === '') return invalid('no jti');
  if (check.nonce !== undefined && payload['nonce'] !== check.nonce) {
    return { reason: 'nonce required', challenge: 'DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"', nonce: check.nonce };
  }
  // checked last: a proof refused for another reason may be sent again once fixed
  if (check.seen.has(payload.jti)) return invalid('jti replayed');
  check.seen.add(payload.jti);
  if (check.seen.size > MAX_SEEN_JTI) check.seen.delete(check.seen.values().next().value ?? '');
  return undefined;
}
// ----------------------------------------------------------------------------------------------

/** RFC 9068 §2.1 names RS256 as the baseline; the demo provider also holds an ES256 key. */
const ALGORITHMS = ['RS256', 'PS256', 'ES256'];

/** The JWKS is found through discovery on first use; a failed discovery is retried on the next request. */
function jwksResolver(issuer: string): () => Promise<JWTVerifyGetKey> {
  let jwks: Promise<JWTVerifyGetKey> | undefined;
  return () => {
    jwks ??= (async () => {
      const response = await fetch(new URL(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`));
      if (!response.ok) throw new Error(`discovery answered ${response.status}`);
      const metadata: unknown = await response.json();
      const jwksUri: unknown = typeof metadata === 'object' && metadata !== null ? Reflect.get(metadata, 'jwks_uri') : undefined;
      if (typeof jwksUri !== 'string') throw new Error('discovery document has no jwks_uri');
      return createRemoteJWKSet(new URL(jwksUri));
    })().catch((error: unknown) => {
      jwks = undefined;
      throw error;
    });
    return jwks;
  };
}

function meetsStepUp(caller: Caller, rule: StepUpRule): boolean {
  if (caller.acr !== rule.acr) return false;
  if (rule.maxAgeS === undefined) return true;
  return caller.authTime !== undefined && Date.now() / 1000 - caller.authTime <= rule.maxAgeS;
}

async function readBody(req: IncomingMessage): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of req) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    bytes += buffer.length;
    hash.update(buffer);
  }
  return { bytes, sha256: hash.digest('hex') };
}

function queryObject(search: string): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  for (const [key, value] of new URLSearchParams(search)) {
    const existing = query[key];
    query[key] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  return query;
}

function withoutCredentials(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const { authorization, cookie, dpop, ...rest } = headers;
  return rest;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), 'cache-control': 'no-store', ...headers });
  res.end(payload);
}

export async function startSampleApi(options: SampleApiOptions): Promise<RunningSampleApi> {
  const { issuer, audience } = options;
  const jwks = jwksResolver(issuer);
  const received: ReceivedRequest[] = [];
  const stepUpRules = options.stepUp ?? DEMO_STEP_UP;

  const seenJti = new Set<string>();
  let dpopNonce = options.requireDpopNonce === true ? randomBytes(16).toString('base64url') : undefined;
  /** Set once listening: the htu a proof must name is this origin plus the request path. */
  let origin = '';

  async function authenticate(req: IncomingMessage, path: string): Promise<Caller | Refusal> {
    const invalidToken: Refusal = { reason: 'invalid_token', challenge: 'Bearer error="invalid_token"' };
    const match = /^(Bearer|DPoP) ([A-Za-z0-9._~+/-]+=*)$/i.exec(req.headers.authorization ?? '');
    const [, scheme, token] = match ?? [];
    if (scheme === undefined || token === undefined) return invalidToken;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, await jwks(), { issuer, audience, typ: 'at+jwt', algorithms: ALGORITHMS, requiredClaims: ['exp', 'sub'] }));
    } catch (error) {
      // A bad token is the caller's problem (401); anything else (provider down) is ours.
      if (error instanceof joseErrors.JOSEError) return invalidToken;
      throw error;
    }
    if (typeof payload.sub !== 'string') return invalidToken;
    const cnf = payload['cnf'];
    const jkt: unknown = typeof cnf === 'object' && cnf !== null ? Reflect.get(cnf, 'jkt') : undefined;
    const dpop = scheme.toLowerCase() === 'dpop';
    // RFC 9449 §7.1: a DPoP-bound token is no bearer token, and the DPoP scheme needs a bound one
    if ((typeof jkt === 'string') !== dpop) {
      return { reason: dpop ? 'DPoP scheme with an unbound token' : 'DPoP-bound token presented as Bearer', challenge: 'DPoP error="invalid_token", algs="ES256 EdDSA"' };
    }
    if (typeof jkt === 'string') {
      const refusal = await verifyDpopProof({ proof: req.headers.dpop, accessToken: token, jkt, method: req.method ?? 'GET', htu: `${origin}${path}`, nonce: dpopNonce, seen: seenJti });
      if (refusal !== undefined) return refusal;
    }
    const { acr, auth_time: authTime } = payload;
    return {
      sub: payload.sub,
      name: typeof payload['name'] === 'string' ? payload['name'] : undefined,
      acr: typeof acr === 'string' ? acr : undefined,
      authTime: typeof authTime === 'number' ? authTime : undefined,
      jkt: typeof jkt === 'string' ? jkt : undefined,
    };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const queryStart = url.indexOf('?');
    const path = queryStart === -1 ? url : url.slice(0, queryStart);
    const [caller, body] = await Promise.all([authenticate(req, path), readBody(req)]);
    const method = req.method ?? 'GET';
    const seen = { method, url, headers: req.headers, bodyBytes: body.bytes, bodySha256: body.sha256 };
    received.push('reason' in caller ? { ...seen, sub: undefined, jkt: undefined, refusal: caller.reason } : { ...seen, sub: caller.sub, jkt: caller.jkt, refusal: undefined });
    // RFC 9449 §9: the current nonce on every answer, so a client can use it from the next request on
    const nonceHeader: Record<string, string> = dpopNonce === undefined ? {} : { 'dpop-nonce': dpopNonce };
    if ('reason' in caller) {
      const error = caller.challenge.includes('use_dpop_nonce') ? 'use_dpop_nonce' : 'invalid_token';
      sendJson(res, 401, caller.reason === error ? { error } : { error, reason: caller.reason }, { 'www-authenticate': caller.challenge, ...nonceHeader });
      return;
    }
    const stepUp = stepUpRules.find((rule) => path === rule.pathPrefix || path.startsWith(`${rule.pathPrefix}/`));
    if (stepUp !== undefined && !meetsStepUp(caller, stepUp)) {
      // RFC 9470 §3: the level (and freshness) this resource needs, for the client to ask the provider for
      const maxAge = stepUp.maxAgeS === undefined ? '' : `, max_age="${stepUp.maxAgeS}"`;
      const challenge = `Bearer error="insufficient_user_authentication", error_description="A stronger or more recent authentication is required", acr_values="${stepUp.acr}"${maxAge}`;
      sendJson(res, 401, { error: 'insufficient_user_authentication' }, { 'www-authenticate': challenge });
      return;
    }
    sendJson(res, 200, {
      method,
      path,
      query: queryObject(queryStart === -1 ? '' : url.slice(queryStart + 1)),
      // credentials are never echoed: this answer reaches the browser (tests read `received` instead)
      headers: withoutCredentials(req.headers),
      sub: caller.sub,
      ...(caller.name === undefined ? {} : { name: caller.name }),
      // the token's verified `aud`: each API behind the gateway accepts only its own
      audience,
      bodyBytes: body.bytes,
      bodySha256: body.sha256,
      // what a step-up resource accepted
      ...(stepUp === undefined ? {} : { acr: caller.acr }),
      // whether the token was DPoP-bound (and its proof passed): the demo SPA can show it
      ...(caller.jkt === undefined ? {} : { dpopBound: true }),
    }, nonceHeader);
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      process.stderr.write(`${JSON.stringify({ event: 'sample_api_error', error: error instanceof Error ? error.message : String(error) })}\n`);
      if (res.headersSent) res.destroy();
      else sendJson(res, 503, { error: 'temporarily_unavailable' });
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('sample API has no TCP address');
  const urlHost = host.includes(':') ? `[${host}]` : host;
  origin = `http://${urlHost}:${address.port}`;
  return {
    url: origin,
    received,
    rotateDpopNonce: () => {
      if (dpopNonce !== undefined) dpopNonce = randomBytes(16).toString('base64url');
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error === undefined ? resolve() : reject(error)));
        server.closeAllConnections();
      }),
  };
}

async function main(): Promise<void> {
  const api = await startSampleApi({
    issuer: process.env['DEMO_ISSUER'] ?? 'http://127.0.0.1:4000',
    audience: process.env['DEMO_API_AUDIENCE'] ?? 'urn:bff-demo:api',
    port: Number(process.env['DEMO_API_PORT'] ?? '4001'),
    host: process.env['DEMO_API_HOST'] ?? '127.0.0.1',
    requireDpopNonce: process.env['DEMO_API_DPOP_NONCE'] === 'true',
  });
  const stop = (): void => {
    api.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdout.write(`${JSON.stringify({ event: 'listening', url: api.url })}\n`);
}

const entryPoint = process.argv[1];
if (entryPoint !== undefined && import.meta.url === pathToFileURL(entryPoint).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
