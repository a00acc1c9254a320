import { MemorySessionStore } from '../../src/session/memory-session-store.js';
import { describeSessionStore, OffsetClock } from './session-store.contract.js';

describeSessionStore('MemorySessionStore', () => {
  const clock = new OffsetClock();
  const store = new MemorySessionStore(10_000, clock);
  return Promise.resolve({ store, clock, cleanup: () => store.close() });
});
