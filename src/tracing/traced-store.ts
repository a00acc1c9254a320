import type { SessionStore } from '../session/session-store.js';
import { endClientSpan, type Tracing } from './tracing.js';

/**
 * The session store with a span around every command that waits on something (a promise): one
 * wrapper, so no store implementation knows about tracing. Off: the store itself, untouched.
 */
export function tracedStore(store: SessionStore, tracing: Tracing, system: 'memory' | 'redis'): SessionStore {
  if (!tracing.enabled) return store;
  return new Proxy(store, {
    get(target, property, receiver): unknown {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      return (...args: unknown[]): unknown => {
        const span = tracing.startClient(`session_store.${property}`, { 'db.system': system, 'db.operation.name': property });
        const result: unknown = Reflect.apply(value, target, args);
        if (!(result instanceof Promise)) {
          span?.end();
          return result;
        }
        return result.then(
          (settled: unknown) => {
            endClientSpan(span, {}, false);
            return settled;
          },
          (error: unknown) => {
            endClientSpan(span, {}, true);
            throw error;
          },
        );
      };
    },
  });
}
