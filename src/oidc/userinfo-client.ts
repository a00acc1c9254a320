import { Inject, Injectable } from '@nestjs/common';
import { CLOCK, type Clock } from '../common/clock.js';
import { CONFIG } from '../config/config.module.js';
import { DpopNonces, sendWithDpop, type DpopKey } from './dpop.js';
import type { Config } from '../config/config.js';
import { PROTOCOL_CLAIMS, type IdTokenClaims } from './id-token.validator.js';
import { ProviderUnavailableError, UserinfoInvalidError } from './oidc.errors.js';
import { ProviderMetadata } from './provider-metadata.js';

/** OIDC Core §5.3: the userinfo endpoint, read once at login (OIDC_USERINFO=true). */
@Injectable()
export class UserinfoClient {
  /** The userinfo endpoint's latest DPoP nonce (RFC 9449 §9), per process: each request sends it, saving a challenge. */
  private readonly dpopNonces = new DpopNonces(4);

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    // only its loaded document is read
    @Inject(ProviderMetadata) private readonly provider: Pick<ProviderMetadata, 'get'>,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  /**
   * The userinfo claims for this access token. 503 when the provider is unavailable, 502 for an
   * unusable answer. `dpop`: the key the token is bound to (RFC 9449 §7: DPoP scheme and a proof).
   */
  async fetch(accessToken: string, dpop?: DpopKey): Promise<Readonly<Record<string, unknown>>> {
    const endpoint = this.provider.get().document.userinfo_endpoint;
    if (endpoint === undefined) throw new UserinfoInvalidError('The provider advertises no userinfo endpoint.');
    const send = (headers: Readonly<Record<string, string>>): Promise<Response> =>
      fetch(endpoint, { headers: { accept: 'application/json', ...headers }, signal: AbortSignal.timeout(this.config.oidc.httpTimeoutS * 1000), redirect: 'error' });
    let response: Response;
    let text: string;
    try {
      response =
        dpop === undefined
          ? await send({ authorization: `Bearer ${accessToken}` })
          : await sendWithDpop({ key: dpop, endpoint, method: 'GET', accessToken, nonces: this.dpopNonces, now: () => this.clock.now() }, (headers) => send({ authorization: `DPoP ${accessToken}`, ...headers }));
      text = await response.text();
    } catch (error) {
      throw new ProviderUnavailableError('The identity provider\'s userinfo endpoint cannot be reached.', error);
    }
    if (response.status >= 500 || response.status === 429) throw new ProviderUnavailableError(`The identity provider answered ${response.status} at its userinfo endpoint.`);
    if (!response.ok) throw new UserinfoInvalidError(`The userinfo endpoint refused the new access token (${response.status}).`);
    const body = parseObject(text);
    // a signed or encrypted userinfo answer (application/jwt) is not supported: ask for JSON
    if (body === undefined) throw new UserinfoInvalidError('The userinfo endpoint did not answer with a JSON object.');
    return body;
  }
}

/**
 * OIDC Core §5.3.2: the userinfo `sub` must equal the ID token's, else the answer is not about this
 * user. Claims the ID token lacks are added; where both have one, the signed ID token's wins;
 * protocol claims (sid, auth_time, ...) come from the ID token only.
 */
export function mergeUserinfo(claims: IdTokenClaims, userinfo: Readonly<Record<string, unknown>>): IdTokenClaims {
  if (userinfo['sub'] !== claims.sub) throw new UserinfoInvalidError('The userinfo answer is about another subject (sub) than the ID token.');
  const added = Object.fromEntries(Object.entries(userinfo).filter(([name]) => !PROTOCOL_CLAIMS.has(name)));
  return { ...added, ...claims };
}

function parseObject(text: string): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined; // not JSON: the caller reports it
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? { ...value } : undefined;
}
