import { MapSweep } from './map-sweep.js';

/** Buckets by failure count; counters at or above the last bucket share it. */
const BUCKETS = 64;
/** The most failure times one counter keeps, whatever its threshold (pardon maxRetry may be Infinity). */
const MAX_KEPT = 1000;

interface Counter {
  readonly key: string;
  /** Failure times, oldest first. */
  times: number[];
  bucket: number;
  prev: Counter | null;
  next: Counter | null;
}

/** A bucket: an intrusive doubly linked list, least recently touched first. */
interface Bucket {
  head: Counter | null;
  tail: Counter | null;
}

/**
 * Sliding-window failure counters with a hard cap. At the cap, the counter evicted is the oldest
 * of those with the fewest failures: an attacker close to its threshold can only be pushed out by
 * filling the whole table with counters at least as high, which costs as many failures as the cap
 * times its own count, not one request per slot. No timer per key: windows are trimmed on touch.
 * Buckets are linked lists rather than Maps: V8 leaves holes at the front of a Map whose first
 * entries are deleted, so "the oldest entry" would cost a scan on every eviction.
 */
export class CounterTable {
  readonly #cap: number;
  readonly #counters = new Map<string, Counter>();
  /** #buckets[n] holds the counters with n failures. */
  readonly #buckets: Bucket[] = Array.from({ length: BUCKETS }, () => ({ head: null, tail: null }));
  #evictions = 0;
  /** Where the sliced sweep resumes. */
  readonly #sweep = new MapSweep(this.#counters);

  constructor(cap: number) {
    this.#cap = cap;
  }

  get size(): number {
    return this.#counters.size;
  }

  get evictions(): number {
    return this.#evictions;
  }

  #unlink(counter: Counter): void {
    const bucket = this.#buckets[counter.bucket] as Bucket;
    if (counter.prev) counter.prev.next = counter.next;
    else bucket.head = counter.next;
    if (counter.next) counter.next.prev = counter.prev;
    else bucket.tail = counter.prev;
    counter.prev = null;
    counter.next = null;
  }

  #append(counter: Counter): void {
    counter.bucket = Math.min(counter.times.length, BUCKETS - 1);
    const bucket = this.#buckets[counter.bucket] as Bucket;
    counter.prev = bucket.tail;
    counter.next = null;
    if (bucket.tail) bucket.tail.next = counter;
    else bucket.head = counter;
    bucket.tail = counter;
  }

  #evictOne(): void {
    for (const bucket of this.#buckets) {
      if (bucket.head !== null) {
        this.delete(bucket.head.key);
        this.#evictions++;
        return;
      }
    }
  }

  /**
   * Adds a failure at `now` and returns the count inside the window `(now - windowMs, now]`.
   * Only the newest `limit` times are kept (the threshold in force, at most MAX_KEPT): a count that
   * reached the threshold has done its work, and a client with a huge threshold cannot grow memory.
   */
  add(key: string, now: number, windowMs: number, limit = MAX_KEPT): number {
    let counter = this.#counters.get(key);
    if (counter === undefined) {
      if (this.#counters.size >= this.#cap) this.#evictOne();
      counter = { key, times: [], bucket: 0, prev: null, next: null };
      this.#counters.set(key, counter);
    } else {
      this.#unlink(counter);
    }
    trim(counter.times, now - windowMs);
    counter.times.push(now);
    const excess = counter.times.length - Math.min(limit, MAX_KEPT);
    if (excess > 0) counter.times.splice(0, excess);
    this.#append(counter);
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
    this.#unlink(counter);
    return this.#counters.delete(key);
  }

  /**
   * Drops counters whose newest failure is older than `windowOf(key)` allows, looking at most at
   * `max` counters per call (the walk resumes where it stopped): a sweep's cost is bounded.
   */
  sweep(now: number, windowOf: (key: string) => number, max = Number.POSITIVE_INFINITY): void {
    this.#sweep.run(
      max,
      (counter) => {
        const last = counter.times[counter.times.length - 1];
        return last === undefined || last <= now - windowOf(counter.key);
      },
      (key) => this.delete(key),
    );
  }

  /**
   * Starts a counter at `count` failures at `atMs`, unless the key already counts: a fallback that
   * takes over from a shared store starts from the last count it saw there, not from zero.
   */
  seed(key: string, count: number, atMs: number, windowMs: number): void {
    if (count <= 0 || this.#counters.has(key)) return;
    for (let i = 0; i < Math.min(count, MAX_KEPT); i++) this.add(key, atMs, windowMs);
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
