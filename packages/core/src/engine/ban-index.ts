import { BanTable, OWNER_FLAG, type TablePage } from '../store/ban-table.js';
import type { Ban } from '../store/store.js';

/** The answer of `check()`. A ban is a normal result, never an error. */
export type Verdict = NotBanned | Banned;

/** The verdict for a client that may go on. */
export interface NotBanned {
  readonly banned: false;
}

/** The verdict for a banned client: the ban that refuses it, built once so a refusal allocates nothing. */
export interface Banned {
  readonly banned: true;
  readonly jail: string;
  readonly client: string;
  /** Epoch ms when the ban ends; Infinity for a permanent ban. */
  readonly untilMs: number;
  readonly ban: Ban;
}

export const NOT_BANNED: NotBanned = Object.freeze({ banned: false });

/** No slot. */
export const NO_SLOT = -1;

/**
 * The local replica of active bans that `check()` reads: one Map lookup for a client that is not
 * banned. Bans live in a compact {@link BanTable} (about 150 bytes a ban, client key included); a
 * banned client's verdict is built the first time it is refused and kept until its ban changes,
 * so a repeat offender's refusal allocates nothing. Expiry costs what expires.
 */
export class BanIndex {
  readonly #table = new BanTable();
  /** Verdicts by slot, built on a slot's first refusal (only refused clients cost one). */
  readonly #verdicts = new Map<number, Banned>();

  get size(): number {
    return this.#table.size;
  }

  /** The first slot of a client's bans, or NO_SLOT: the hot path's one lookup. */
  head(client: string): number {
    return this.#table.head(client);
  }

  /** The client's next ban (another jail), or NO_SLOT. */
  next(slot: number): number {
    return this.#table.chained(slot);
  }

  /** The slot of the client's ban in `jail`, or NO_SLOT. */
  find(client: string, jail: string): number {
    return this.#table.find(client, jail);
  }

  endMs(slot: number): number {
    return this.#table.endMs(slot);
  }

  startMs(slot: number): number {
    return this.#table.startMs(slot);
  }

  jail(slot: number): string {
    return this.#table.jail(slot);
  }

  /** True when the slot's ban refuses the client everywhere (false: a jail-scope ban). */
  appScope(slot: number): boolean {
    return this.#table.hasFlag(slot, OWNER_FLAG);
  }

  /** The slot's ban as a new object. */
  ban(slot: number): Ban {
    return this.#table.ban(slot);
  }

  /** The slot's verdict: built on first use, then reused until the ban changes. */
  verdict(slot: number): Banned {
    let verdict = this.#verdicts.get(slot);
    if (verdict === undefined) {
      const ban = Object.freeze(this.#table.ban(slot));
      verdict = Object.freeze({
        banned: true as const,
        jail: ban.jail,
        client: ban.client,
        untilMs: ban.endMs,
        ban,
      });
      this.#verdicts.set(slot, verdict);
    }
    return verdict;
  }

  /** Makes room for about `more` bans besides those held (see {@link BanTable.reserve}). */
  reserve(more: number): void {
    this.#table.reserve(more);
  }

  /** Adds or replaces the client's ban in that jail; returns its slot. */
  add(ban: Ban, appScope: boolean): number {
    const slot = this.#table.set(ban, appScope);
    this.#verdicts.delete(slot);
    return slot;
  }

  /**
   * Adds or replaces the client's ban in that jail, unless the index holds this very ban (same
   * start and end): `'same'`, `'added'` (a new entry) or `'replaced'`.
   */
  apply(ban: Ban, appScope: boolean): 'same' | 'added' | 'replaced' {
    const size = this.#table.size;
    const slot = this.#table.upsert(ban, appScope);
    if (slot === undefined) return 'same';
    if (this.#verdicts.size > 0) this.#verdicts.delete(slot);
    return this.#table.size > size ? 'added' : 'replaced';
  }

  /** Removes the client's ban in one jail; returns it. */
  remove(client: string, jail: string): Ban | undefined {
    const slot = this.#table.find(client, jail);
    if (slot === NO_SLOT) return undefined;
    const ban = this.#table.ban(slot);
    this.#drop(slot);
    return ban;
  }

  /** Removes and returns the bans whose end is at or before `now`, at most `max`; `more`: some are left. */
  expire(now: number, max = Number.POSITIVE_INFINITY): { bans: Ban[]; more: boolean } {
    const bans: Ban[] = [];
    const more = this.#table.expire(
      now,
      (slot) => {
        bans.push(this.#table.ban(slot));
        this.#verdicts.delete(slot);
      },
      max,
    );
    return { bans, more };
  }

  /** A page of a walk over the active bans; see {@link BanTable.page}. */
  page(after: number | undefined, limit: number, now: number, jail?: string): TablePage {
    return this.#table.page(after, limit, now, jail);
  }

  /** Every ban, built as it is read (a live walk: changes during it may or may not be seen). */
  *values(): IterableIterator<Ban> {
    for (const slot of this.#table.slots()) yield this.#table.ban(slot);
  }

  /** Bans per jail, without building them. */
  counts(): Map<string, number> {
    return this.#table.counts();
  }

  clear(): void {
    this.#table.clear();
    this.#verdicts.clear();
  }

  #drop(slot: number): void {
    this.#verdicts.delete(slot);
    this.#table.remove(slot);
  }
}
