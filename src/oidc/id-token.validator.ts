import { Inject, Injectable } from '@nestjs/common';
import { jwtVerify, type JWTPayload } from 'jose';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { IdTokenInvalidError, ProviderUnavailableError } from './oidc.errors.js';
import { describeJoseError } from './jose-errors.js';
import { ProviderMetadata } from './provider-metadata.js';

export interface IdTokenClaims extends JWTPayload {
  readonly iss: string;
  readonly sub: string;
  readonly exp: number;
  readonly iat: number;
  readonly sid?: string;
}

/** Protocol claims that are not about the user; /auth/me shows the rest. */
const PROTOCOL_CLAIMS = new Set(['iss', 'aud', 'azp', 'exp', 'iat', 'nbf', 'jti', 'nonce', 'at_hash', 'c_hash', 's_hash', 'auth_time', 'acr', 'amr', 'sid']);

export function userClaims(claims: JWTPayload): Record<string, unknown> {
  return Object.fromEntries(Object.entries(claims).filter(([name]) => !PROTOCOL_CLAIMS.has(name)));
}

/**
 * ID token validation per OIDC Core §3.1.3.7: signature against the provider's JWKS with an
 * algorithm allow-list, iss, aud, azp, exp, iat, nonce, sub. passport-openidconnect checks no
 * signature, so this runs before it sees the token.
 */
@Injectable()
export class IdTokenValidator {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly provider: ProviderMetadata,
  ) {}

  async validate(idToken: string, expectedNonce: string): Promise<IdTokenClaims> {
    const { issuer, clientId, clockSkewS, idTokenAlgs } = this.config.oidc;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(idToken, this.provider.get().jwks.resolver(true), {
        issuer,
        audience: clientId,
        // never `none`, never HMAC: config refuses both, and jose refuses an alg its key type cannot do
        algorithms: [...idTokenAlgs],
        clockTolerance: clockSkewS,
        requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat'],
      }));
    } catch (error) {
      if (error instanceof ProviderUnavailableError) throw error;
      throw new IdTokenInvalidError(describeJoseError(error, 'ID token'), error);
    }
    const nowS = Date.now() / 1000;
    if (typeof payload.iat !== 'number' || payload.iat > nowS + clockSkewS) throw new IdTokenInvalidError('The ID token was issued in the future (iat).');
    if (typeof payload.exp !== 'number') throw new IdTokenInvalidError('The ID token has no expiry (exp).');
    if (typeof payload.sub !== 'string' || payload.sub === '') throw new IdTokenInvalidError('The ID token has no subject (sub).');
    const audiences = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    const azp = payload['azp'];
    // §3.1.3.7 steps 3-5: extra audiences are untrusted unless azp names this client
    if (azp !== undefined && azp !== clientId) throw new IdTokenInvalidError('The ID token was issued to another party (azp).');
    if (audiences.length > 1 && azp !== clientId) throw new IdTokenInvalidError('The ID token has several audiences and no authorized party (azp) naming this client.');
    if (payload['nonce'] !== expectedNonce) throw new IdTokenInvalidError('The ID token\'s nonce does not match the one sent at login.');
    const sid = payload['sid'];
    return { ...payload, iss: issuer, sub: payload.sub, exp: payload.exp, iat: payload.iat, ...(typeof sid === 'string' ? { sid } : {}) };
  }
}
