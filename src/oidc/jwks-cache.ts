import { createLocalJWKSet, errors, type JSONWebKeySet, type JWSHeaderParameters, type FlattenedJWSInput, type CryptoKey } from 'jose';
import type { Clock } from '../common/clock.js';
import { ProviderUnavailableError } from './oidc.errors.js';
import { fetchJson } from './provider-http.js';

/** Untrusted tokens (back-channel logout) may refetch for an unknown kid at most this often. */
const UNTRUSTED_REFETCH_INTERVAL_MS = 10_000;

export type KeyResolver = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;

/**
 * The provider's signing keys. An unknown `kid` triggers one refetch, so key rotation just works.
 * Refetches are single-flight; tokens that anyone can post (logout tokens) are rate limited so they
 * cannot turn the gateway into a JWKS-fetching amplifier against the provider.
 */
export class JwksCache {
  private keys: ReturnType<typeof createLocalJWKSet> | undefined;
  private inFlight: Promise<void> | undefined;
  private lastFetchAt = 0;

  constructor(
    private readonly jwksUri: string,
    private readonly timeoutS: number,
    private readonly clock: Clock,
  ) {}

  async refresh(): Promise<void> {
    this.inFlight ??= this.fetchKeys().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  /** A jose key resolver. `trusted`: the token came straight from the token endpoint over TLS. */
  resolver(trusted: boolean): KeyResolver {
    return async (header, token) => {
      if (this.keys === undefined) await this.refresh();
      try {
        return await this.lookup(header, token);
      } catch (error) {
        if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
        if (!trusted && this.clock.now() - this.lastFetchAt < UNTRUSTED_REFETCH_INTERVAL_MS) throw error;
        await this.refresh();
        return this.lookup(header, token);
      }
    };
  }

  private async lookup(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> {
    if (this.keys === undefined) throw new ProviderUnavailableError('The provider\'s signing keys are not loaded.');
    const key = await this.keys(header, token);
    return key;
  }

  private async fetchKeys(): Promise<void> {
    const body = await fetchJson(this.jwksUri, this.timeoutS);
    if (!isKeySet(body)) throw new ProviderUnavailableError(`The provider's JWKS at ${this.jwksUri} is malformed.`);
    this.keys = createLocalJWKSet(body);
    this.lastFetchAt = this.clock.now();
  }
}

function isKeySet(value: unknown): value is JSONWebKeySet {
  return typeof value === 'object' && value !== null && 'keys' in value && Array.isArray(value.keys);
}
