import type { Clock } from '../../src/common/clock.js';

/**
 * Real time plus an offset the test moves forward: the gateway (or a store) reads it as its CLOCK
 * while the real servers around it (provider, Redis, upstreams) keep real time, so a test ages a
 * session or a token by jumping ahead instead of waiting or rewriting store records. Stores with
 * real TTLs (Redis) and stores that read the clock (memory) expire the same sessions, and advance()
 * also shows a replica whose clock runs ahead.
 */
export class OffsetClock implements Clock {
  private offsetMs = 0;
  /** While held, the real instant the clock stands at: a test that must not depend on how fast the machine is holds it. */
  private heldAt: number | undefined;

  now(): number {
    return (this.heldAt ?? Date.now()) + this.offsetMs;
  }

  /** Stops the clock at the current real time: from now on only advance() moves it. */
  hold(): void {
    this.heldAt ??= Date.now();
  }

  advance(ms: number): void {
    this.offsetMs += ms;
  }

  /** Back to real time, for the next test of a shared gateway. */
  reset(): void {
    this.offsetMs = 0;
    this.heldAt = undefined;
  }
}
