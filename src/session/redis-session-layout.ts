import { KEYED, PREFIXED, type LuaScript } from './redis-session-scripts.js';
import { splitSessionKey } from './session-cookie.js';
import { SessionStoreUnavailableError } from './session.errors.js';

/*
 * Where a session and its indexes live, under `keyPrefix` (default `bff:`). Two layouts:
 *
 * Single Redis and Sentinel (PrefixedLayout), one primary holds every key:
 *   <prefix>record:<id>             the session's hash (fields: see redis-session-store.ts)
 *   <prefix>by-sub:<sub HMAC>       set of ids of one user
 *   <prefix>by-psid:<psid HMAC>     set of ids bound to one provider sid
 * Every write that touches a session and its indexes is one script, so a crash between steps
 * cannot leave a session reachable without its index or the reverse.
 *
 * Redis Cluster (SlottedLayout). A script may only touch keys of one hash slot, named in KEYS.
 * A session's id carries a tag T, the HMAC of its sub (the cookie carries it, so a request still
 * costs one read), and `{T}` puts the session and its user's index in one slot:
 *   <prefix>record:{T}<hash>        the session's hash; its id is `<hash>.<T>`
 *   <prefix>by-sub:{T}              set of ids of one user, in the slot of all of that user's sessions
 *   <prefix>by-psid:<psid HMAC>     set of ids bound to one provider sid: a locator, in a slot of its own
 * The provider-sid index cannot live in the session's slot: a logout token may carry only `sid`
 * (front-channel logout always does), and the slot is only known from `sub`. So it is a locator
 * written before the session's script (a session never exists without its entry; a failed
 * creation leaves an entry naming nothing, which is harmless), kept until the session's absolute
 * expiry (a slide cannot take a session past it), and read first by deleteByProviderSid, which
 * then ends the sessions slot by slot. Ending a session by `delete` leaves its locator entry to
 * that expiry. Scripts that must name other sessions' keys (pruning at creation, deleteBySubject)
 * get them from a read just before; a session created in between is not pruned or ended by that
 * call, as it would not be had it come a moment later.
 */

/** What the store's commands need from the connection: scripts and one read, each mapped to SessionStoreUnavailableError. */
export interface ScriptRunner {
  run(script: LuaScript, keys: readonly string[], args: readonly string[]): Promise<unknown>;
  members(key: string): Promise<string[]>;
}

/** A new session as the layout writes it: sealed fields and keyed hashes already computed. */
export interface NewRecordFields {
  readonly id: string;
  readonly version: string;
  readonly idle: string;
  readonly abs: string;
  /** PEXPIREAT of the record: min(idle, abs), whole milliseconds. */
  readonly expireAt: string;
  /** The absolute expiry in whole milliseconds: no slide takes the session past it. */
  readonly absoluteExpireAt: string;
  readonly subHash: string;
  readonly psidHash: string | undefined;
  readonly ident: string;
  readonly tokens: string;
}

export interface SessionLayout {
  /** The tag a new session's id must carry (see SessionStore.sessionTag), from the keyed hash of its sub. */
  sessionTag(subHash: string): string | undefined;
  /** The record's key, or undefined for an id this layout can never hold (no session). */
  recordKey(id: string): string | undefined;
  create(fields: NewRecordFields): Promise<void>;
  /** True when the session is live (whether or not the idle expiry moved). */
  touch(id: string, idleExpiresAt: string, expireAt: string, now: string): Promise<boolean>;
  delete(id: string): Promise<void>;
  /** Ends the sessions indexed under any of `subHashes` (one per configured secret). */
  deleteBySubject(subHashes: readonly string[]): Promise<number>;
  deleteByProviderSid(psidHashes: readonly string[]): Promise<number>;
}

export function count(result: unknown): number {
  if (typeof result !== 'number') throw new SessionStoreUnavailableError(new Error(`unexpected script reply: ${typeof result}`));
  return result;
}

/** Single Redis and Sentinel: the scripts find index keys from the prefixes and the record's fields. */
export class PrefixedLayout implements SessionLayout {
  private readonly prefixes: readonly string[];

  constructor(
    private readonly keyPrefix: string,
    private readonly runner: ScriptRunner,
  ) {
    this.prefixes = [`${keyPrefix}record:`, `${keyPrefix}by-sub:`, `${keyPrefix}by-psid:`];
  }

  sessionTag(): undefined {
    return undefined;
  }

  recordKey(id: string): string {
    return `${this.keyPrefix}record:${id}`;
  }

  async create(f: NewRecordFields): Promise<void> {
    await this.run(PREFIXED.create, [this.recordKey(f.id)], [f.id, f.version, f.idle, f.abs, f.expireAt, f.subHash, f.psidHash ?? '', f.ident, f.tokens]);
  }

  async touch(id: string, idleExpiresAt: string, expireAt: string, now: string): Promise<boolean> {
    return (await this.run(PREFIXED.touch, [this.recordKey(id)], [idleExpiresAt, expireAt, now])) === 1;
  }

