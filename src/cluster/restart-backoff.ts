import type { Clock } from '../common/clock.js';

const FIRST_WAIT_MS = 500;
const MAX_WAIT_MS = 30_000;
/** A worker that served this long before it died was healthy: its replacement starts without delay's growth. */
const STABLE_MS = 60_000;

/**
 * Back-off for replacing the workers of one slot: 0.5 s, 1, 2, 4 … up to 30 s while replacements
 * keep dying, so a worker that cannot start (a crash at boot) does not spin the primary; back to
 * 0.5 s once a worker has been listening for a minute.
 */
export class RestartBackoff {
  private failures = 0;
  private listeningSince: number | undefined;

  constructor(private readonly clock: Clock) {}

  /** The slot's worker listens on the port. */
  listening(): void {
    this.listeningSince = this.clock.now();
  }

  /** The slot's worker died: how long to wait before forking its replacement. */
  exited(): number {
    const since = this.listeningSince;
    this.listeningSince = undefined;
    if (since !== undefined && this.clock.now() - since >= STABLE_MS) this.failures = 0;
    const wait = Math.min(FIRST_WAIT_MS * 2 ** this.failures, MAX_WAIT_MS);
    this.failures++;
    return wait;
  }
}
