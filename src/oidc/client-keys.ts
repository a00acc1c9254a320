import { createHash, createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';

/** Signature algorithms a client key may sign its assertions with (RFC 7518 §3.1, RFC 8037). */
export type ClientSigningAlg = 'PS256' | 'PS384' | 'PS512' | 'RS256' | 'RS384' | 'RS512' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA';

/** FAPI 2.0 Security Profile §5.4.1: the only algorithms allowed under the profile. */
export const FAPI2_ALGS: ReadonlySet<string> = new Set(['PS256', 'ES256', 'EdDSA']);

/** The public half as published at /auth/jwks.json: never a private member. */
export interface PublicClientJwk {
  readonly kty: string;
  readonly kid: string;
  readonly alg: ClientSigningAlg;
  readonly use: 'sig';
  readonly [member: string]: string;
}

/** One of the gateway's client-authentication keys, parsed and checked once at start-up. */
export interface ClientKey {
  readonly privateKey: KeyObject;
  readonly kid: string;
  readonly alg: ClientSigningAlg;
  readonly publicJwk: PublicClientJwk;
}

const RSA_ALGS: readonly ClientSigningAlg[] = ['PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512'];
/** The algorithms each kind of key can sign with, its default first. */
const ALGS_BY_CURVE: Readonly<Record<string, readonly ClientSigningAlg[]>> = { 'P-256': ['ES256'], 'P-384': ['ES384'], 'P-521': ['ES512'], Ed25519: ['EdDSA'] };
const MIN_RSA_BITS = 2048;
/** RFC 7638 §3.2: the required members of each key type, in lexicographic order. */
const THUMBPRINT_MEMBERS: Readonly<Record<string, readonly string[]>> = { RSA: ['e', 'kty', 'n'], EC: ['crv', 'kty', 'x', 'y'], OKP: ['crv', 'kty', 'x'] };
const PEM_BLOCK = /-----BEGIN ([A-Z ]+)-----[\s\S]*?-----END \1-----/g;

export interface ClientKeySettings {
  /** OIDC_CLIENT_SIGNING_ALG: the first (signing) key's algorithm instead of its type's default. */
  readonly signingAlg: string | undefined;
  /** OIDC_CLIENT_KEY_ID: the first key's kid instead of its JWK's `kid` or its thumbprint. */
  readonly keyId: string | undefined;
}

/**
 * OIDC_CLIENT_PRIVATE_KEY: one or more private keys, the first of which signs. Either PEM (PKCS#8
 * `BEGIN PRIVATE KEY` blocks, separated by commas or just following each other; `\n` escapes are
 * read as newlines) or JSON (private JWKs separated by commas, or one JWK Set `{"keys":[...]}`): a
 * comma inside a JWK belongs to the JSON, so the list is read as a JSON array, never split. Problems
 * name the entry by position, never by content.
 */
export function parseClientKeys(name: string, value: string, settings: ClientKeySettings, problems: string[]): ClientKey[] {
  const entries = value.trim().startsWith('{') ? jwkEntries(name, value, problems) : pemEntries(name, value, problems);
  if (entries === undefined) return [];
  const keys: ClientKey[] = [];
  const kids = new Set<string>();
  entries.forEach((entry, index) => {
    const first = index === 0;
    const key = clientKey(`${name}: key ${index + 1}`, entry, first ? settings : { signingAlg: undefined, keyId: undefined }, problems);
    if (key === undefined) return;
    if (kids.has(key.kid)) problems.push(`${name}: key ${index + 1} has the kid of an earlier key (each key needs its own kid)`);
    kids.add(key.kid);
    keys.push(key);
  });
  return keys;
}

type KeyEntry = { readonly pem: string } | { readonly jwk: JsonWebKey };

function pemEntries(name: string, value: string, problems: string[]): KeyEntry[] | undefined {
  const text = value.replace(/\\n/g, '\n');
  const blocks = [...text.matchAll(PEM_BLOCK)];
  const rest = text.replace(PEM_BLOCK, '').replace(/[\s,]/g, '');
  if (blocks.length === 0 || rest !== '') {
    problems.push(`${name}: must be PKCS#8 PEM private keys ("-----BEGIN PRIVATE KEY-----") or private JWKs, separated by commas`);
    return undefined;
  }
  const entries: KeyEntry[] = [];
  for (const [index, [block, label]] of blocks.entries()) {
    // PKCS#1 ("RSA PRIVATE KEY") and SEC1 ("EC PRIVATE KEY") would parse too, but the setting promises PKCS#8
    if (label !== 'PRIVATE KEY') problems.push(`${name}: key ${index + 1} is a "${label ?? ''}" PEM block; convert it to PKCS#8 (openssl pkcs8 -topk8 -nocrypt)`);
    else entries.push({ pem: block });
  }
  return entries;
}

function jwkEntries(name: string, value: string, problems: string[]): KeyEntry[] | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(`[${value}]`);
  } catch {
    problems.push(`${name}: is not valid JSON (private JWKs separated by commas, or a JWK Set)`);
    return undefined;
  }
  const list: unknown[] = Array.isArray(parsed) ? parsed : [];
  const [only] = list;
  const set: unknown = list.length === 1 && isObject(only) ? only['keys'] : undefined;
  const jwks: unknown[] = Array.isArray(set) ? set : list;
  if (jwks.length === 0 || !jwks.every(isObject)) {
    problems.push(`${name}: must hold private JWKs (JSON objects) separated by commas, or a JWK Set`);
    return undefined;
  }
  return jwks.map((jwk) => ({ jwk }));
}