  async delete(id: string): Promise<void> {
    await this.run(PREFIXED.delete, [this.recordKey(id)], [id]);
  }

  async deleteBySubject(subHashes: readonly string[]): Promise<number> {
    return count(await this.run(PREFIXED.deleteIndexed, subHashes.map((hash) => `${this.keyPrefix}by-sub:${hash}`), []));
  }

  async deleteByProviderSid(psidHashes: readonly string[]): Promise<number> {
    return count(await this.run(PREFIXED.deleteIndexed, psidHashes.map((hash) => `${this.keyPrefix}by-psid:${hash}`), []));
  }

  private run(script: LuaScript, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    return this.runner.run(script, keys, [...this.prefixes, ...args]);
  }
}

/** Redis Cluster: a session's keys share the slot of `{T}`; every script names all its keys. */
export class SlottedLayout implements SessionLayout {
  constructor(
    private readonly keyPrefix: string,
    private readonly runner: ScriptRunner,
  ) {}

  sessionTag(subHash: string): string {
    return subHash;
  }

  recordKey(id: string): string | undefined {
    const parts = splitSessionKey(id);
    return parts === undefined ? undefined : `${this.keyPrefix}record:{${parts.tag}}${parts.hash}`;
  }

  async create(f: NewRecordFields): Promise<void> {
    const record = this.recordKey(f.id);
    // SessionService tags every id through sessionTag(); anything else is a bug, not an outage
    if (record === undefined || splitSessionKey(f.id)?.tag !== f.subHash) throw new Error('a session id in Redis Cluster must carry the keyed hash of its sub as its tag');
    if (f.psidHash !== undefined) await this.runner.run(KEYED.locate, [this.locator(f.psidHash)], [f.id, f.absoluteExpireAt]);
    const index = this.subIndex(f.subHash);
    const candidates = this.inSlot(await this.runner.members(index), f.subHash).filter((member) => member.id !== f.id);
    await this.runner.run(
      KEYED.create,
      [record, index, ...candidates.map((member) => member.key)],
      [f.id, f.version, f.idle, f.abs, f.expireAt, f.subHash, f.psidHash ?? '', f.ident, f.tokens, ...candidates.map((member) => member.id)],
    );
  }

  async touch(id: string, idleExpiresAt: string, expireAt: string, now: string): Promise<boolean> {
    const parts = splitSessionKey(id);
    const record = this.recordKey(id);
    if (parts === undefined || record === undefined) return false;
    return (await this.runner.run(KEYED.touch, [record, this.subIndex(parts.tag)], [idleExpiresAt, expireAt, now])) === 1;
  }

  async delete(id: string): Promise<void> {
    const parts = splitSessionKey(id);
    const record = this.recordKey(id);
    if (parts === undefined || record === undefined) return;
    await this.runner.run(KEYED.delete, [record, this.subIndex(parts.tag)], [id]);
  }

  async deleteBySubject(subHashes: readonly string[]): Promise<number> {
    let ended = 0;
    for (const tag of subHashes) {
      const index = this.subIndex(tag);
      const members = this.inSlot(await this.runner.members(index), tag);
      if (members.length > 0) ended += await this.deleteSessions(tag, members);
    }
    return ended;
  }

  async deleteByProviderSid(psidHashes: readonly string[]): Promise<number> {
    let ended = 0;
    for (const psidHash of psidHashes) {
      const locator = this.locator(psidHash);
      const ids = await this.runner.members(locator);
      if (ids.length === 0) continue;
      const bySlot = new Map<string, { id: string; key: string }[]>();
      for (const id of ids) {
        const tag = splitSessionKey(id)?.tag;
        if (tag !== undefined) bySlot.set(tag, [...(bySlot.get(tag) ?? []), ...this.inSlot([id], tag)]);
      }
      for (const [tag, members] of bySlot) ended += await this.deleteSessions(tag, members);
      await this.runner.run(KEYED.forget, [locator], ids);
    }
    return ended;
  }

  private async deleteSessions(tag: string, members: readonly { id: string; key: string }[]): Promise<number> {
    return count(
      await this.runner.run(
        KEYED.deleteSessions,
        [this.subIndex(tag), ...members.map((member) => member.key)],
        members.map((member) => member.id),
      ),
    );
  }

  /** Members whose id carries `tag`: only they share the slot of that tag's keys. */
  private inSlot(ids: readonly string[], tag: string): { id: string; key: string }[] {
    return ids.flatMap((id) => {
      const key = splitSessionKey(id)?.tag === tag ? this.recordKey(id) : undefined;
      return key === undefined ? [] : [{ id, key }];
    });
  }

  private subIndex(tag: string): string {
    return `${this.keyPrefix}by-sub:{${tag}}`;
  }

  private locator(psidHash: string): string {
    return `${this.keyPrefix}by-psid:${psidHash}`;
  }
}
