/** Injected wherever expiry arithmetic happens, so unit tests can move time without fake timers. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** DI token for the Clock (an interface has no runtime class to inject by). */
export const CLOCK = Symbol('CLOCK');
