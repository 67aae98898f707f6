import { evictOldest } from './ban-history.js';
import { MapSweep } from './map-sweep.js';

/**
 * Pardons of the memory store: until when a client has the pardoned threshold in a jail. Capped
 * like counters (losing one only lowers a threshold back to normal); expired ones are dropped a
 * slice at a time on the sweep.
 */
export class PardonTable {
  readonly #cap: number;
  /** `jail\0client` → epoch ms the pardon ends. */
  readonly #until = new Map<string, number>();
  readonly #sweep = new MapSweep(this.#until);

  constructor(cap: number) {
    this.#cap = cap;
  }

  /** True while the pardon of `key` lasts. */
  has(key: string, now: number): boolean {
    const until = this.#until.get(key);
    return until !== undefined && until > now;
  }

  set(key: string, untilMs: number): void {
    this.#until.delete(key);
    if (this.#until.size >= this.#cap) evictOldest(this.#until, this.#cap);
    this.#until.set(key, untilMs);
  }

  /** Drops expired pardons, at most `max` looked at per call. */
  sweep(now: number, max: number): void {
    this.#sweep.run(
      max,
      (until) => until <= now,
      (key) => this.#until.delete(key),
    );
  }

  entries(): IterableIterator<[string, number]> {
    return this.#until.entries();
  }
}
