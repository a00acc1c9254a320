/**
 * What every token-endpoint answer means, for every grant (authorization_code, refresh_token, and
 * any later one), and every pushed authorization request's (RFC 9126 §2.3 uses the same error
 * responses; a refused grant there is a refused request): one ordered table, read top to bottom, first match wins. RFC 6749 §5.2 says an
 * error answer is a 400 (401 for client authentication) with a JSON `error`; real providers and
 * what stands in front of them also send 403, 429, HTML, or nothing at all.
 */

/** What came back from the token endpoint, reduced to what the table looks at. */
export type TokenAnswer =
  /** No HTTP answer: connection refused or reset, DNS, TLS, or the request timed out. */
  | { readonly kind: 'network' }
  | {
      readonly kind: 'http';
      readonly status: number;
      /** The OAuth `error` member when the body is a JSON object carrying a string one. */
      readonly error: string | undefined;
      /** A token response whose `token_type` is not DPoP though the request carried a DPoP proof (OIDC_DPOP). */
      readonly unboundToken?: boolean;
    };

export type TokenFailure =
  /** The provider is down, overloaded or behind something refusing us: retry later, keep the session. */
  | 'provider_unavailable'
  /** The provider refused the gateway's own credentials: an operator must fix the configuration. */
  | 'client_authentication_failed'
  /** The provider refused the grant itself: the refresh token (or code) is dead. */
  | 'grant_rejected'
  /** A 2xx that is not a token response. */
  | 'token_response_invalid'
  /** RFC 9449 §5: a token response that is not DPoP-bound (token_type Bearer) though a DPoP proof was sent. */
  | 'token_type_invalid';

interface TokenRule {
  /** The row number, for logs and tests. */
  readonly row: number;
  readonly when: (answer: TokenAnswer) => boolean;
  readonly outcome: TokenFailure;
}

// RFC 9449 §8: a nonce challenge still standing after the one retry with the provider's nonce is
// the provider's trouble, never the end of a grant
const OUTAGE_ERRORS = new Set(['temporarily_unavailable', 'slow_down', 'use_dpop_nonce']);
// RFC 9449 §5: a refused proof is the gateway's own credential (its key or its clock), like its client credentials
const CLIENT_ERRORS = new Set(['invalid_client', 'unauthorized_client', 'invalid_dpop_proof']);

const status = (answer: TokenAnswer): number | undefined => (answer.kind === 'http' ? answer.status : undefined);
const oauthError = (answer: TokenAnswer): string | undefined => (answer.kind === 'http' ? answer.error : undefined);
const between = (answer: TokenAnswer, low: number, high: number): boolean => {
  const s = status(answer);
  return s !== undefined && s >= low && s <= high;
};

export const TOKEN_RULES: readonly TokenRule[] = [
  // RFC 6749 §5.2 / RFC 8628 §3.5: temporarily_unavailable and slow_down ask the client to come back later
  {
    row: 1,
    when: (a) => a.kind === 'network' || status(a) === 408 || status(a) === 429 || between(a, 500, 599) || OUTAGE_ERRORS.has(oauthError(a) ?? ''),
    outcome: 'provider_unavailable',
  },
  { row: 2, when: (a) => status(a) === 401 || CLIENT_ERRORS.has(oauthError(a) ?? ''), outcome: 'client_authentication_failed' },
  // a 400 is the provider's answer to this grant whatever its body (glewlwyd sends an empty one for a
  // revoked refresh token); a 403 only when it carries an OAuth error (glewlwyd's invalid_code), since
  // a bare 403 is as likely a WAF or proxy in front of the provider
  { row: 3, when: (a) => status(a) === 400 || (status(a) === 403 && oauthError(a) !== undefined), outcome: 'grant_rejected' },
  { row: 4, when: (a) => between(a, 400, 499), outcome: 'provider_unavailable' },
  // the token client only asks about a 2xx when it is not a valid token response
  { row: 5, when: (a) => between(a, 200, 299) && a.kind === 'http' && a.unboundToken === true, outcome: 'token_type_invalid' },
  { row: 6, when: (a) => between(a, 200, 299), outcome: 'token_response_invalid' },
];

/** 1xx and 3xx never reach here (fetch follows no redirect: it fails, which is a network error). */
const FALLBACK: TokenRule = { row: 4, when: () => true, outcome: 'provider_unavailable' };

/** The first matching rule of TOKEN_RULES. */
export function classifyTokenAnswer(answer: TokenAnswer): { readonly row: number; readonly outcome: TokenFailure } {
  const rule = TOKEN_RULES.find((r) => r.when(answer)) ?? FALLBACK;
  return { row: rule.row, outcome: rule.outcome };
}

/** The answer's body as JSON; undefined when empty or not JSON (TOKEN_RULES then decides by status alone). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The OAuth `error` member of an error body (RFC 6749 §5.2), when there is a string one. */
export function oauthErrorOf(body: unknown): string | undefined {
  const error: unknown = typeof body === 'object' && body !== null ? Reflect.get(body, 'error') : undefined;
  return typeof error === 'string' ? error : undefined;
}

/** The provider's Retry-After is honoured up to this; beyond, it is probably a mistake. */
export const MAX_PROVIDER_RETRY_AFTER_S = 300;

/**
 * RFC 9110 §10.2.3: delta-seconds or an HTTP-date, capped at MAX_PROVIDER_RETRY_AFTER_S; undefined
 * when absent or unreadable.
 */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  let seconds: number;
  if (/^\d+$/.test(text)) seconds = Number(text);
  else {
    // every HTTP-date form starts with the day name
    const at = /^[A-Za-z]{3}/.test(text) ? Date.parse(text) : Number.NaN;
    if (Number.isNaN(at)) return undefined;
    seconds = Math.ceil((at - now) / 1000);
  }
  return Math.min(Math.max(seconds, 0), MAX_PROVIDER_RETRY_AFTER_S);
}
