import type { onRequestHookHandler } from 'fastify';
import type { Clock } from '../common/clock.js';
import { clientKey } from '../common/client-address.js';
import { GatewayError } from '../common/gateway-error.js';
import { sendProblem } from '../common/problem.js';
import type { Config } from '../config/config.js';

const WINDOW_MS = 60_000;
/** Addresses tracked per window; beyond it new addresses pass untracked rather than grow memory without bound. */
const DEFAULT_MAX_TRACKED = 100_000;

/** Too many `/auth/login` requests from one client address. */
export class LoginRateLimitedError extends GatewayError {
  constructor(retryAfterS: number) {
    super(429, 'login_rate_limited', 'Too many sign-in attempts', `Too many sign-in requests from this address; try again in ${retryAfterS} s.`, { retryAfterS });
  }
}

/**
 * Sliding-window counter (two fixed one-minute windows, the previous one weighted by how much of it
 * still overlaps the last minute): no burst of twice the limit at a window boundary, O(1) per address.
 * Refused requests are not counted, so a client that backs off gets through again.
 */
export class LoginRateLimiter {
  private windowStart = 0;
  private current = new Map<string, number>();
  private previous = new Map<string, number>();

  constructor(
    private readonly limitPerMinute: number,
    private readonly clock: Clock,
    private readonly maxTracked = DEFAULT_MAX_TRACKED,
  ) {}

  /** Counts one request; undefined when allowed, else the seconds to wait (Retry-After). */
  take(address: string): number | undefined {
    const now = this.clock.now();
    this.roll(now);
    const key = clientKey(address);
    const current = this.current.get(key) ?? 0;
    const previous = this.previous.get(key) ?? 0;
    const elapsed = now - this.windowStart;
    const estimate = previous * (1 - elapsed / WINDOW_MS) + current;
    if (estimate + 1 <= this.limitPerMinute) {
      if (this.current.has(key) || this.current.size < this.maxTracked) this.current.set(key, current + 1);
      return undefined;
    }
    return Math.max(1, Math.ceil(this.waitMs(previous, current, elapsed) / 1000));
  }

  private roll(now: number): void {
    const start = now - (now % WINDOW_MS);
    if (start === this.windowStart) return;
    this.previous = start - this.windowStart === WINDOW_MS ? this.current : new Map<string, number>();
    this.current = new Map();
    this.windowStart = start;
  }

  /** How long until one more request fits, if the client sends nothing meanwhile. */
  private waitMs(previous: number, current: number, elapsed: number): number {
    const room = this.limitPerMinute - 1;
    if (current <= room && previous > 0) {
      // the previous window's weight must fall until previous * (1 - t / W) + current <= room
      return WINDOW_MS * (1 - (room - current) / previous) - elapsed;
    }
    // this window alone is full: wait for the next one, then for this window's weight to fall enough
    return WINDOW_MS - elapsed + WINDOW_MS * Math.max(0, 1 - room / current);
  }
}

/**
 * The `/auth/login` route's own onRequest hook: limits it per client address (`request.ip`: the
 * socket address, or X-Forwarded-For when TRUST_PROXY names the proxy). Each login creates
 * provider-side state, so a flood is cheap for the sender and not for the provider. Answers 429
 * with Retry-After. Undefined when AUTH_RATE_LIMIT_PER_MINUTE is 0.
 */
export function loginRateLimit(config: Config, clock: Clock): onRequestHookHandler | undefined {
  const limit = config.ops.authRateLimitPerMinute;
  if (limit === 0) return undefined;
  const limiter = new LoginRateLimiter(limit, clock);
  return (request, reply, done) => {
    const retryAfterS = limiter.take(request.ip);
    if (retryAfterS === undefined) {
      done();
      return;
    }
    sendProblem(request, reply, new LoginRateLimitedError(retryAfterS));
  };
}
