import { errors } from 'jose';

/**
 * What a failed jose verification means, in words a problem `detail` can carry: which check failed,
 * never the token or key material.
 */
export function describeJoseError(error: unknown, token: 'ID token' | 'logout token'): string {
  if (error instanceof errors.JWTExpired) return `The ${token} has expired (exp).`;
  if (error instanceof errors.JWTClaimValidationFailed) return `The ${token}'s ${error.claim} claim is not valid (${error.reason}).`;
  if (error instanceof errors.JWSSignatureVerificationFailed) return `The ${token}'s signature does not verify against the provider's keys.`;
  if (error instanceof errors.JWKSNoMatchingKey) return `The ${token} is signed with a key the provider does not publish.`;
  if (error instanceof errors.JOSEAlgNotAllowed) return `The ${token} is signed with an algorithm that is not allowed.`;
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return `The ${token} is malformed.`;
  if (error instanceof errors.JOSENotSupported) return `The ${token} uses an unsupported algorithm or key.`;
  return `The ${token} could not be validated.`;
}

/** The same failure as a stable snake_case reason code, for log lines (`claim_<name>` for a claim check). */
export function joseFailureReason(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'expired';
  if (error instanceof errors.JWTClaimValidationFailed) return `claim_${error.claim}`;
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'signature';
  if (error instanceof errors.JWKSNoMatchingKey) return 'unknown_key';
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) return 'algorithm';
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return 'malformed';
  return 'invalid';
}
