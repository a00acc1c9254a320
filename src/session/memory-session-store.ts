import type { Clock } from '../common/clock.js';
import type { ReplaceTokensResult, SessionRecord, SessionStore, SessionTokens, StoreLock } from './session-store.js';

const SWEEP_INTERVAL_MS = 60_000;

function expiresAt(record: SessionRecord): number {
  return Math.min(record.idleExpiresAt, record.absoluteExpiresAt);
}

/**
 * One process, zero set-up. A Map in recency order gives LRU eviction at `maxEntries`;
 * expired entries are dropped on read and by a periodic sweep.
 */
export class MemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly bySubject = new Map<string, Set<string>>();
  private readonly byProviderSid = new Map<string, Set<string>>();
  private readonly locks = new Map<string, { token: symbol; expiresAt: number }>();
  private readonly once = new Map<string, number>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly maxEntries: number,
    private readonly clock: Clock,
  ) {
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  sessionTag(): undefined {
    return undefined;
  }

  create(record: SessionRecord): Promise<void> {
    this.remove(record.id);
    this.sessions.set(record.id, record);
    this.index(record);
    while (this.sessions.size > this.maxEntries) {
      const oldest = this.sessions.keys().next();
      if (oldest.done === true) break;
      this.remove(oldest.value);
    }
    return Promise.resolve();
  }

  get(id: string): Promise<SessionRecord | undefined> {
    const record = this.sessions.get(id);
    if (record === undefined) return Promise.resolve(undefined);
    if (expiresAt(record) <= this.clock.now()) {
      this.remove(id);
      return Promise.resolve(undefined);
    }
    // re-insert: Map order is recency order for LRU eviction
    this.sessions.delete(id);
    this.sessions.set(id, record);
    return Promise.resolve(record);
  }

  touch(id: string, idleExpiresAt: number): Promise<boolean> {
    const existing = this.live(id);
    if (existing === undefined) return Promise.resolve(false);
    const next = Math.min(idleExpiresAt, existing.absoluteExpiresAt);
    if (next > existing.idleExpiresAt) this.sessions.set(id, { ...existing, idleExpiresAt: next });
    return Promise.resolve(true);
  }

  replaceTokens(id: string, expectedVersion: number, tokens: SessionTokens, claims: Readonly<Record<string, unknown>>): Promise<ReplaceTokensResult> {
    const existing = this.live(id);
    if (existing === undefined) return Promise.resolve('missing');
    if (existing.version !== expectedVersion) return Promise.resolve('conflict');
    this.sessions.set(id, { ...existing, tokens, claims, version: expectedVersion + 1 });
    return Promise.resolve('replaced');
  }

  delete(id: string): Promise<void> {
    this.remove(id);
    return Promise.resolve();
  }

  deleteBySubject(sub: string): Promise<number> {
    return Promise.resolve(this.removeAll(this.bySubject.get(sub)));
  }

  deleteByProviderSid(providerSid: string): Promise<number> {
    return Promise.resolve(this.removeAll(this.byProviderSid.get(providerSid)));
  }

  tryLock(name: string, ttlMs: number): Promise<StoreLock | undefined> {
    const now = this.clock.now();
    const held = this.locks.get(name);
    if (held !== undefined && held.expiresAt > now) return Promise.resolve(undefined);
    const token = Symbol(name);
    this.locks.set(name, { token, expiresAt: now + ttlMs });
    return Promise.resolve({
      held: () => {
        const current = this.locks.get(name);
        return Promise.resolve(current?.token === token && current.expiresAt > this.clock.now());
      },
      release: () => {
        // only the owner releases: an expired lock may already belong to someone else
        if (this.locks.get(name)?.token === token) this.locks.delete(name);
        return Promise.resolve();
      },
    });
  }

  markOnce(name: string, ttlMs: number): Promise<boolean> {
    const now = this.clock.now();
    const until = this.once.get(name);
    if (until !== undefined && until > now) return Promise.resolve(false);
    this.once.set(name, now + ttlMs);
    return Promise.resolve(true);
  }

  isMarked(name: string): Promise<boolean> {
    return Promise.resolve((this.once.get(name) ?? 0) > this.clock.now());
  }

  ping(): Promise<void> {
    return Promise.resolve();
  }

  size(): number {
    return this.sessions.size;
  }

  close(): Promise<void> {
    clearInterval(this.sweeper);
    return Promise.resolve();
  }

  /** Drops expired sessions, locks and one-time marks. */
  sweep(): void {
    const now = this.clock.now();
    for (const [id, record] of this.sessions) if (expiresAt(record) <= now) this.remove(id);
    for (const [name, lock] of this.locks) if (lock.expiresAt <= now) this.locks.delete(name);
    for (const [name, until] of this.once) if (until <= now) this.once.delete(name);
  }

  /** The stored session unless it has expired (without touching LRU order). */
  private live(id: string): SessionRecord | undefined {
    const record = this.sessions.get(id);
    return record === undefined || expiresAt(record) <= this.clock.now() ? undefined : record;
  }

  private removeAll(ids: Set<string> | undefined): number {
    if (ids === undefined) return 0;
    let count = 0;
    for (const id of [...ids]) {
      if (this.sessions.has(id)) count++;
      this.remove(id);
    }
    return count;
  }

  private remove(id: string): void {
    const record = this.sessions.get(id);
    if (record === undefined) return;
    this.sessions.delete(id);
    this.unindex(record);
  }

  private index(record: SessionRecord): void {
    addTo(this.bySubject, record.sub, record.id);
    if (record.providerSid !== undefined) addTo(this.byProviderSid, record.providerSid, record.id);
  }

  private unindex(record: SessionRecord): void {
    removeFrom(this.bySubject, record.sub, record.id);
    if (record.providerSid !== undefined) removeFrom(this.byProviderSid, record.providerSid, record.id);
  }
}

function addTo(index: Map<string, Set<string>>, key: string, id: string): void {
  const ids = index.get(key) ?? new Set<string>();
  ids.add(id);
  index.set(key, ids);
}

function removeFrom(index: Map<string, Set<string>>, key: string, id: string): void {
  const ids = index.get(key);
  if (ids === undefined) return;
  ids.delete(id);
  if (ids.size === 0) index.delete(key);
}