function clientKey(where: string, entry: KeyEntry, settings: ClientKeySettings, problems: string[]): ClientKey | undefined {
  if ('jwk' in entry && entry.jwk.kty === 'oct') {
    problems.push(`${where} is a symmetric (oct) key; private_key_jwt needs an asymmetric one`);
    return undefined;
  }
  let privateKey: KeyObject;
  try {
    privateKey = 'pem' in entry ? createPrivateKey({ key: entry.pem, format: 'pem' }) : createPrivateKey({ key: entry.jwk, format: 'jwk' });
  } catch {
    const hint = 'jwk' in entry && entry.jwk.d === undefined ? ' (a public JWK: the private key, with "d", is needed)' : '';
    problems.push(`${where} cannot be read as a private key${hint}`);
    return undefined;
  }
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  const allowed = algsFor(privateKey, jwk);
  if (typeof allowed === 'string') {
    problems.push(`${where} ${allowed}`);
    return undefined;
  }
  const ownAlg = 'jwk' in entry && typeof entry.jwk.alg === 'string' ? entry.jwk.alg : undefined;
  const wanted = settings.signingAlg ?? ownAlg ?? allowed[0];
  const alg = allowed.find((a) => a === wanted);
  if (alg === undefined) {
    const source = settings.signingAlg === undefined ? 'its JWK "alg"' : 'OIDC_CLIENT_SIGNING_ALG';
    problems.push(`${where}: ${source} ${wanted ?? ''} does not fit a ${describeKey(privateKey, jwk)} key (use ${allowed.join(', ')})`);
    return undefined;
  }
  const ownKid = 'jwk' in entry ? entry.jwk.kid : undefined;
  const kid = settings.keyId ?? (typeof ownKid === 'string' && ownKid !== '' ? ownKid : jwkThumbprint(jwk));
  return { privateKey, kid, alg, publicJwk: publicJwk(jwk, kid, alg) };
}

/** The algorithms a key can sign with, its default first; a string says why the key is refused. */
function algsFor(key: KeyObject, jwk: JsonWebKey): readonly ClientSigningAlg[] | string {
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    return bits >= MIN_RSA_BITS ? RSA_ALGS : `is an RSA key of ${bits} bits; at least ${MIN_RSA_BITS} are required`;
  }
  const algs = typeof jwk.crv === 'string' && (jwk.kty === 'EC' || jwk.kty === 'OKP') ? ALGS_BY_CURVE[jwk.crv] : undefined;
  return algs ?? `is a ${describeKey(key, jwk)} key; use RSA (2048 bits or more), EC P-256, P-384 or P-521, or Ed25519`;
}

function describeKey(key: KeyObject, jwk: JsonWebKey): string {
  return key.asymmetricKeyType === 'rsa' ? 'RSA' : typeof jwk.crv === 'string' ? jwk.crv : (key.asymmetricKeyType ?? 'unknown');
}

/** RFC 7638: SHA-256 over the required members in lexicographic order, without whitespace. */
export function jwkThumbprint(jwk: JsonWebKey): string {
  const members = THUMBPRINT_MEMBERS[jwk.kty ?? ''] ?? [];
  const canonical = JSON.stringify(Object.fromEntries(members.map((m) => [m, jwk[m]])));
  return createHash('sha256').update(canonical).digest('base64url');
}

/** Only the members of the public key (node:crypto exported it from the public half), plus kid, alg and use. */
function publicJwk(jwk: JsonWebKey, kid: string, alg: ClientSigningAlg): PublicClientJwk {
  const members: Record<string, string> = {};
  for (const [member, value] of Object.entries(jwk)) if (typeof value === 'string') members[member] = value;
  return { ...members, kty: members['kty'] ?? '', kid, alg, use: 'sig' };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
