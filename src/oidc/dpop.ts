import { createHash, createPrivateKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { setBounded } from '../common/bounded-map.js';
import { parseWwwAuthenticate } from '../common/www-authenticate.js';

/*
 * DPoP (RFC 9449): one ES256 key pair per session (and one per process for the gateway's own
 * client-credentials tokens). The private key is kept as a JWK, sealed wherever it rests (the login
 * transaction's cookie, the session record), and imported only to sign a proof.
 */

/** A P-256 private key as a JWK: the form it is sealed in (login transaction, session record). */
export const DpopPrivateJwkSchema = z.object({
  kty: z.literal('EC'),
  crv: z.literal('P-256'),
  x: z.string().min(1),
  y: z.string().min(1),
  d: z.string().min(1),
});
export type DpopPrivateJwk = z.infer<typeof DpopPrivateJwkSchema>;

/** What one proof is for (RFC 9449 §4.2). */
export interface ProofClaims {
  /** The HTTP method of the request the proof goes with. */
  readonly htm: string;
  /** The request's URI; its query and fragment are dropped here. */
  readonly htu: string;
  /** The server's latest DPoP-Nonce (§8, §9), when it gave one. */
  readonly nonce?: string | undefined;
  /** The access token the request carries: its hash becomes `ath` (§4.2). */
  readonly accessToken?: string | undefined;
}

const HEADER_TYP = 'dpop+jwt';
/** Imported keys kept in memory (about 1 KB each), by private scalar: the busiest sessions' keys. */
const MAX_IMPORTED_KEYS = 10_000;
const imported = new Map<string, DpopKey>();

/** A DPoP key pair, ready to sign proofs. */
export class DpopKey {
  /** base64url of the proof's protected header: the same for every proof of this key. */
  private readonly encodedHeader: string;

  private constructor(
    private readonly privateKey: KeyObject,
    /** The private JWK, for sealing; never logged, never sent. */
    readonly jwk: DpopPrivateJwk,
  ) {
    const header = { typ: HEADER_TYP, alg: 'ES256', jwk: publicJwk(jwk) };
    this.encodedHeader = Buffer.from(JSON.stringify(header)).toString('base64url');
  }

  /** A fresh P-256 key pair (RFC 9449 §11.3: ES256, as every DPoP server supports). */
  static generate(): DpopKey {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return new DpopKey(privateKey, DpopPrivateJwkSchema.parse(privateKey.export({ format: 'jwk' })));
  }

  /**
   * The key a sealed JWK holds. Importing a JWK costs more than signing a proof, and a session's
   * key is used on each of its requests: imported keys are kept, a bounded number of them.
   */
  static fromJwk(jwk: DpopPrivateJwk): DpopKey {
    const cached = imported.get(jwk.d);
    if (cached !== undefined) return cached;
    const key = new DpopKey(createPrivateKey({ key: jwk, format: 'jwk' }), jwk);
    setBounded(imported, jwk.d, key, MAX_IMPORTED_KEYS);
    return key;
  }

  /** RFC 7638 thumbprint of the public key: the authorization request's `dpop_jkt`, the token's `cnf.jkt`. */
  get thumbprint(): string {
    return jwkThumbprint(this.jwk);
  }

  /** A signed proof JWT for one request; `nowMs` comes from the injected clock. */
  proof(claims: ProofClaims, nowMs: number): string {
    const payload = {
      jti: randomUUID(),
      htm: claims.htm,
      htu: withoutQuery(claims.htu),
      iat: Math.floor(nowMs / 1000),
      ...(claims.nonce === undefined ? {} : { nonce: claims.nonce }),
      ...(claims.accessToken === undefined ? {} : { ath: accessTokenHash(claims.accessToken) }),
    };
    const signingInput = `${this.encodedHeader}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    // JWS ES256 (RFC 7518 §3.4): the raw R || S pair, not DER
    const signature = sign('sha256', Buffer.from(signingInput), { key: this.privateKey, dsaEncoding: 'ieee-p1363' });
    return `${signingInput}.${signature.toString('base64url')}`;
  }

  /** Never the private key in a log line or an error message. */
  toJSON(): string {
    return `DpopKey(${this.thumbprint})`;
  }
}

/** The public members only: what a proof's header and a thumbprint carry. */
function publicJwk(jwk: DpopPrivateJwk): { kty: 'EC'; crv: 'P-256'; x: string; y: string } {
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
}

/** RFC 7638 §3.2: the required members in lexicographic order, no whitespace, SHA-256, base64url. */
export function jwkThumbprint(jwk: Pick<DpopPrivateJwk, 'crv' | 'kty' | 'x' | 'y'>): string {
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
  return createHash('sha256').update(canonical).digest('base64url');
}

/** RFC 9449 §4.2 `ath`: base64url(SHA-256(the ASCII access token)). */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url');
}

/** RFC 9449 §4.2: htu is the target URI without query and fragment. */
function withoutQuery(uri: string): string {
  const end = uri.search(/[?#]/);
  return end === -1 ? uri : uri.slice(0, end);
}

/**
 * The servers' latest DPoP nonces (RFC 9449 §8, §9), by server (the provider; each upstream
 * origin). Bounded: beyond `max` servers the least recently set is forgotten, which costs at most
 * one more challenge.
 */
export class DpopNonces {
  private readonly nonces = new Map<string, string>();

  constructor(private readonly max: number) {}

  get(server: string): string | undefined {
    return this.nonces.get(server);
  }

  /** Takes the nonce a response offers, if any; RFC 9449 §8.2 lets a server send a new one on any response. */
  remember(server: string, nonce: string | null | undefined): void {
    // §8: a nonce is an opaque string of NQCHAR; anything else is not one
    if (typeof nonce !== 'string' || !/^[\x21\x23-\x5b\x5d-\x7e]{1,512}$/.test(nonce)) return;
    if (this.nonces.get(server) === nonce) return;
    setBounded(this.nonces, server, nonce, this.max);
  }
}

/**
 * RFC 9449 §8: the token endpoint's nonce challenge is a 400 whose JSON `error` is `use_dpop_nonce`,
 * with the nonce in the DPoP-Nonce header. Reads a clone: the caller reads the body itself.
 */
export async function providerNonceChallenge(response: Response): Promise<string | undefined> {
  const nonce = response.headers.get('dpop-nonce');
  if (response.status !== 400 || nonce === null) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(await response.clone().text());
  } catch {
    return undefined; // not JSON: not a nonce challenge
  }
  return typeof body === 'object' && body !== null && Reflect.get(body, 'error') === 'use_dpop_nonce' ? nonce : undefined;
}

/**
 * RFC 9449 §9: a resource server's nonce challenge is a 401 whose `WWW-Authenticate: DPoP` carries
 * `error="use_dpop_nonce"`, with the nonce in the DPoP-Nonce header.
 */
export function upstreamNonceChallenge(status: number | undefined, headers: Readonly<Record<string, string | string[] | undefined>>): string | undefined {
  const nonce = headers['dpop-nonce'];
  if (status !== 401 || typeof nonce !== 'string') return undefined;
  const field = headers['www-authenticate'];
  // the one challenge parser (step-up reads the same field): a malformed field is no challenge
  const challenges = parseWwwAuthenticate(Array.isArray(field) ? field.join(', ') : (field ?? '')) ?? [];
  return challenges.some((c) => c.scheme.toLowerCase() === 'dpop' && c.params.get('error') === 'use_dpop_nonce') ? nonce : undefined;
}

/** How one request to the provider is sent with DPoP. */
export interface DpopRequest {
  readonly key: DpopKey;
  /** The endpoint's URL: the proof's htu. */
  readonly endpoint: string;
  /** The proof's htm: POST (the token endpoint, the default) or GET (userinfo). */
  readonly method?: string;
  /**
   * The access token a request to a resource (userinfo) carries: its hash goes in the proof (`ath`),
   * and the endpoint challenges as a resource server does (§9: a 401) rather than as the token
   * endpoint does (§8: a 400).
   */
  readonly accessToken?: string;
  /** The provider's nonces, kept per process, by the endpoint's origin. */
  readonly nonces: DpopNonces;
  readonly now: () => number;
}

/**
 * Sends a request with a fresh proof (and the server's latest nonce), takes any new nonce it offers,
 * and answers a `use_dpop_nonce` challenge (RFC 9449 §8, §9) with exactly one more request carrying
 * the nonce. `send` adds the headers it is given to its request.
 */
export async function sendWithDpop(request: DpopRequest, send: (headers: Readonly<Record<string, string>>) => Promise<Response>): Promise<Response> {
  const { key, endpoint, method = 'POST', accessToken, nonces, now } = request;
  const server = new URL(endpoint).origin;
  const proof = (nonce: string | undefined): { readonly dpop: string } => ({ dpop: key.proof({ htm: method, htu: endpoint, nonce, accessToken }, now()) });
  const first = await send(proof(nonces.get(server)));
  nonces.remember(server, first.headers.get('dpop-nonce'));
  const nonce = accessToken === undefined ? await providerNonceChallenge(first) : resourceNonceChallenge(first);
  if (nonce === undefined) return first;
  await first.body?.cancel();
  const second = await send(proof(nonce));
  nonces.remember(server, second.headers.get('dpop-nonce'));
  return second;
}

/** A resource endpoint's challenge (§9) in a fetch answer: the one reading of it, as for upstreams. */
function resourceNonceChallenge(response: Response): string | undefined {
  const header = (name: string): string | undefined => response.headers.get(name) ?? undefined;
  return upstreamNonceChallenge(response.status, { 'dpop-nonce': header('dpop-nonce'), 'www-authenticate': header('www-authenticate') });
}
