import { createHash, randomBytes } from 'node:crypto';
import { BadRequestError } from '../common/gateway-error.js';
import type { Config } from '../config/config.js';
import { DpopKey } from '../oidc/dpop.js';
import type { LoginTransaction } from './login-transaction.store.js';
import { safeReturnTo } from './return-to.js';
import { loginResourceParams } from '../config/route-policy.js';
import { parseAcrValues, parseMaxAge } from '../oidc/step-up.js';

export type Prompt = 'none' | 'login' | 'consent' | 'select_account';
const PROMPTS: ReadonlySet<string> = new Set<Prompt>(['none', 'login', 'consent', 'select_account']);
const MAX_LOGIN_HINT_LENGTH = 256;
const MAX_FORWARDED_LENGTH = 256;
// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;
/** Always forwarded, and checked on their own. */
const BUILT_IN = new Set(['prompt', 'login_hint']);

/** Everything one authorization request sends, and the transaction the callback will need. */
export interface AuthorizationRequest {
  readonly transaction: LoginTransaction;
  /** Sent besides what the strategy adds (response_type, client_id, redirect_uri, scope, state). */
  readonly params: Readonly<Record<string, string | readonly string[]>>;
  readonly prompt: Prompt | undefined;
  readonly loginHint: string | undefined;
}

/**
 * Step 1 of a login: the parameters of the authorization request, from `/auth/login`'s query
 * (`returnTo`, `prompt`, `login_hint`, the step-up's `acr_values` and `max_age`, and those
 * OIDC_LOGIN_PARAMS_ALLOWED lists) and the
 * configuration. A forwarded parameter overrides OIDC_EXTRA_AUTH_PARAMS (so does `prompt`: the
 * strategy sets it last); protocol parameters are never forwarded (config refuses to list them).
 * 400 for a bad value.
 */
export function buildAuthorizationRequest(oidc: Config['oidc'], query: Readonly<Record<string, unknown>>, now: number): AuthorizationRequest {
  const prompt = query['prompt'];
  if (prompt !== undefined && (typeof prompt !== 'string' || !isPrompt(prompt))) throw new BadRequestError('prompt must be one of none, login, consent, select_account.');
  const loginHint = query['login_hint'];
  if (loginHint !== undefined && (typeof loginHint !== 'string' || loginHint.length > MAX_LOGIN_HINT_LENGTH)) {
    throw new BadRequestError(`login_hint must be a string of at most ${MAX_LOGIN_HINT_LENGTH} characters.`);
  }
  const stepUp = stepUpParams(oidc, query);
  // RFC 9449: every login its own key pair, so no two sessions' tokens share a binding
  const dpop = oidc.dpop ? DpopKey.generate() : undefined;
  const transaction: LoginTransaction = {
    state: randomValue(),
    nonce: randomValue(),
    // RFC 7636 §4.1: 32 random bytes, base64url
    codeVerifier: randomValue(),
    returnTo: safeReturnTo(query['returnTo']),
    createdAt: now,
    ...(stepUp.maxAgeS === undefined ? {} : { maxAgeS: stepUp.maxAgeS }),
    ...(stepUp.acrValues === undefined ? {} : { acrValues: stepUp.acrValues }),
    ...(dpop === undefined ? {} : { dpopKey: dpop.jwk }),
  };
  return {
    transaction,
    params: {
      ...oidc.extraAuthParams,
      // providers grant a resource at the token endpoint only if it was granted here (route tokens)
      ...loginResourceParams(oidc.loginResources),
      ...forwardedParams(oidc.loginParamsAllowed, query),
      ...(stepUp.maxAgeS === undefined ? {} : { max_age: String(stepUp.maxAgeS) }),
      ...(stepUp.acrValues === undefined ? {} : { acr_values: stepUp.acrValues.join(' ') }),
      nonce: transaction.nonce,
      // RFC 9700 §2.1.1: PKCE S256 for confidential clients too
      code_challenge: createHash('sha256').update(transaction.codeVerifier).digest('base64url'),
      code_challenge_method: 'S256',
      // RFC 9449 §10: the code is bound to the key, so only its holder can exchange it
      ...(dpop === undefined ? {} : { dpop_jkt: dpop.thumbprint }),
    },
    prompt,
    loginHint,
  };
}

/**
 * Step-up (OIDC Core §3.1.2.1): `acr_values` from the query, each listed in OIDC_ACR_VALUES_ALLOWED,
 * and `max_age`; the stricter of the query's and OIDC_EXTRA_AUTH_PARAMS's max_age is sent, so a
 * browser can ask for a more recent authentication than the configuration does, never a staler one.
 */
function stepUpParams(oidc: Config['oidc'], query: Readonly<Record<string, unknown>>): { acrValues?: string[]; maxAgeS?: number } {
  const acrQuery = query['acr_values'];
  let acrValues: string[] | undefined;
  if (acrQuery !== undefined) {
    acrValues = typeof acrQuery === 'string' ? parseAcrValues(acrQuery, oidc.acrValuesAllowed) : undefined;
    if (acrValues === undefined) {
      throw new BadRequestError(
        oidc.acrValuesAllowed.length === 0
          ? 'acr_values is not accepted: OIDC_ACR_VALUES_ALLOWED lists no values.'
          : `acr_values must be given once, as space-separated values among: ${oidc.acrValuesAllowed.join(', ')}.`,
      );
    }
  }
  const maxAgeQuery = query['max_age'];
  let maxAgeS = oidc.maxAgeS;
  if (maxAgeQuery !== undefined) {
    const requested = typeof maxAgeQuery === 'string' ? parseMaxAge(maxAgeQuery) : undefined;
    if (requested === undefined) throw new BadRequestError('max_age must be given once, as whole seconds (0 to 999999999).');
    maxAgeS = maxAgeS === undefined ? requested : Math.min(maxAgeS, requested);
  }
  return { ...(acrValues === undefined ? {} : { acrValues }), ...(maxAgeS === undefined ? {} : { maxAgeS }) };
}

function forwardedParams(allowed: readonly string[], query: Readonly<Record<string, unknown>>): Record<string, string> {
  const params: Record<string, string> = {};
  for (const name of allowed) {
    const value = query[name];
    if (value === undefined || BUILT_IN.has(name)) continue;
    if (typeof value !== 'string' || value.length > MAX_FORWARDED_LENGTH || CONTROL_CHARACTERS.test(value)) {
      throw new BadRequestError(`${name} must be given once, as at most ${MAX_FORWARDED_LENGTH} characters without control characters.`);
    }
    params[name] = value;
  }
  return params;
}

function isPrompt(value: string): value is Prompt {
  return PROMPTS.has(value);
}

function randomValue(): string {
  return randomBytes(32).toString('base64url');
}
