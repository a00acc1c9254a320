/** Injected wherever expiry arithmetic happens, so unit tests can move time without fake timers. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
