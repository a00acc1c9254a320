import type { Clock } from '../common/clock.js';
import { RefreshBackoff, type Admission, type RefreshPermit } from './refresh-backoff.js';

class TestClock implements Clock {
  constructor(private at = 1_800_000_000_000) {}
  now(): number {
    return this.at;
  }
  advance(ms: number): void {
    this.at += ms;
  }
}

function permitOf(admission: Admission): RefreshPermit {
  if (!('permit' in admission)) throw new Error(`expected a permit, got a wait of ${admission.waitMs} ms`);
  return admission.permit;
}

describe('RefreshBackoff', () => {
  let clock: TestClock;
  let backoff: RefreshBackoff;
  beforeEach(() => {
    clock = new TestClock();
    backoff = new RefreshBackoff(clock);
  });

  it('admits every refresh while the provider answers', () => {
    const permits = [backoff.admit(), backoff.admit(), backoff.admit()].map(permitOf);
    for (const permit of permits) backoff.succeeded(permit);
    expect(backoff.admit()).toHaveProperty('permit');
  });

  it('waits 1, 2, 4, 8, 10, 10 s after consecutive failures, and turns callers away meanwhile', () => {
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      const wait = backoff.failed(permitOf(backoff.admit()));
      waits.push(wait);
      expect(backoff.admit()).toEqual({ waitMs: wait });
      clock.advance(wait - 1);
      expect(backoff.admit()).toEqual({ waitMs: 1 });
      clock.advance(1);
    }
    expect(waits).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000]);
  });

  it('lets one request probe once the wait is over; the others wait for its answer', () => {
    clock.advance(backoff.failed(permitOf(backoff.admit())));
    const probe = permitOf(backoff.admit());
    expect(probe.probe).toBe(true);
    expect(backoff.admit()).toEqual({ waitMs: 1000 });
    backoff.succeeded(probe);
    expect(permitOf(backoff.admit()).probe).toBe(false);
  });

  it('resets on the first success', () => {
    for (let i = 0; i < 4; i++) clock.advance(backoff.failed(permitOf(backoff.admit())));
    backoff.succeeded(permitOf(backoff.admit()));
    expect(backoff.failed(permitOf(backoff.admit()))).toBe(1000);
  });

  it('lets the provider\'s Retry-After win over the computed wait, below and above it', () => {
    expect(backoff.failed(permitOf(backoff.admit()), 30)).toBe(30_000);
    expect(backoff.admit()).toEqual({ waitMs: 30_000 });
    clock.advance(30_000);
    expect(backoff.failed(permitOf(backoff.admit()), 0)).toBe(1000);
  });

  it('counts failures of requests sent together as one', () => {
    const permits = [backoff.admit(), backoff.admit(), backoff.admit()].map(permitOf);
    expect(permits.map((permit) => backoff.failed(permit))).toEqual([1000, 1000, 1000]);
    clock.advance(1000);
    expect(backoff.failed(permitOf(backoff.admit()))).toBe(2000);
  });

  it('frees the probe when its permit goes unused', () => {
    clock.advance(backoff.failed(permitOf(backoff.admit())));
    backoff.unused(permitOf(backoff.admit()));
    expect(permitOf(backoff.admit()).probe).toBe(true);
  });
});
