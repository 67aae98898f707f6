import { DEFAULTS } from '../config/defaults.js';
import { BanHistory } from './ban-history.js';
import { BanTable } from './ban-table.js';
import type { Ban } from './store.js';

const NONE = -1;

/**
 * The memory store's bans and their history, kept together because they change together: a ban
 * that ends (expired, lifted or replaced) leaves its count in the history, and a client's earlier
 * bans are its history plus the bans it holds now (an active ban is its own history).
 */
export class MemoryBans {
  readonly table = new BanTable();
  readonly history: BanHistory;
  /** How long ended bans are remembered: the latest the engine passed. */
  historyTimeMs: number = DEFAULTS.historyTimeMs;

  constructor(cap: number) {
    this.history = new BanHistory(cap);
  }

  /** The slot of the client's active ban in `jail`, or -1. A ban that ended is folded away first. */
  live(jail: string, client: string, now: number): number {
    const t = this.table;
    const slot = t.find(client, jail);
    if (slot === NONE || t.endMs(slot) > now) return slot;
    this.end(slot, now);
    return NONE;
  }

  /** A ban ends (expired, lifted or replaced): what it leaves is the client's history. */
  end(slot: number, now: number): void {
    const t = this.table;
    this.#remember(slot, Math.min(t.endMs(slot), now));
    t.remove(slot);
  }

  #remember(slot: number, endedMs: number): void {
    const t = this.table;
    this.history.record(t.client(slot), t.jail(slot), t.banCount(slot), endedMs, this.historyTimeMs);
  }

  /** Earlier bans of the client: its history plus the bans it holds now. */
  earlier(jail: string, client: string, overall: boolean, now: number): number {
    const h = this.history.get(client, now);
    const t = this.table;
    if (overall) {
      let held = 0;
      for (let s = t.head(client); s !== NONE; s = t.chained(s)) held++;
      return (h?.total ?? 0) + held;
    }
    const slot = t.find(client, jail);
    return Math.max(h?.jails[jail] ?? 0, slot === NONE ? 0 : t.banCount(slot));
  }

  /** Writes a ban, replacing the client's ban in that jail (which then ends). */
  create(ban: Ban, now: number): void {
    const held = this.table.find(ban.client, ban.jail);
    if (held !== NONE) this.end(held, now);
    this.table.set(ban);
  }

  /** Lifts the client's bans (in `jail`, or every jail); returns the active ones and the jails touched. */
  lift(client: string, jail: string | undefined, now: number): { lifted: Ban[]; jails: string[] } {
    const t = this.table;
    const slots: number[] = [];
    for (let s = t.head(client); s !== NONE; s = t.chained(s)) {
      if (jail === undefined || t.jail(s) === jail) slots.push(s);
    }
    const jails = jail === undefined ? slots.map((s) => t.jail(s)) : [jail];
    const lifted: Ban[] = [];
    for (const s of slots) {
      if (t.endMs(s) > now) lifted.push(t.ban(s));
      this.end(s, now);
    }
    return { lifted, jails };
  }

  /** Lifts every ban (of `jail`, or all), calling `each` with each one's jail and client first. */
  liftAll(jail: string | undefined, now: number, each: (jail: string, client: string) => void): Ban[] {
    const t = this.table;
    const lifted: Ban[] = [];
    for (const s of [...t.slots()]) {
      if (jail !== undefined && t.jail(s) !== jail) continue;
      if (t.endMs(s) > now) lifted.push(t.ban(s));
      each(t.jail(s), t.client(s));
      this.end(s, now);
    }
    return lifted;
  }

  /**
   * Removes the bans that ended, at most `max` (true when more are due). The first `keep` are
   * handed to `ended`: a wave of a million ends keeps no million objects alive.
   */
  expire(now: number, max: number, ended: Ban[], keep: number): boolean {
    const t = this.table;
    return t.expire(
      now,
      (slot) => {
        if (ended.length < keep) ended.push(t.ban(slot));
        this.#remember(slot, t.endMs(slot));
      },
      max,
    );
  }
}
