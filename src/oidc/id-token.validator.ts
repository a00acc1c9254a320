import { Inject, Injectable } from '@nestjs/common';
import { decodeJwt, jwtVerify, type JWTPayload } from 'jose';
import { CLOCK, type Clock } from '../common/clock.js';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { IdTokenInvalidError, IdTokenMismatchError, ProviderUnavailableError } from './oidc.errors.js';
import { tenantProblem } from './issuer.js';
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
export const PROTOCOL_CLAIMS: ReadonlySet<string> = new Set(['iss', 'aud', 'azp', 'exp', 'iat', 'nbf', 'jti', 'nonce', 'at_hash', 'c_hash', 's_hash', 'auth_time', 'acr', 'amr', 'sid']);

export function userClaims(claims: JWTPayload): Record<string, unknown> {
  return Object.fromEntries(Object.entries(claims).filter(([name]) => !PROTOCOL_CLAIMS.has(name)));
}

/** How the user authenticated (OIDC Core §2): the ID token's acr, amr and auth_time, where present and well-formed. */
export interface AuthenticationClaims {
  readonly acr?: string;
  readonly amr?: readonly string[];
  /** Epoch seconds. */
  readonly auth_time?: number;
}

/**
 * The authentication claims of an ID token the gateway validated (the session's current one): read
 * from it rather than copied into the record, so a refreshed ID token's answer is the one shown.
 */
export function authenticationClaims(idToken: string): AuthenticationClaims {
  const payload = decodePayload(idToken);
  if (payload === undefined) return {};
  const { acr, amr, auth_time: authTime } = payload;
  return {
    ...(typeof acr === 'string' ? { acr } : {}),
    ...(Array.isArray(amr) && amr.every((method) => typeof method === 'string') ? { amr } : {}),
    // some providers send auth_time 0 for "not known" (glewlwyd)
    ...(typeof authTime === 'number' && authTime > 0 ? { auth_time: authTime } : {}),
  };
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
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  async validate(idToken: string, expectedNonce: string): Promise<IdTokenClaims> {
    const payload = await this.verify(idToken);
    if (payload['nonce'] !== expectedNonce) throw new IdTokenInvalidError('The ID token\'s nonce does not match the one sent at login.');
    return this.claimsOf(payload);
  }

  /**
   * An ID token from a refresh (OIDC Core §12.2): the login checks except nonce, and iss, sub and
   * aud equal to those of the session's current ID token (IdTokenMismatchError otherwise). A nonce,
   * when present, must be the original one; auth_time, when both have it, must not change.
   */
  async validateRefreshed(idToken: string, sessionIdToken: string): Promise<IdTokenClaims> {
    const payload = await this.verify(idToken);
    const original = decodePayload(sessionIdToken);
    if (original === undefined) throw new IdTokenInvalidError('The session\'s ID token cannot be read to compare the refreshed one with.');
    if (payload.iss !== original.iss) throw new IdTokenMismatchError('iss');
    if (payload.sub !== original.sub) throw new IdTokenMismatchError('sub');
    if (!sameAudiences(payload.aud, original.aud)) throw new IdTokenMismatchError('aud');
    if (payload['nonce'] !== undefined && payload['nonce'] !== original['nonce']) throw new IdTokenInvalidError('The refreshed ID token carries a nonce other than the original one.');
    if (payload.auth_time !== undefined && original.auth_time !== undefined && payload.auth_time !== original.auth_time) {
      throw new IdTokenInvalidError('The refreshed ID token\'s auth_time is not the original authentication time.');
    }
    return this.claimsOf(payload);
  }

  /** OIDC Core §3.1.3.7 steps 2-10, all but the nonce. */
  private async verify(idToken: string): Promise<JWTPayload> {
    const { clientId, clockSkewS, idTokenAlgs } = this.config.oidc;
    const { jwks, issuers } = this.provider.get();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(idToken, jwks.resolver(true), {
        issuer: [...issuers.keys()],
        audience: clientId,
        // never `none`, never HMAC: config refuses both, and jose refuses an alg its key type cannot do
        algorithms: [...idTokenAlgs],
        clockTolerance: clockSkewS,
        currentDate: new Date(this.clock.now()),
        requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat'],
      }));
    } catch (error) {
      if (error instanceof ProviderUnavailableError) throw error;
      throw new IdTokenInvalidError(describeJoseError(error, 'ID token'), error);
    }
    const tenant = tenantProblem(issuers, payload.iss, payload['tid']);
    if (tenant !== undefined) throw new IdTokenInvalidError(`The ID token names ${tenant}.`);
    const nowS = this.clock.now() / 1000;
    if (typeof payload.iat !== 'number' || payload.iat > nowS + clockSkewS) throw new IdTokenInvalidError('The ID token was issued in the future (iat).');
    if (typeof payload.exp !== 'number') throw new IdTokenInvalidError('The ID token has no expiry (exp).');
    if (typeof payload.sub !== 'string' || payload.sub === '') throw new IdTokenInvalidError('The ID token has no subject (sub).');
    const audiences = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    const azp = payload['azp'];
    // §3.1.3.7 steps 3-5: extra audiences are untrusted unless azp names this client
    if (azp !== undefined && azp !== clientId) throw new IdTokenInvalidError('The ID token was issued to another party (azp).');
    if (audiences.length > 1 && azp !== clientId) throw new IdTokenInvalidError('The ID token has several audiences and no authorized party (azp) naming this client.');
    return payload;
  }

  private claimsOf(payload: JWTPayload): IdTokenClaims {
    const sub = payload.sub ?? '';
    const sid = payload['sid'];
    return { ...payload, iss: payload.iss ?? this.config.oidc.issuer, sub, exp: payload.exp ?? 0, iat: payload.iat ?? 0, ...(typeof sid === 'string' ? { sid } : {}) };
  }
}

/** The payload of a JWT the gateway validated earlier (the session's own ID token); never trusted input. */
function decodePayload(jwt: string): JWTPayload | undefined {
  try {
    return decodeJwt(jwt);
  } catch {
    return undefined; // not a JWT: the caller reports it
  }
}

function sameAudiences(a: JWTPayload['aud'], b: JWTPayload['aud']): boolean {
  const left = new Set(Array.isArray(a) ? a : [a]);
  const right = new Set(Array.isArray(b) ? b : [b]);
  return left.size === right.size && [...left].every((value) => right.has(value));
}
