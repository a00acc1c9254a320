/**
 * The sample resource server behind the gateway: it verifies `Authorization: Bearer <JWT>` against the
 * provider's JWKS (RFC 9068 access tokens) and echoes what it received, so the demo shows the caller and
 * the tests can assert on exactly what the gateway forwarded. Paths under a step-up rule (DEMO_STEP_UP:
 * `/api/transfers`) answer the RFC 9470 challenge unless the token's `acr` and `auth_time` meet it.
 *
 *   node --import tsx demo/sample-api.ts
 *
 * Environment: DEMO_API_PORT (4001), DEMO_API_HOST (127.0.0.1), DEMO_ISSUER (http://127.0.0.1:4000),
 * DEMO_API_AUDIENCE (urn:bff-demo:api). Prints one stdout line `{"event":"listening","url":...}`.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { pathToFileURL } from 'node:url';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';

export interface ReceivedRequest {
  method: string;
  /** The raw request target, exactly as it arrived. */
  url: string;
  headers: IncomingHttpHeaders;
  /** The verified token's subject; undefined when the request had no valid token. */
  sub: string | undefined;
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
}

export interface RunningSampleApi {
  readonly url: string;
  /** Every request, valid or not, in arrival order. */
  readonly received: ReceivedRequest[];
  close(): Promise<void>;
}

interface Caller {
  sub: string;
  name: string | undefined;
  acr: string | undefined;
  /** Epoch seconds. */
  authTime: number | undefined;
}

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
  const { authorization, cookie, ...rest } = headers;
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

  async function authenticate(authorization: string | undefined): Promise<Caller | undefined> {
    const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(authorization ?? '');
    if (match?.[1] === undefined) return undefined;
    try {
      const { payload } = await jwtVerify(match[1], await jwks(), { issuer, audience, typ: 'at+jwt', algorithms: ALGORITHMS, requiredClaims: ['exp', 'sub'] });
      if (typeof payload.sub !== 'string') return undefined;
      const { acr, auth_time: authTime } = payload;
      return {
        sub: payload.sub,
        name: typeof payload['name'] === 'string' ? payload['name'] : undefined,
        acr: typeof acr === 'string' ? acr : undefined,
        authTime: typeof authTime === 'number' ? authTime : undefined,
      };
    } catch (error) {
      // A bad token is the caller's problem (401); anything else (provider down) is ours.
      if (error instanceof joseErrors.JOSEError) return undefined;
      throw error;
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const queryStart = url.indexOf('?');
    const [caller, body] = await Promise.all([authenticate(req.headers.authorization), readBody(req)]);
    const method = req.method ?? 'GET';
    received.push({ method, url, headers: req.headers, sub: caller?.sub, bodyBytes: body.bytes, bodySha256: body.sha256 });
    if (caller === undefined) {
      sendJson(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
      return;
    }
    const path = queryStart === -1 ? url : url.slice(0, queryStart);
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
    });
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
  return {
    url: `http://${urlHost}:${address.port}`,
    received,
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
