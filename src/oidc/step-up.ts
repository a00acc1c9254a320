/**
 * What a step-up asks the provider for, whoever asks (`/auth/login`'s query, an upstream's RFC 9470
 * challenge): one rule for both, so a challenge the gateway turns into a login URL is always one
 * that /auth/login accepts.
 */
export interface StepUpRequest {
  /** OIDC Core §3.1.2.1 `acr_values`, in the order of preference given. */
  readonly acrValues?: readonly string[];
  /** OIDC Core §3.1.2.1 `max_age`, whole seconds. */
  readonly maxAgeS?: number;
}

/** As OIDC_EXTRA_AUTH_PARAMS's max_age: whole seconds, at most nine digits (about 31 years). */
const MAX_AGE = /^\d{1,9}$/;
// as other forwarded login parameters: the values ride in the sealed login cookie until the callback
const MAX_ACR_VALUES_LENGTH = 256;

/**
 * The values of a space-separated `acr_values`, or undefined when it is empty, oversized, or names
 * a value `allowed` does not list (a repeated value counts once).
 */
export function parseAcrValues(raw: string, allowed: readonly string[]): string[] | undefined {
  if (raw.length > MAX_ACR_VALUES_LENGTH) return undefined;
  const values = [...new Set(raw.split(' ').filter((value) => value !== ''))];
  if (values.length === 0 || !values.every((value) => allowed.includes(value))) return undefined;
  return values;
}

/** `max_age` as whole seconds, or undefined when it is not 0 to 999999999. */
export function parseMaxAge(raw: string): number | undefined {
  return MAX_AGE.test(raw) ? Number(raw) : undefined;
}

/**
 * Where the SPA sends the user to step up: `/auth/login` asking for exactly `request`, without
 * `returnTo` (the SPA appends `&returnTo=` with its own path; at least one parameter is always there).
 */
export function stepUpLoginUrl(request: StepUpRequest): string {
  const params: string[] = [];
  if (request.acrValues !== undefined) params.push(`acr_values=${encodeURIComponent(request.acrValues.join(' '))}`);
  if (request.maxAgeS !== undefined) params.push(`max_age=${request.maxAgeS}`);
  return `/auth/login?${params.join('&')}`;
}
