/** Buckets by failure count; counters at or above the last bucket share it. */
const BUCKETS = 64;

interface Counter {
  readonly key: string;
  /** Failure times, oldest first. */
  times: number[];
  bucket: number;
}

/**
 * Sliding-window failure counters with a hard cap. At the cap, the counter evicted is the oldest
 * of those with the fewest failures: an attacker close to its threshold can only be pushed out by
 * filling the whole table with counters at least as high, which costs as many failures as the cap
 * times its own count, not one request per slot. No timer per key: windows are trimmed on touch.
 */
export class CounterTable {
  readonly #cap: number;
  readonly #counters = new Map<string, Counter>();
  /** #buckets[n] holds the counters with n failures, least recently touched first. */
  readonly #buckets: Map<string, Counter>[] = Array.from({ length: BUCKETS }, () => new Map());
  #evictions = 0;

  constructor(cap: number) {
    this.#cap = cap;
  }

  get size(): number {
    return this.#counters.size;
  }

  get evictions(): number {
    return this.#evictions;
  }

  #place(counter: Counter): void {
    this.#buckets[counter.bucket]?.delete(counter.key);
    counter.bucket = Math.min(counter.times.length, BUCKETS - 1);
    this.#buckets[counter.bucket]?.set(counter.key, counter);
  }

  #evictOne(): void {
    for (const bucket of this.#buckets) {
      const first = bucket.values().next();
      if (!first.done) {
        this.delete(first.value.key);
        this.#evictions++;
        return;
      }
    }
  }

  /** Adds a failure at `now` and returns the count inside the window `(now - windowMs, now]`. */
  add(key: string, now: number, windowMs: number): number {
    let counter = this.#counters.get(key);
    if (counter === undefined) {
      if (this.#counters.size >= this.#cap) this.#evictOne();
      counter = { key, times: [], bucket: 0 };
      this.#counters.set(key, counter);
    }
    trim(counter.times, now - windowMs);
    counter.times.push(now);
    this.#place(counter);
    return counter.times.length;
  }

  /** The count inside the window, without adding. */
  count(key: string, now: number, windowMs: number): number {
    const counter = this.#counters.get(key);
    if (counter === undefined) return 0;
    let live = 0;
    const since = now - windowMs;
    for (const t of counter.times) if (t > since) live++;
    return live;
  }

  delete(key: string): boolean {
    const counter = this.#counters.get(key);
    if (counter === undefined) return false;
    this.#buckets[counter.bucket]?.delete(key);
    return this.#counters.delete(key);
  }

  /** Deletes every counter whose key starts with `prefix`. */
  deletePrefix(prefix: string): void {
    for (const key of this.#counters.keys()) if (key.startsWith(prefix)) this.delete(key);
  }

  /** Drops counters whose newest failure is older than `windowOf(key)` allows. */
  sweep(now: number, windowOf: (key: string) => number): void {
    for (const counter of this.#counters.values()) {
      const last = counter.times[counter.times.length - 1];
      if (last === undefined || last <= now - windowOf(counter.key)) this.delete(counter.key);
    }
  }

  /** Keys with at least one failure inside their window. */
  *live(now: number, windowOf: (key: string) => number): IterableIterator<string> {
    for (const counter of this.#counters.values()) {
      const last = counter.times[counter.times.length - 1];
      if (last !== undefined && last > now - windowOf(counter.key)) yield counter.key;
    }
  }
}

/** Removes the times at or before `since` from the front of a sorted array. */
function trim(times: number[], since: number): void {
  let drop = 0;
  while (drop < times.length && (times[drop] as number) <= since) drop++;
  if (drop > 0) times.splice(0, drop);
}
