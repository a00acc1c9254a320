import { Inject, Injectable } from '@nestjs/common';
import { decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { CLOCK, type Clock } from '../common/clock.js';
import { GatewayError } from '../common/gateway-error.js';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { ProviderUnavailableError } from './oidc.errors.js';
import { tenantProblem } from './issuer.js';
import { describeJoseError, joseFailureReason } from './jose-errors.js';
import { ProviderMetadata } from './provider-metadata.js';

const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** A logout token older than this is refused even within its validity, so remembered jtis can expire. */
const MAX_TOKEN_AGE_S = 600;

export class LogoutTokenInvalidError extends GatewayError {
  constructor(
    /** Why, as a stable snake_case code for the log line (the problem's `code` stays logout_token_invalid). */
    readonly reason: string,
    detail: string,
  ) {
    super(400, 'logout_token_invalid', 'Invalid logout token', detail);
  }
}

export interface LogoutClaims {
  readonly jti: string;
  readonly sub: string | undefined;
  readonly sid: string | undefined;
  /** Epoch seconds until which the jti must be remembered. */
  readonly rememberUntilS: number;
}

/** OpenID Connect Back-Channel Logout 1.0 §2.6: the checks a logout token must pass. */
@Injectable()
export class LogoutTokenValidator {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly provider: ProviderMetadata,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  async validate(token: string): Promise<LogoutClaims> {
    const { clientId, clockSkewS, idTokenAlgs } = this.config.oidc;
    const { jwks, issuers } = this.provider.get();
    try {
      decodeProtectedHeader(token);
    } catch {
      throw new LogoutTokenInvalidError('malformed', 'The logout token is not a signed JWT.');
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks.resolver(false), {
        issuer: [...issuers.keys()],
        audience: clientId,
        algorithms: [...idTokenAlgs],
        clockTolerance: clockSkewS,
        currentDate: new Date(this.clock.now()),
        maxTokenAge: MAX_TOKEN_AGE_S,
        // §2.4 of the final spec (2022) requires exp as well, but draft 06 did not, and providers
        // built on it (glewlwyd) send none: the token's age then rests on iat and maxTokenAge alone.
        // A present exp is still checked.
        requiredClaims: ['iat', 'jti'],
      }));
    } catch (error) {
      if (error instanceof ProviderUnavailableError) throw error;
      throw new LogoutTokenInvalidError(joseFailureReason(error), describeJoseError(error, 'logout token'));
    }
    const tenant = tenantProblem(issuers, payload.iss, payload['tid']);
    if (tenant !== undefined) throw new LogoutTokenInvalidError('claim_tid', `The logout token names ${tenant}.`);
    const events = payload['events'];
    if (typeof events !== 'object' || events === null || Array.isArray(events) || !(BACKCHANNEL_LOGOUT_EVENT in events)) {
      throw new LogoutTokenInvalidError('events', 'The logout token lacks the back-channel logout event.');
    }
    const event: unknown = Reflect.get(events, BACKCHANNEL_LOGOUT_EVENT);
    if (typeof event !== 'object' || event === null || Array.isArray(event)) throw new LogoutTokenInvalidError('events', 'The back-channel logout event must be a JSON object.');
    // §2.4: a nonce would let an ID token pass as a logout token
    if ('nonce' in payload) throw new LogoutTokenInvalidError('nonce', 'A logout token must not contain a nonce.');
    const sub = typeof payload.sub === 'string' && payload.sub !== '' ? payload.sub : undefined;
    const sidClaim = payload['sid'];
    const sid = typeof sidClaim === 'string' && sidClaim !== '' ? sidClaim : undefined;
    if (sub === undefined && sid === undefined) throw new LogoutTokenInvalidError('no_subject', 'The logout token names neither a session (sid) nor a subject (sub).');
    const iat = payload.iat ?? 0;
    if (iat > this.clock.now() / 1000 + clockSkewS) throw new LogoutTokenInvalidError('claim_iat', 'The logout token was issued in the future (iat).');
    const jti = payload.jti ?? '';
    return { jti, sub, sid, rememberUntilS: Math.max(payload.exp ?? iat, iat + MAX_TOKEN_AGE_S) + clockSkewS };
  }
}
