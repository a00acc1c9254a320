import { generateKeyPairSync } from 'node:crypto';
import { decodeProtectedHeader, importJWK, jwtVerify } from 'jose';
import { ASSERTION_LIFETIME_S, clientAssertion } from './client-auth.js';
import { parseClientKeys, type ClientKey } from './client-keys.js';

function keyOf(type: 'rsa' | 'ec' | 'ed25519'): ClientKey {
  const { privateKey } = type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  const problems: string[] = [];
  const [key] = parseClientKeys('OIDC_CLIENT_PRIVATE_KEY', privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), { signingAlg: undefined, keyId: undefined }, problems);
  if (key === undefined) throw new Error(problems.join('\n'));
  return key;
}

const NOW = Date.UTC(2026, 11, 1, 12, 0, 0, 500);

describe('clientAssertion (RFC 7523 private_key_jwt)', () => {
  it.each([
    ['RSA', 'rsa', 'PS256'],
    ['P-256', 'ec', 'ES256'],
    ['Ed25519', 'ed25519', 'EdDSA'],
  ] as const)('is signed by a %s key with %s, verifiable with the published public key', async (_type, type, alg) => {
    const key = keyOf(type);
    const jwt = await clientAssertion(key, { clientId: 'bff', audience: 'https://op.example', now: NOW });
    expect(decodeProtectedHeader(jwt)).toEqual({ alg, kid: key.kid, typ: 'JWT' });
    const { payload } = await jwtVerify(jwt, await importJWK(key.publicJwk, alg), { currentDate: new Date(NOW), algorithms: [alg] });
    expect(payload).toMatchObject({ iss: 'bff', sub: 'bff', aud: 'https://op.example' });
  });

  it('carries iat from the injected clock, exp at most 60 s later and a fresh jti each time', async () => {
    const key = keyOf('ec');
    const claims = { clientId: 'bff', audience: 'https://op.example/token', now: NOW };
    const [first, second] = await Promise.all([clientAssertion(key, claims), clientAssertion(key, claims)]);
    const payloadOf = (jwt: string | undefined): Record<string, unknown> => JSON.parse(Buffer.from((jwt ?? '').split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>;
    const one = payloadOf(first);
    expect(one['iat']).toBe(Math.floor(NOW / 1000));
    expect(one['exp']).toBe(Math.floor(NOW / 1000) + ASSERTION_LIFETIME_S);
    expect(ASSERTION_LIFETIME_S).toBeLessThanOrEqual(60);
    expect(one['jti']).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(payloadOf(second)['jti']).not.toBe(one['jti']);
  });
});
