import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt } from 'jose';
import { systemClock } from '../common/clock.js';
import { loadConfig } from '../config/config.js';
import { testEnvironment } from '../../test/support/test-env.js';
import { DpopKey } from './dpop.js';
import type { IdTokenClaims } from './id-token.validator.js';
import type { DiscoveryDocument, LoadedProvider } from './provider-metadata.js';
import { mergeUserinfo, UserinfoClient } from './userinfo-client.js';

const claims: IdTokenClaims = { iss: 'https://op.example', sub: 'u1', exp: 2, iat: 1, email: 'id@example.com' };

describe('mergeUserinfo', () => {
  it('adds the claims the ID token lacks and keeps the ID token\'s where both have one', () => {
    expect(mergeUserinfo(claims, { sub: 'u1', name: 'Ada', email: 'userinfo@example.com', picture: 'https://p.example/a.png' })).toEqual({
      ...claims,
      name: 'Ada',
      picture: 'https://p.example/a.png',
    });
  });

  it('never takes protocol claims from userinfo', () => {
    const merged = mergeUserinfo({ iss: 'https://op.example', sub: 'u1', exp: 2, iat: 1 }, { sub: 'u1', sid: 'forged', auth_time: 5, nonce: 'x' });
    expect(merged).toEqual({ iss: 'https://op.example', sub: 'u1', exp: 2, iat: 1 });
  });

  it('refuses an answer about another subject, or without one, with 502 userinfo_invalid', () => {
    for (const userinfo of [{ sub: 'u2' }, { name: 'no sub' }]) {
      expect(() => mergeUserinfo(claims, userinfo)).toThrow(expect.objectContaining({ status: 502, code: 'userinfo_invalid' }));
    }
  });
});

/**
 * A userinfo endpoint that, like a resource server under RFC 9449 §9 (oidc-provider with a nonce
 * required), answers a proof without its current nonce with a 401 DPoP `use_dpop_nonce` challenge.
 */
async function nonceDemandingUserinfo(): Promise<{ readonly url: string; readonly proofs: Array<Record<string, unknown>>; rotate(): void; close(): Promise<void> }> {
  const proofs: Array<Record<string, unknown>> = [];
  let nonce = 'n-1';
  const server: Server = createServer((req: IncomingMessage, res) => {
    const proof = decodeJwt(String(req.headers.dpop));
    proofs.push(proof);
    if (proof['nonce'] !== nonce) {
      res.writeHead(401, { 'www-authenticate': 'DPoP error="use_dpop_nonce", error_description="nonce required"', 'dpop-nonce': nonce, 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'use_dpop_nonce' }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sub: 'u1', name: 'Ada' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/userinfo`,
    proofs,
    rotate: () => {
      nonce = `${nonce}+`;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('UserinfoClient with DPoP (RFC 9449 §9: the userinfo endpoint is a resource server)', () => {
  it('answers a use_dpop_nonce challenge once with the nonce, and sends the nonce it learnt from then on', async () => {
    const endpoint = await nonceDemandingUserinfo();
    try {
      const config = loadConfig(testEnvironment());
      const provider: Pick<LoadedProvider, 'document'> = { document: { userinfo_endpoint: endpoint.url } as unknown as DiscoveryDocument };
      const client = new UserinfoClient(config, { get: () => provider as LoadedProvider }, systemClock);
      const key = DpopKey.generate();
      await expect(client.fetch('at-1', key)).resolves.toEqual({ sub: 'u1', name: 'Ada' });
      expect(endpoint.proofs.map((proof) => proof['nonce'])).toEqual([undefined, 'n-1']);
      await expect(client.fetch('at-2', key)).resolves.toEqual({ sub: 'u1', name: 'Ada' });
      expect(endpoint.proofs.map((proof) => proof['nonce'])).toEqual([undefined, 'n-1', 'n-1']);
      endpoint.rotate();
      await expect(client.fetch('at-3', key)).resolves.toEqual({ sub: 'u1', name: 'Ada' });
      expect(endpoint.proofs.slice(3).map((proof) => proof['nonce'])).toEqual(['n-1', 'n-1+']);
      expect(endpoint.proofs.every((proof) => proof['htm'] === 'GET' && proof['htu'] === endpoint.url && typeof proof['ath'] === 'string')).toBe(true);
    } finally {
      await endpoint.close();
    }
  });
});
