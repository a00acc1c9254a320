import type { IncomingHttpHeaders } from 'node:http';
import type { Clock } from '../common/clock.js';
import { DpopNonces, upstreamNonceChallenge, type DpopKey } from '../oidc/dpop.js';

/** Upstream origins whose latest DPoP nonce is kept (routes are few; the bound is a safeguard). */
const MAX_UPSTREAM_NONCES = 1024;

/**
 * One upstream request's DPoP binding (RFC 9449 §7): the `DPoP` authorization scheme and a proof
 * for exactly this method and URI, signed with the key the token is bound to.
 */
export class UpstreamBinding {
  constructor(
    private readonly key: DpopKey,
    private readonly accessToken: string,
    private readonly htm: string,
    /** The route target's origin plus the upstream path (the proof drops the query). */
    private readonly htu: string,
    private readonly origin: string,
    private readonly nonces: DpopNonces,
    private readonly clock: Clock,
  ) {}

  /** The Authorization header value. */
  get authorization(): string {
    return `DPoP ${this.accessToken}`;
  }

  /** A fresh proof, with `nonce` or else the upstream's latest one. */
  proof(nonce: string | undefined = this.nonces.get(this.origin)): string {
    return this.key.proof({ htm: this.htm, htu: this.htu, nonce, accessToken: this.accessToken }, this.clock.now());
  }

  /**
   * Reads the upstream's answer: a DPoP-Nonce it offers is kept for the next request to that origin
   * (RFC 9449 §9, on success too); the nonce to retry with when the answer is a use_dpop_nonce challenge.
   */
  answered(status: number | undefined, headers: IncomingHttpHeaders): string | undefined {
    const nonce = headers['dpop-nonce'];
    this.nonces.remember(this.origin, typeof nonce === 'string' ? nonce : undefined);
    return upstreamNonceChallenge(status, headers);
  }
}

/** The upstreams' DPoP nonces, per origin, and the bindings of the requests sent to them. */
export class UpstreamDpop {
  private readonly nonces = new DpopNonces(MAX_UPSTREAM_NONCES);

  constructor(private readonly clock: Clock) {}

  /** `target` is the route's upstream (its scheme and host); `path` the upstream path, query included. */
  bind(key: DpopKey, accessToken: string, method: string, target: { readonly protocol?: string | null; readonly host?: string | null }, path: string): UpstreamBinding {
    const origin = `${target.protocol ?? 'http:'}//${target.host ?? ''}`;
    return new UpstreamBinding(key, accessToken, method, `${origin}${path}`, origin, this.nonces, this.clock);
  }
}
