import { MemorySessionStore } from '../../src/session/memory-session-store.js';
import { OffsetClock } from '../support/clock.js';
import { describeSessionStore } from './session-store.contract.js';

describeSessionStore('MemorySessionStore', () => {
  const clock = new OffsetClock();
  const store = new MemorySessionStore(10_000, clock);
  return Promise.resolve({ store, clock, cleanup: () => store.close() });
});
