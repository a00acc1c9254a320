import { parseAcrValues, parseMaxAge, type StepUpRequest } from '../oidc/step-up.js';
import { parseWwwAuthenticate } from '../common/www-authenticate.js';

/** RFC 9470 §3: the error code of a resource server's step-up challenge. */
const INSUFFICIENT_USER_AUTHENTICATION = 'insufficient_user_authentication';
/** The schemes the gateway's own tokens travel in (RFC 6750, RFC 9449). */
const TOKEN_SCHEMES: ReadonlySet<string> = new Set(['bearer', 'dpop']);

/**
 * What an upstream's 401 asks the user to step up to (RFC 9470 §3): the first Bearer or DPoP
 * challenge with `error="insufficient_user_authentication"` and an `acr_values` and/or `max_age`
 * that /auth/login would accept (every ACR value listed in `allowed`). Undefined for anything else
 * (no such challenge, a malformed field, a value outside `allowed`): that 401 passes through unchanged.
 */
export function stepUpChallenge(wwwAuthenticate: string | undefined, allowed: readonly string[]): StepUpRequest | undefined {
  if (wwwAuthenticate === undefined) return undefined;
  const challenge = parseWwwAuthenticate(wwwAuthenticate)?.find(
    (candidate) => TOKEN_SCHEMES.has(candidate.scheme.toLowerCase()) && candidate.params.get('error') === INSUFFICIENT_USER_AUTHENTICATION,
  );
  if (challenge === undefined) return undefined;
  const acrRaw = challenge.params.get('acr_values');
  const maxAgeRaw = challenge.params.get('max_age');
  if (acrRaw === undefined && maxAgeRaw === undefined) return undefined;
  const acrValues = acrRaw === undefined ? undefined : parseAcrValues(acrRaw, allowed);
  const maxAgeS = maxAgeRaw === undefined ? undefined : parseMaxAge(maxAgeRaw);
  if ((acrRaw !== undefined && acrValues === undefined) || (maxAgeRaw !== undefined && maxAgeS === undefined)) return undefined;
  return { ...(acrValues === undefined ? {} : { acrValues }), ...(maxAgeS === undefined ? {} : { maxAgeS }) };
}
