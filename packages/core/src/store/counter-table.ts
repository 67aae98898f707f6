import { MapSweep } from './map-sweep.js';

/** Buckets by failure count; counters at or above the last bucket share it. */
const BUCKETS = 64;
/** The most failure times one counter keeps, whatever its threshold (pardon maxRetry may be Infinity). */
const MAX_KEPT = 1000;

interface Counter {
  readonly key: string;
  /**
   * Failure times in a ring: `size` of them from index `head`, oldest first. A ring, not an array
   * trimmed at the front: with a high threshold a counter keeps up to MAX_KEPT times, and a
   * `splice(0, 1)` on every failure moved them all (about 0.4 µs a failure at 1,000 kept).
   */
  times: number[];
  head: number;
  size: number;
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
    counter.bucket = Math.min(counter.size, BUCKETS - 1);
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
      counter = { key, times: [], head: 0, size: 0, bucket: 0, prev: null, next: null };
      this.#counters.set(key, counter);
    } else {
      this.#unlink(counter);
    }
    trim(counter, now - windowMs);
    push(counter, now, Math.min(limit, MAX_KEPT));
    this.#append(counter);
    return counter.size;
  }

  /** The count inside the window, without adding. */
  count(key: string, now: number, windowMs: number): number {
    const counter = this.#counters.get(key);
    if (counter === undefined) return 0;
    // Times are in order: a binary search for the oldest inside the window, not a walk over up
    // to MAX_KEPT of them (every admission on a targeted route asks).
    const since = now - windowMs;
    let lo = 0;
    let hi = counter.size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (at(counter, mid) > since) hi = mid;
      else lo = mid + 1;
    }
    return counter.size - lo;
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
        const last = newest(counter);
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

  /** Every counter's key and failure times, oldest first (for the snapshot). */
  *entries(): IterableIterator<{ key: string; times: number[] }> {
    for (const counter of this.#counters.values()) {
      const times: number[] = [];
      for (let i = 0; i < counter.size; i++) times.push(at(counter, i));
      yield { key: counter.key, times };
    }
  }

  /** Restores a counter from a snapshot: its failure times (oldest first), unless the key counts already. */
  restore(key: string, times: readonly number[], windowMs: number): void {
    if (times.length === 0 || this.#counters.has(key)) return;
    for (const time of times.slice(-MAX_KEPT)) this.add(key, time, windowMs);
  }

  /** Keys with at least one failure inside their window. */
  *live(now: number, windowOf: (key: string) => number): IterableIterator<string> {
    for (const counter of this.#counters.values()) {
      const last = newest(counter);
      if (last !== undefined && last > now - windowOf(counter.key)) yield counter.key;
    }
  }
}

/** The i-th oldest failure time of a counter (i < size). */
const at = (counter: Counter, i: number): number =>
  counter.times[(counter.head + i) % counter.times.length] as number;

const newest = (counter: Counter): number | undefined =>
  counter.size === 0 ? undefined : at(counter, counter.size - 1);

function dropOldest(counter: Counter): void {
  counter.head = counter.head + 1 === counter.times.length ? 0 : counter.head + 1;
  counter.size--;
}

/** Drops the times at or before `since` (times are kept in order, oldest first). */
function trim(counter: Counter, since: number): void {
  while (counter.size > 0 && at(counter, 0) <= since) dropOldest(counter);
}

/**
 * Adds `now` as the newest time, keeping the newest `keep` times. A clock that stepped back (a
 * wall clock set back) records the failure at the newest time already kept, so that the times stay
 * in order for trim() and count().
 */
function push(counter: Counter, newTime: number, keep: number): void {
  if (keep <= 0) {
    counter.size = 0;
    return;
  }
  const last = newest(counter);
  const now = last !== undefined && last > newTime ? last : newTime;
  while (counter.size >= keep) dropOldest(counter);
  const capacity = counter.times.length;
  if (counter.size < capacity) {
    counter.times[(counter.head + counter.size) % capacity] = now;
  } else {
    // Full below `keep`: the ring grows, straightened first if it wraps (once per growth).
    if (counter.head !== 0) {
      counter.times = [...counter.times.slice(counter.head), ...counter.times.slice(0, counter.head)];
      counter.head = 0;
    }
    counter.times.push(now);
  }
  counter.size++;
}
