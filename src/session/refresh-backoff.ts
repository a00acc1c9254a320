import { Inject, Injectable } from '@nestjs/common';
import { CLOCK, type Clock } from '../common/clock.js';

const FIRST_WAIT_MS = 1_000;
const MAX_WAIT_MS = 10_000;
/** What a caller turned away while another request probes the provider is told to wait. */
const PROBE_WAIT_MS = 1_000;

/** Leave to call the token endpoint now; hand it back through succeeded(), failed() or unused(). */
export interface RefreshPermit {
  readonly generation: number;
  readonly probe: boolean;
}

export type Admission = { readonly permit: RefreshPermit } | { readonly waitMs: number };

/**
 * Provider-wide back-off for refreshes, per replica: after the provider was unavailable (an outage
 * or an unexplained 4xx), refreshes wait 1 s, then 2, 4, 8, 10, 10 … (the provider's own Retry-After
 * wins), and requests meanwhile get 503 at once instead of piling onto a struggling provider. When
 * the wait is over one request probes; the first answer resets it.
 */
@Injectable()
export class RefreshBackoff {
  private failures = 0;
  private until = 0;
  private probing = false;
  /** Bumped on every failure: answers to requests sent before it do not count the outage twice. */
  private generation = 0;

  constructor(@Inject(CLOCK) private readonly clock: Clock) {}

  admit(): Admission {
    const now = this.clock.now();
    if (now < this.until) return { waitMs: this.until - now };
    if (this.failures === 0) return { permit: { generation: this.generation, probe: false } };
    if (this.probing) return { waitMs: PROBE_WAIT_MS };
    this.probing = true;
    return { permit: { generation: this.generation, probe: true } };
  }

  /** The provider answered (whatever it said, it is up): back to normal. */
  succeeded(_permit: RefreshPermit): void {
    this.failures = 0;
    this.until = 0;
    this.probing = false;
  }

  /**
   * The provider was unavailable. Returns the wait before the next refresh (ms). `providerRetryAfterS`
   * (already capped) replaces the computed wait.
   */
  failed(permit: RefreshPermit, providerRetryAfterS?: number): number {
    const now = this.clock.now();
    const providerWaitMs = providerRetryAfterS === undefined ? undefined : Math.max(providerRetryAfterS * 1000, FIRST_WAIT_MS);
    if (permit.generation !== this.generation) {
      // sent before the failure that started this wait: the same outage, seen again
      if (providerWaitMs !== undefined) this.until = Math.max(this.until, now + providerWaitMs);
      return Math.max(this.until - now, 0);
    }
    this.failures++;
    this.generation++;
    this.probing = false;
    const wait = providerWaitMs ?? Math.min(FIRST_WAIT_MS * 2 ** (this.failures - 1), MAX_WAIT_MS);
    this.until = now + wait;
    return wait;
  }

  /** The permit was not used (nothing was sent): another request may probe. */
  unused(permit: RefreshPermit): void {
    if (permit.probe && permit.generation === this.generation) this.probing = false;
  }
}
