import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/config.js';
import type { PublicClientJwk } from '../oidc/client-keys.js';

export const JWKS_PATH = '/auth/jwks.json';
/** Short enough that a rotated-in key is seen within minutes; providers cache a jwks_uri themselves too. */
const JWKS_MAX_AGE_S = 300;

/** What /auth/jwks.json serves: the public halves only (never d, p, q, dp, dq, qi or k). */
export function publishedJwks(auth: Config['oidc']['clientAuth']): { readonly keys: readonly PublicClientJwk[] } | undefined {
  return auth.method === 'private_key_jwt' ? { keys: auth.keys.map((key) => key.publicJwk) } : undefined;
}

/**
 * `GET /auth/jwks.json`: the client's public keys (RFC 7517 JWK Set), so a provider can be
 * registered with `jwks_uri` = `PUBLIC_URL/auth/jwks.json` and follow rotations on its own. Only
 * with private_key_jwt: otherwise the route does not exist (404 as for any unknown path). A child
 * scope: its onSend runs after the /auth scope's and makes the public document cacheable briefly.
 */
export async function registerJwks(fastify: FastifyInstance, config: Config): Promise<void> {
  const jwks = publishedJwks(config.oidc.clientAuth);
  if (jwks === undefined) return;
  const body = JSON.stringify(jwks);
  await fastify.register((scope, _options, done) => {
    scope.addHook('onSend', (_request, reply, payload, next) => {
      void reply.header('cache-control', `public, max-age=${JWKS_MAX_AGE_S}`);
      next(null, payload);
    });
    scope.get(JWKS_PATH, (_request, reply) => reply.type('application/jwk-set+json').send(body));
    done();
  });
}
