import { RestartBackoff } from './restart-backoff.js';

function clockAt(start: number): { now(): number; advance(ms: number): void } {
  let now = start;
  return { now: () => now, advance: (ms) => (now += ms) };
}

describe('RestartBackoff', () => {
  it('doubles the wait while replacements keep dying, up to 30 s', () => {
    const backoff = new RestartBackoff(clockAt(0));
    const waits = Array.from({ length: 9 }, () => backoff.exited());
    expect(waits).toEqual([500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
  });

  it('keeps growing when a worker dies soon after it started listening', () => {
    const clock = clockAt(0);
    const backoff = new RestartBackoff(clock);
    expect(backoff.exited()).toBe(500);
    backoff.listening();
    clock.advance(59_999);
    expect(backoff.exited()).toBe(1_000);
  });

  it('starts again from 0.5 s once a worker has listened for a minute', () => {
    const clock = clockAt(0);
    const backoff = new RestartBackoff(clock);
    for (let i = 0; i < 5; i++) backoff.exited();
    backoff.listening();
    clock.advance(60_000);
    expect(backoff.exited()).toBe(500);
    expect(backoff.exited()).toBe(1_000);
  });
});
