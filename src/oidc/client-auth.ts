import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { SignJWT } from 'jose';
import { CLOCK, type Clock } from '../common/clock.js';
import { CONFIG } from '../config/config.module.js';
import type { ClientAuthConfig, Config } from '../config/config.js';
import type { ClientKey } from './client-keys.js';
import { ProviderUnavailableError } from './oidc.errors.js';
import { ProviderMetadata } from './provider-metadata.js';

export type FormParams = Readonly<Record<string, string | readonly string[] | undefined>>;

/** RFC 7523 §2.2. */
export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** RFC 7523 §3 asks for a short life; providers refuse long ones (FAPI 2.0 and Corppass among them). */
export const ASSERTION_LIFETIME_S = 60;

export interface AssertionClaims {
  readonly clientId: string;
  readonly audience: string;
  /** Milliseconds since the epoch (the injected CLOCK). */
  readonly now: number;
}

/**
 * An RFC 7523 client assertion: iss = sub = the client id, the audience, a fresh jti (the provider
 * refuses a replayed one), iat and exp 60 s later. `typ: JWT` (RFC 7519 §5.1), the common value in
 * providers' own examples; oidc-provider does not check it.
 */
export async function clientAssertion(key: ClientKey, claims: AssertionClaims): Promise<string> {
  const iat = Math.floor(claims.now / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .setIssuer(claims.clientId)
    .setSubject(claims.clientId)
    .setAudience(claims.audience)
    .setJti(randomBytes(32).toString('base64url'))
    .setIssuedAt(iat)
    .setExpirationTime(iat + ASSERTION_LIFETIME_S)
    .sign(key.privateKey);
}

/**
 * The one place the gateway authenticates itself to the provider (token, PAR and revocation
 * endpoints): client_secret_basic, client_secret_post or private_key_jwt, as configured.
 */
@Injectable()
export class ClientAuthentication {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    // only its loaded document is read: --check-config hands in one it loaded itself
    @Inject(ProviderMetadata) private readonly provider: Pick<ProviderMetadata, 'get'>,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  /**
   * POSTs a form to one of the provider's endpoints with the client's credentials. `headers` adds
   * to the request's (a DPoP proof, say). Throws ProviderUnavailableError when it cannot be reached.
   */
  async post(endpoint: string, params: FormParams, headers: Readonly<Record<string, string>> = {}): Promise<Response> {
    const form = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) {
      // RFC 8707 §2: several resources are several `resource` parameters
      for (const one of typeof value === 'string' ? [value] : (value ?? [])) form.append(name, one);
    }
    const all: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers };
    const authorization = await this.authenticate(form);
    if (authorization !== undefined) all['authorization'] = authorization;
    try {
      return await fetch(endpoint, { method: 'POST', headers: all, body: form, signal: AbortSignal.timeout(this.config.oidc.httpTimeoutS * 1000), redirect: 'error' });
    } catch (error) {
      throw new ProviderUnavailableError('The identity provider cannot be reached.', error);
    }
  }

  /** Adds the credentials to the form; returns the Authorization header value for client_secret_basic. */
  private async authenticate(form: URLSearchParams): Promise<string | undefined> {
    const { clientId } = this.config.oidc;
    const auth: ClientAuthConfig = this.config.oidc.clientAuth;
    switch (auth.method) {
      case 'client_secret_basic':
        // RFC 6749 §2.3.1: id and secret are form-urlencoded before Base64.
        return `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(auth.secret)}`).toString('base64')}`;
      case 'client_secret_post':
        form.set('client_id', clientId);
        form.set('client_secret', auth.secret);
        return undefined;
      case 'private_key_jwt': {
        const [signing] = auth.keys;
        if (signing === undefined) throw new Error('private_key_jwt without a key (loadConfig refuses this)');
        const { document } = this.provider.get();
        // FAPI 2.0 §5.3.2.1 and RFC 9126 §2: the issuer is an audience every endpoint accepts
        const audience = auth.assertionAudience === 'issuer' ? document.issuer : document.token_endpoint;
        form.set('client_id', clientId);
        form.set('client_assertion_type', JWT_BEARER_ASSERTION_TYPE);
        form.set('client_assertion', await clientAssertion(signing, { clientId, audience, now: this.clock.now() }));
        return undefined;
      }
    }
  }
}

function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}
