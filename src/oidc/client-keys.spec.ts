import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import { parseClientKeys, type ClientKey, type ClientKeySettings } from './client-keys.js';

const NONE: ClientKeySettings = { signingAlg: undefined, keyId: undefined };
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'];

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
const ed25519 = generateKeyPairSync('ed25519').privateKey;

const pem = (key: KeyObject): string => key.export({ format: 'pem', type: 'pkcs8' }).toString();
const jwk = (key: KeyObject, extra: Record<string, string> = {}): string => JSON.stringify({ ...key.export({ format: 'jwk' }), ...extra });

function parse(value: string, settings: ClientKeySettings = NONE): { keys: ClientKey[]; problems: string[] } {
  const problems: string[] = [];
  const keys = parseClientKeys('OIDC_CLIENT_PRIVATE_KEY', value, settings, problems);
  return { keys, problems };
}

describe('parseClientKeys (OIDC_CLIENT_PRIVATE_KEY)', () => {
  it.each([
    ['RSA', rsa, 'PS256'],
    ['P-256', p256, 'ES256'],
    ['P-384', p384, 'ES384'],
    ['Ed25519', ed25519, 'EdDSA'],
  ])('signs with the default algorithm of a PEM %s key', (_type, key, alg) => {
    const { keys, problems } = parse(pem(key));
    expect(problems).toEqual([]);
    expect(keys.map((k) => k.alg)).toEqual([alg]);
  });

  it('names each key by its RFC 7638 thumbprint unless OIDC_CLIENT_KEY_ID (first key) or the JWK says otherwise', async () => {
    const { keys } = parse(`${pem(p256)},${pem(ed25519)}`);
    for (const key of keys) {
      const { kid: _kid, alg: _alg, use: _use, ...members } = key.publicJwk;
      expect(key.kid).toBe(await calculateJwkThumbprint(members));
      expect(key.publicJwk.kid).toBe(key.kid);
    }
    expect(parse(`${jwk(p256, { kid: 'first' })},${jwk(ed25519, { kid: 'second' })}`, { signingAlg: undefined, keyId: 'chosen' }).keys.map((k) => k.kid)).toEqual(['chosen', 'second']);
  });

  it('keeps the order given for rotation: the first signs, every key is published', () => {
    const { keys, problems } = parse(`${pem(rsa)},\n${pem(p256)}`);
    expect(problems).toEqual([]);
    expect(keys.map((k) => k.publicJwk.kty)).toEqual(['RSA', 'EC']);
    expect(keys[0]?.privateKey.asymmetricKeyType).toBe('rsa');
  });

  it('reads PEM blocks that follow each other without commas, and \\n escapes from a one-line variable', () => {
    expect(parse(`${pem(p256)}${pem(ed25519)}`).keys).toHaveLength(2);
    expect(parse(pem(p256).replace(/\n/g, '\\n')).keys).toHaveLength(1);
  });

  it('reads JWKs separated by commas (their own commas are JSON, not separators) and a JWK Set', () => {
    expect(parse(`${jwk(rsa)},${jwk(p256)}`).keys.map((k) => k.alg)).toEqual(['PS256', 'ES256']);
    expect(parse(JSON.stringify({ keys: [JSON.parse(jwk(ed25519)), JSON.parse(jwk(p384))] })).keys.map((k) => k.alg)).toEqual(['EdDSA', 'ES384']);
  });

  it('takes the algorithm from OIDC_CLIENT_SIGNING_ALG for the first key, else from the JWK\'s alg', () => {
    expect(parse(pem(rsa), { signingAlg: 'RS256', keyId: undefined }).keys[0]?.alg).toBe('RS256');
    expect(parse(jwk(rsa, { alg: 'PS384' })).keys[0]?.alg).toBe('PS384');
  });

  it('publishes only public members, whatever the key type', () => {
    for (const key of parse(`${jwk(rsa)},${jwk(p256)},${jwk(ed25519)}`).keys) {
      for (const member of PRIVATE_MEMBERS) expect(key.publicJwk).not.toHaveProperty(member);
      expect(key.publicJwk).toMatchObject({ use: 'sig', alg: key.alg, kid: key.kid });
    }
  });

  it.each([
    ['an algorithm that does not fit the key', pem(p256), { signingAlg: 'PS256', keyId: undefined }, 'OIDC_CLIENT_PRIVATE_KEY: key 1: OIDC_CLIENT_SIGNING_ALG PS256 does not fit a P-256 key (use ES256)'],
    ['a JWK alg that does not fit the key', jwk(ed25519, { alg: 'ES256' }), NONE, 'OIDC_CLIENT_PRIVATE_KEY: key 1: its JWK "alg" ES256 does not fit a Ed25519 key (use EdDSA)'],
    ['a 1024-bit RSA key', pem(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey), NONE, 'OIDC_CLIENT_PRIVATE_KEY: key 1 is an RSA key of 1024 bits; at least 2048 are required'],
    ['a public JWK', JSON.stringify(p256.export({ format: 'jwk' }), ['kty', 'crv', 'x', 'y']), NONE, 'OIDC_CLIENT_PRIVATE_KEY: key 1 cannot be read as a private key (a public JWK: the private key, with "d", is needed)'],
    ['a PKCS#1 PEM', rsa.export({ format: 'pem', type: 'pkcs1' }).toString(), NONE, 'OIDC_CLIENT_PRIVATE_KEY: key 1 is a "RSA PRIVATE KEY" PEM block; convert it to PKCS#8 (openssl pkcs8 -topk8 -nocrypt)'],
    ['a symmetric JWK', JSON.stringify({ kty: 'oct', k: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0' }), NONE, 'OIDC_CLIENT_PRIVATE_KEY: key 1 is a symmetric (oct) key; private_key_jwt needs an asymmetric one'],
    ['text that is neither', 'not-a-key-at-all', NONE, 'OIDC_CLIENT_PRIVATE_KEY: must be PKCS#8 PEM private keys ("-----BEGIN PRIVATE KEY-----") or private JWKs, separated by commas'],
    ['broken JSON', '{"kty":"EC",', NONE, 'OIDC_CLIENT_PRIVATE_KEY: is not valid JSON (private JWKs separated by commas, or a JWK Set)'],
    ['two keys with one kid', `${jwk(p256, { kid: 'same' })},${jwk(ed25519, { kid: 'same' })}`, NONE, 'OIDC_CLIENT_PRIVATE_KEY: key 2 has the kid of an earlier key (each key needs its own kid)'],
  ])('refuses %s in one line that names the variable and never echoes the value', (_what, value, settings, line) => {
    const { problems } = parse(value, settings);
    expect(problems).toEqual([line]);
    const secret = /"d":"([^"]+)"/.exec(value)?.[1] ?? /\n([A-Za-z0-9+/]{40,})\n/.exec(value)?.[1];
    if (secret !== undefined) expect(problems.join('\n')).not.toContain(secret);
  });
});
