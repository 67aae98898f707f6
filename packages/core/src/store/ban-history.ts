import { MapSweep } from './map-sweep.js';
/** One client's ended bans, as the memory store keeps them. */
export interface HistoryEntry {
  /** Bans per jail (the highest ban count seen there). */
  readonly jails: Record<string, number>;
  /** Bans in every jail. */
  total: number;
  /** Epoch ms after which the entry is forgotten. */
  expiresMs: number;
}

/**
 * The ban history of the memory store, for escalation (`banTimeIncrement`) and ban counts: what
 * ended bans leave behind, kept `historyTime` after the ban ended. An active ban is its own
 * history (its `banCount`), so a million active bans cost no history entry; an entry is written
 * when a ban ends (expired, lifted or replaced).
 *
 * Bounded: at most `cap` clients (the oldest written goes first), and expired entries are dropped
 * a slice at a time on the sweep, so a sweep never walks the whole table.
 */
export class BanHistory {
  readonly #cap: number;
  readonly #entries = new Map<string, HistoryEntry>();
  readonly #sweep = new MapSweep(this.#entries);

  constructor(cap: number) {
    this.#cap = cap;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The client's live entry at `now`. */
  get(client: string, now: number): HistoryEntry | undefined {
    const entry = this.#entries.get(client);
    return entry !== undefined && entry.expiresMs > now ? entry : undefined;
  }

  /** Folds an ended ban into the client's entry, kept `historyTimeMs` after `endedMs`. */
  record(client: string, jail: string, banCount: number, endedMs: number, historyTimeMs: number): void {
    let entry = this.#entries.get(client);
    if (entry === undefined) {
      if (this.#entries.size >= this.#cap) evictOldest(this.#entries, this.#cap);
      entry = { jails: {}, total: 0, expiresMs: 0 };
    } else {
      // Re-inserted at the end: the order of the Map is the order of the last write.
      this.#entries.delete(client);
    }
    entry.jails[jail] = Math.max(entry.jails[jail] ?? 0, banCount);
    entry.total++;
    entry.expiresMs = Math.max(entry.expiresMs, endedMs + historyTimeMs);
    this.#entries.set(client, entry);
  }

  /** Restores an entry as a snapshot kept it. */
  restore(client: string, entry: HistoryEntry): void {
    if (this.#entries.size >= this.#cap) return;
    this.#entries.set(client, { jails: { ...entry.jails }, total: entry.total, expiresMs: entry.expiresMs });
  }

  /** Drops expired entries, at most `max` looked at per call (the walk resumes where it stopped). */
  sweep(now: number, max: number): void {
    this.#sweep.run(
      max,
      (entry) => entry.expiresMs <= now,
      (key) => this.#entries.delete(key),
    );
  }

  entries(): IterableIterator<[string, HistoryEntry]> {
    return this.#entries.entries();
  }
}

/**
 * Evicts the oldest tenth of a capped Map at once. One at a time would scan, on every eviction,
 * the holes V8 leaves at the front of a Map whose first entries were deleted: quadratic when a
 * million bans end together.
 */
export function evictOldest<K, V>(map: Map<K, V>, cap: number): void {
  let drop = Math.max(1, Math.floor(cap / 10));
  for (const key of map.keys()) {
    map.delete(key);
    if (--drop === 0) return;
  }
}
