import type { Clock } from '../common/clock.js';
import { LoginRateLimiter } from './login-rate-limit.js';

class ManualClock implements Clock {
  constructor(private ms: number) {}
  now(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}

/** Window boundaries fall on whole minutes of the epoch; start the clock exactly on one. */
const MINUTE = 60_000;
const START = 1_000 * MINUTE;

function takeMany(limiter: LoginRateLimiter, address: string, times: number): Array<number | undefined> {
  return Array.from({ length: times }, () => limiter.take(address));
}

describe('LoginRateLimiter', () => {
  it('allows the limit within a minute and refuses the next request with the seconds to wait', () => {
    const clock = new ManualClock(START);
    const limiter = new LoginRateLimiter(3, clock);
    expect(takeMany(limiter, '198.51.100.1', 3)).toEqual([undefined, undefined, undefined]);
    // the window is full: the next minute starts with all 3 weighing fully, so one fits after 60 s + 20 s
    expect(limiter.take('198.51.100.1')).toBe(80);
  });

  it('counts each address on its own', () => {
    const limiter = new LoginRateLimiter(1, new ManualClock(START));
    expect(limiter.take('198.51.100.1')).toBeUndefined();
    expect(limiter.take('198.51.100.2')).toBeUndefined();
    expect(limiter.take('198.51.100.1')).toBeDefined();
  });

  it('counts all addresses of one IPv6 /64 together', () => {
    const limiter = new LoginRateLimiter(1, new ManualClock(START));
    expect(limiter.take('2001:db8:1:2::1')).toBeUndefined();
    expect(limiter.take('2001:db8:1:2::ffff')).toBeDefined();
    expect(limiter.take('2001:db8:1:3::1')).toBeUndefined();
  });

  it('does not allow twice the limit across a window boundary', () => {
    const clock = new ManualClock(START + 59_000);
    const limiter = new LoginRateLimiter(10, clock);
    expect(takeMany(limiter, '198.51.100.1', 10).every((r) => r === undefined)).toBe(true);
    clock.advance(2_000); // 1 s into the next window: the previous one still weighs 59/60
    expect(limiter.take('198.51.100.1')).toBeDefined();
  });

  it('lets a client through again once the minute has slid past its requests', () => {
    const clock = new ManualClock(START);
    const limiter = new LoginRateLimiter(2, clock);
    takeMany(limiter, '198.51.100.1', 2);
    const retryAfterS = limiter.take('198.51.100.1');
    expect(retryAfterS).toBeDefined();
    clock.advance((retryAfterS ?? 0) * 1000 - 1_000);
    expect(limiter.take('198.51.100.1')).toBeDefined();
    clock.advance(1_000);
    expect(limiter.take('198.51.100.1')).toBeUndefined();
  });

  it('does not count refused requests', () => {
    const clock = new ManualClock(START);
    const limiter = new LoginRateLimiter(1, clock);
    limiter.take('198.51.100.1');
    takeMany(limiter, '198.51.100.1', 50);
    clock.advance(2 * MINUTE);
    expect(limiter.take('198.51.100.1')).toBeUndefined();
  });

  it('lets new addresses through untracked once it tracks its maximum, so memory stays bounded', () => {
    const limiter = new LoginRateLimiter(1, new ManualClock(START), 2);
    limiter.take('198.51.100.1');
    limiter.take('198.51.100.2');
    expect(takeMany(limiter, '198.51.100.3', 3)).toEqual([undefined, undefined, undefined]);
    expect(limiter.take('198.51.100.1')).toBeDefined();
  });
});
