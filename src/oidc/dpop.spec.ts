import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, jwtVerify } from 'jose';
import { DpopKey, DpopNonces, providerNonceChallenge, upstreamNonceChallenge } from './dpop.js';

const NOW = Date.UTC(2026, 11, 1, 12, 0, 0);

describe('DPoP keys and proofs (RFC 9449)', () => {
  const key = DpopKey.generate();

  it('computes the RFC 7638 thumbprint jose computes', async () => {
    const { d: _d, ...publicJwk } = key.jwk;
    expect(key.thumbprint).toBe(await calculateJwkThumbprint(publicJwk));
  });

  it('signs a dpop+jwt proof that verifies with the embedded public key, whose header holds no private member', async () => {
    const proof = key.proof({ htm: 'POST', htu: 'https://op.example/token?x=1#frag', nonce: 'n-1', accessToken: 'at.1' }, NOW);
    const header = decodeProtectedHeader(proof);
    expect(header).toEqual({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty: 'EC', crv: 'P-256', x: key.jwk.x, y: key.jwk.y } });
    const { payload } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256'], currentDate: new Date(NOW) });
    expect(payload).toEqual({
      jti: expect.any(String),
      htm: 'POST',
      htu: 'https://op.example/token',
      iat: NOW / 1000,
      nonce: 'n-1',
      ath: createHash('sha256').update('at.1').digest('base64url'),
    });
  });

  it('gives every proof its own jti and leaves out nonce and ath when there are none', async () => {
    const [a, b] = [key.proof({ htm: 'POST', htu: 'https://op.example/par' }, NOW), key.proof({ htm: 'POST', htu: 'https://op.example/par' }, NOW)];
    const { payload: first } = await jwtVerify(a, EmbeddedJWK, { currentDate: new Date(NOW) });
    const { payload: second } = await jwtVerify(b, EmbeddedJWK, { currentDate: new Date(NOW) });
    expect(first.jti).not.toBe(second.jti);
    expect(Object.keys(first).sort()).toEqual(['htm', 'htu', 'iat', 'jti']);
  });

  it('survives sealing as a JWK: the key read back signs proofs with the same thumbprint', async () => {
    const again = DpopKey.fromJwk(JSON.parse(JSON.stringify(key.jwk)) as typeof key.jwk);
    expect(again.thumbprint).toBe(key.thumbprint);
    await expect(jwtVerify(again.proof({ htm: 'GET', htu: 'http://api/x' }, NOW), EmbeddedJWK, { currentDate: new Date(NOW) })).resolves.toBeDefined();
  });

  it('never puts the private key in JSON (log lines)', () => {
    expect(JSON.stringify({ key })).not.toContain(key.jwk.d);
  });

  it('gives two keys different thumbprints', () => {
    expect(DpopKey.generate().thumbprint).not.toBe(key.thumbprint);
  });
});

describe('DPoP nonces', () => {
  it('remembers the latest nonce per server and forgets the least recently set beyond its bound', () => {
    const nonces = new DpopNonces(2);
    nonces.remember('a', 'n1');
    nonces.remember('b', 'n2');
    nonces.remember('a', 'n3');
    nonces.remember('c', 'n4');
    expect([nonces.get('a'), nonces.get('b'), nonces.get('c')]).toEqual(['n3', undefined, 'n4']);
  });

  it('ignores a header that is not a nonce (absent, empty, or with characters outside NQCHAR)', () => {
    const nonces = new DpopNonces(2);
    for (const bad of [null, undefined, '', 'a"b', 'a b']) nonces.remember('a', bad);
    expect(nonces.get('a')).toBeUndefined();
  });

  it('reads the provider\'s challenge: 400 use_dpop_nonce with a DPoP-Nonce header, and nothing else', async () => {
    const challenge = (status: number, body: string, nonce?: string): Response => new Response(body, { status, headers: nonce === undefined ? {} : { 'dpop-nonce': nonce } });
    await expect(providerNonceChallenge(challenge(400, '{"error":"use_dpop_nonce"}', 'n1'))).resolves.toBe('n1');
    await expect(providerNonceChallenge(challenge(400, '{"error":"invalid_grant"}', 'n1'))).resolves.toBeUndefined();
    await expect(providerNonceChallenge(challenge(400, '{"error":"use_dpop_nonce"}'))).resolves.toBeUndefined();
    await expect(providerNonceChallenge(challenge(401, '{"error":"use_dpop_nonce"}', 'n1'))).resolves.toBeUndefined();
    await expect(providerNonceChallenge(challenge(400, 'not json', 'n1'))).resolves.toBeUndefined();
  });

  it('reads an upstream\'s challenge: 401 WWW-Authenticate DPoP error="use_dpop_nonce" with a DPoP-Nonce header', () => {
    expect(upstreamNonceChallenge(401, { 'www-authenticate': 'DPoP error="use_dpop_nonce", algs="ES256"', 'dpop-nonce': 'n1' })).toBe('n1');
    expect(upstreamNonceChallenge(401, { 'www-authenticate': 'Bearer realm="x", DPoP algs="ES256", error="use_dpop_nonce"', 'dpop-nonce': 'n1' })).toBe('n1');
    expect(upstreamNonceChallenge(401, { 'www-authenticate': 'DPoP error="invalid_token"', 'dpop-nonce': 'n1' })).toBeUndefined();
    expect(upstreamNonceChallenge(401, { 'www-authenticate': 'DPoP error="use_dpop_nonce"' })).toBeUndefined();
    // not well-formed (no comma between the parameters): not understood, so not retried
    expect(upstreamNonceChallenge(401, { 'www-authenticate': 'DPoP algs="ES256" error="use_dpop_nonce"', 'dpop-nonce': 'n1' })).toBeUndefined();
    expect(upstreamNonceChallenge(403, { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': 'n1' })).toBeUndefined();
  });
});
