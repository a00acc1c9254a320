import { randomBytes } from 'node:crypto';

/**
 * OAuth 2.0 Token Exchange (RFC 8693) for the misbehaving test provider: it exchanges an access
 * token the provider issued for one for a registered audience or resource, after checking
 * `subject_token`, `subject_token_type` and the target (client authentication is checked by the
 * token endpoint before it gets here). `response` bends a successful answer.
 */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

export interface TokenExchangeRecord {
  readonly params: Readonly<Record<string, string>>;
  /** `exchanged`, or the OAuth error sent. */
  readonly outcome: string;
}

export interface TokenExchangeAnswer {
  readonly status: number;
  readonly body: Readonly<Record<string, unknown>>;
}

export class TokenExchangeEmulation {
  /** Audiences and resources tokens are issued for; anything else is `invalid_target`. */
  readonly targets = new Set<string>();
  /** Access tokens the provider issued: the only subject tokens it accepts. */
  readonly issued = new Set<string>();
  /** Exchanged tokens, with the target each was issued for. */
  readonly exchanged = new Map<string, string>();
  readonly requests: TokenExchangeRecord[] = [];
  /** Members merged over a successful answer; undefined removes one (e.g. `issued_token_type`). */
  response: Readonly<Record<string, unknown>> = {};

  answer(params: Readonly<Record<string, string>>): TokenExchangeAnswer {
    const refuse = (error: string): TokenExchangeAnswer => {
      this.requests.push({ params, outcome: error });
      return { status: 400, body: { error } };
    };
    // RFC 8693 §2.1: subject_token and subject_token_type are required
    if (params['subject_token_type'] !== ACCESS_TOKEN_TYPE) return refuse('invalid_request');
    const subject = params['subject_token'];
    if (subject === undefined || !this.issued.has(subject)) return refuse('invalid_grant');
    const target = params['audience'] ?? params['resource'];
    if (target === undefined || !this.targets.has(target)) return refuse('invalid_target');
    const accessToken = randomBytes(24).toString('base64url');
    this.exchanged.set(accessToken, target);
    this.requests.push({ params, outcome: 'exchanged' });
    const body: Record<string, unknown> = { access_token: accessToken, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: 300 };
    for (const [name, value] of Object.entries(this.response)) {
      if (value === undefined) delete body[name];
      else body[name] = value;
    }
    return { status: 200, body };
  }

  reset(): void {
    this.targets.clear();
    this.exchanged.clear();
    this.requests.length = 0;
    this.response = {};
  }
}
