import { Interner } from './interner.js';
import type { Ban } from './store.js';

const NONE = -1;
/** Flag bit: a manual ban. */
const MANUAL = 1;
/** Flag bit left to the table's owner (the engine's index marks app-scope bans with it). */
export const OWNER_FLAG = 2;
const INITIAL = 64;
/** The most slots one page looks at: a page costs a few milliseconds at most, whatever it filters. */
const PAGE_SCAN = 65_536;

/**
 * The same text as one flat string. A key built by concatenation (an IPv6 client key, say) is a
 * rope of several string objects, kept as long as its ban: at a million bans, half IPv6, ropes
 * held 65 MB more than the same keys read back from a snapshot. `normalize()` returns a flat
 * string (the very same one when it is flat already); text it would change is kept as it came.
 */
export function flatKey(text: string): string {
  const flat = text.normalize();
  return flat === text ? flat : text;
}

/** Slots per chunk of the client keys (see BanTable's #clients): 2^16. */
const KEY_CHUNK_BITS = 16;
const KEY_CHUNK = 1 << KEY_CHUNK_BITS;

/** How many Maps hold the clients' heads (a power of two). */
const HEAD_MAPS = 16;

/**
 * client → its first slot, in HEAD_MAPS Maps chosen by a cheap hash of the key. One Map of a
 * million clients rehashes the whole table when it grows past 524,288 (about 50 ms at once, while
 * a snapshot or Redis loads); sixteen rehash a sixteenth each, at different moments.
 */
class ClientHeads {
  readonly #maps: Map<string, number>[] = Array.from({ length: HEAD_MAPS }, () => new Map());

  #map(client: string): Map<string, number> {
    const n = client.length;
    // The last character, the middle one, the one before an IPv6 key's '::/64' and one near the
    // start (`| 0`: a key shorter than that). The last and the middle alone sent half a million
    // IPv6 /64 keys with a short third group (2001:db8:f:1234::/64) to one Map, whose growth past
    // 262,144 held a Redis load 50-90 ms; one near the start spreads keys that share their end
    // (user42@example.com).
    const h =
      client.charCodeAt(n - 1) +
      client.charCodeAt(n >> 1) * 3 +
      (client.charCodeAt(n - 6) | 0) * 7 +
      (client.charCodeAt(n >> 2) | 0) * 13 +
      n;
    return this.#maps[h & (HEAD_MAPS - 1)] as Map<string, number>;
  }

  get(client: string): number | undefined {
    return this.#map(client).get(client);
  }

  set(client: string, slot: number): void {
    this.#map(client).set(client, slot);
  }

  delete(client: string): void {
    this.#map(client).delete(client);
  }

  *values(): IterableIterator<number> {
    for (const map of this.#maps) yield* map.values();
  }
}

/** One page of a walk over a table: the bans, and the cursor of the next page (undefined: done). */
export interface TablePage {
  readonly bans: Ban[];
  readonly next: number | undefined;
}

/**
 * Active bans, compact: a million bans must fit in a couple of hundred megabytes. Each ban is a
 * slot in typed arrays (times, count, flags, interned jail and reason) rather than an object; the
 * only per-ban objects are the client key string and its Map entry. A client's bans in several
 * jails are chained from one Map entry. `Ban` objects are built only when asked for.
 *
 * Expiry is by time buckets (one per second of end time, slots doubly linked inside), found
 * through a min-heap of bucket seconds: sweeping costs what expires, not what exists.
 */
export class BanTable {
  /** client → its first slot. */
  readonly #heads = new ClientHeads();
  /**
   * The client key of each slot, in chunks of KEY_CHUNK slots: a table grows a chunk at a time.
   * One array of a million keys grew by copying itself whole, 64-70 ms in one step of a Redis load
   * (CPU profile, load 5-6).
   */
  readonly #clients: (string | undefined)[][] = [];
  #start = new Float64Array(INITIAL);
  #end = new Float64Array(INITIAL);
  #count = new Int32Array(INITIAL);
  #flags = new Uint8Array(INITIAL);
  #jail = new Int32Array(INITIAL);
  #reason = new Int32Array(INITIAL);
  /** The next slot of the same client; for a free slot, the next free one. */
  #chain = new Int32Array(INITIAL).fill(NONE);
  /** The expiry bucket's doubly linked list. */
  #prev = new Int32Array(INITIAL).fill(NONE);
  #next = new Int32Array(INITIAL).fill(NONE);
  #capacity = INITIAL;
  /** Slots below this have been used (a walk stops here). */
  #used = 0;
  #freeHead = NONE;
  #size = 0;
  readonly #jails = new Interner();
  readonly #reasons = new Interner();
  /** Bucket second → its first slot. */
  readonly #buckets = new Map<number, number>();
  /** Min-heap of bucket seconds (a second may linger after its bucket emptied: skipped). */
  readonly #seconds: number[] = [];

  get size(): number {
    return this.#size;
  }

  /** The first slot of `client`'s chain, or NONE (-1). */
  head(client: string): number {
    return this.#heads.get(client) ?? NONE;
  }

  /** The next slot in the same client's chain, or -1. */
  chained(slot: number): number {
    return this.#chain[slot] as number;
  }

  /** The slot of `client`'s ban in `jail`, or -1. */
  find(client: string, jail: string): number {
    const id = this.#jails.peek(jail);
    if (id === undefined) return NONE;
    for (let s = this.head(client); s !== NONE; s = this.#chain[s] as number) {
      if (this.#jail[s] === id) return s;
    }
    return NONE;
  }

  client(slot: number): string {
    return this.#keyAt(slot) as string;
  }

  jail(slot: number): string {
    return this.#jails.name(this.#jail[slot] as number);
  }

  startMs(slot: number): number {
    return this.#start[slot] as number;
  }

  endMs(slot: number): number {
    return this.#end[slot] as number;
  }

  banCount(slot: number): number {
    return this.#count[slot] as number;
  }

  hasFlag(slot: number, flag: number): boolean {
    return ((this.#flags[slot] as number) & flag) !== 0;
  }

  /** The ban in a slot, as a new plain object. */
  ban(slot: number): Ban {
    return {
      jail: this.jail(slot),
      client: this.#keyAt(slot) as string,
      startMs: this.#start[slot] as number,
      endMs: this.#end[slot] as number,
      banCount: this.#count[slot] as number,
      reason: this.#reasons.name(this.#reason[slot] as number),
      manual: ((this.#flags[slot] as number) & MANUAL) !== 0,
    };
  }

  /**
   * Adds the ban, or replaces the client's ban in that jail. `ownerFlag` sets OWNER_FLAG.
   * Returns the slot.
   */
  set(ban: Ban, ownerFlag = false): number {
    return this.upsert(ban, ownerFlag) ?? this.find(ban.client, ban.jail);
  }

  /**
   * Like `set`, but leaves the table alone when it holds this very ban already (same start and
   * end): returns the slot written, or undefined when nothing changed. One Map lookup for a new
   * client (a million bans loaded at start are a million of these).
   */
  upsert(ban: Ban, ownerFlag = false): number | undefined {
    const head = this.#heads.get(ban.client);
    const id = head === undefined ? undefined : this.#jails.peek(ban.jail);
    let slot = NONE;
    if (id !== undefined) {
      for (let s = head as number; s !== NONE; s = this.#chain[s] as number) {
        if (this.#jail[s] === id) {
          slot = s;
          break;
        }
      }
    }
    if (slot === NONE) {
      slot = this.#allocate();
      // The Map keeps the first string it was given for the client: the slot shares it.
      const client = head === undefined ? flatKey(ban.client) : (this.#keyAt(head) as string);
      this.#setKeyAt(slot, client);
      this.#chain[slot] = head ?? NONE;
      this.#heads.set(client, slot);
      this.#jail[slot] = this.#jails.acquire(ban.jail);
      this.#size++;
    } else if (this.#start[slot] === ban.startMs && this.#end[slot] === ban.endMs) {
      return undefined;
    } else {
      this.#unbucket(slot);
      this.#reasons.release(this.#reason[slot] as number);
    }
    this.#start[slot] = ban.startMs;
    this.#end[slot] = ban.endMs;
    this.#count[slot] = ban.banCount;
    this.#flags[slot] = (ban.manual ? MANUAL : 0) | (ownerFlag ? OWNER_FLAG : 0);
    this.#reason[slot] = this.#reasons.acquire(ban.reason);
    this.#bucket(slot);
    return slot;
  }

  /**
   * Makes room for about `more` bans besides those held, at once: a table filled by a load grows
   * while it is small, not by doubling a million slots' arrays in one step (40-100 ms at 524,288).
   */
  reserve(more: number): void {
    const want = this.#size + Math.max(0, Math.ceil(more));
    if (want <= this.#capacity) return;
    let size = this.#capacity;
    while (size < want) size *= 2;
    this.#grow(size);
  }

  /** Removes a slot's ban. */
  remove(slot: number): void {
    const client = this.#keyAt(slot) as string;
    const head = this.#heads.get(client) as number;
    const after = this.#chain[slot] as number;
    if (head === slot) {
      if (after === NONE) this.#heads.delete(client);
      else this.#heads.set(client, after);
    } else {
      let s = head;
      while ((this.#chain[s] as number) !== slot) s = this.#chain[s] as number;
      this.#chain[s] = after;
    }
    this.#unbucket(slot);
    this.#jails.release(this.#jail[slot] as number);
    this.#reasons.release(this.#reason[slot] as number);
    this.#setKeyAt(slot, undefined);
    this.#chain[slot] = this.#freeHead;
    this.#freeHead = slot;
    this.#size--;
  }

  /**
   * Removes the bans that ended at or before `now`, calling `ended` with each (before its slot is
   * freed, so the slot's fields can still be read), at most `max` of them: returns true when more
   * are due (the caller goes on after a turn of the event loop; an ended ban is never enforced
   * meanwhile, since every reader compares its end with the time).
   */
  expire(now: number, ended: (slot: number) => void, max = Number.POSITIVE_INFINITY): boolean {
    const second = Math.floor(now / 1000);
    const heap = this.#seconds;
    let removed = 0;
    while (heap.length > 0 && (heap[0] as number) <= second) {
      const at = heap[0] as number;
      let s = this.#buckets.get(at);
      if (s === undefined) {
        popMin(heap);
        continue;
      }
      const whole = at < second;
      while (s !== NONE) {
        if (removed >= max) return true;
        const next = this.#next[s] as number;
        if (whole || (this.#end[s] as number) <= now) {
          ended(s);
          this.remove(s);
          removed++;
        }
        s = next;
      }
      if (!this.#buckets.has(at)) popMin(heap);
      else break; // the current second: the rest of its bucket ends later
    }
    return false;
  }

  /**
   * One page of a walk in slot order, from the cursor `after` (undefined: the start): at most
   * `limit` bans active at `now`, of `jail` (or every jail). A page also stops after looking at
   * `scan` slots (a jail with few bans among a million never costs one long walk): it may then
   * hold fewer than `limit`, even none, with a cursor to go on from. Bans added or lifted during
   * a walk may be missed or listed once more.
   */
  page(after: number | undefined, limit: number, now: number, jail?: string, scan = PAGE_SCAN): TablePage {
    const bans: Ban[] = [];
    const id = jail === undefined ? undefined : this.#jails.peek(jail);
    if (jail !== undefined && id === undefined) return { bans, next: undefined };
    const from = after === undefined ? 0 : after + 1;
    const stop = Math.min(this.#used, from + Math.max(scan, limit));
    for (let s = from; s < stop; s++) {
      if (this.#keyAt(s) === undefined) continue;
      if ((this.#end[s] as number) <= now || (id !== undefined && this.#jail[s] !== id)) continue;
      bans.push(this.ban(s));
      if (bans.length >= limit) return { bans, next: s < this.#used - 1 ? s : undefined };
    }
    return { bans, next: stop < this.#used ? stop - 1 : undefined };
  }

  /** Every occupied slot. */
  *slots(): IterableIterator<number> {
    for (const head of this.#heads.values()) {
      for (let s = head; s !== NONE; s = this.#chain[s] as number) yield s;
    }
  }

  /** Bans per jail. */
  counts(): Map<string, number> {
    return new Map(this.#jails.entries());
  }

  clear(): void {
    for (const slot of [...this.slots()]) this.remove(slot);
  }

  #keyAt(slot: number): string | undefined {
    return this.#clients[slot >>> KEY_CHUNK_BITS]?.[slot & (KEY_CHUNK - 1)];
  }

  #setKeyAt(slot: number, key: string | undefined): void {
    const n = slot >>> KEY_CHUNK_BITS;
    let chunk = this.#clients[n];
    if (chunk === undefined) {
      chunk = new Array<string | undefined>(KEY_CHUNK);
      this.#clients[n] = chunk;
    }
    chunk[slot & (KEY_CHUNK - 1)] = key;
  }

  #allocate(): number {
    if (this.#freeHead !== NONE) {
      const slot = this.#freeHead;
      this.#freeHead = this.#chain[slot] as number;
      return slot;
    }
    if (this.#used === this.#capacity) this.#grow(this.#capacity * 2);
    // A slot never used: its links are written now, not when its arrays grew (see #grow).
    const slot = this.#used++;
    this.#chain[slot] = NONE;
    this.#prev[slot] = NONE;
    this.#next[slot] = NONE;
    return slot;
  }

  /**
   * New arrays of `size` slots, the used ones copied. Nothing else is written: a fresh array's
   * memory is mapped as its pages are first touched, and touching them is the cost (a page fault
   * each, 12-16 µs on a shared VM): filling the links with NONE here touched 12 MB at once, 40 ms
   * for a million slots; #allocate writes a slot's links when it is first used.
   */
  #grow(size: number): void {
    const used = this.#used;
    const grow = <T extends Float64Array | Int32Array | Uint8Array>(old: T): T => {
      const next = new (old.constructor as new (n: number) => T)(size);
      next.set(old.subarray(0, used));
      return next;
    };
    this.#start = grow(this.#start);
    this.#end = grow(this.#end);
    this.#count = grow(this.#count);
    this.#flags = grow(this.#flags);
    this.#jail = grow(this.#jail);
    this.#reason = grow(this.#reason);
    this.#chain = grow(this.#chain);
    this.#prev = grow(this.#prev);
    this.#next = grow(this.#next);
    this.#capacity = size;
  }

  #bucket(slot: number): void {
    const end = this.#end[slot] as number;
    if (end === Number.POSITIVE_INFINITY) return; // a permanent ban never expires
    const second = Math.floor(end / 1000);
    const head = this.#buckets.get(second);
    this.#prev[slot] = NONE;
    if (head === undefined) {
      this.#next[slot] = NONE;
      pushMin(this.#seconds, second);
    } else {
      this.#next[slot] = head;
      this.#prev[head] = slot;
    }
    this.#buckets.set(second, slot);
  }

  #unbucket(slot: number): void {
    const end = this.#end[slot] as number;
    if (end === Number.POSITIVE_INFINITY) return;
    const prev = this.#prev[slot] as number;
    const next = this.#next[slot] as number;
    if (next !== NONE) this.#prev[next] = prev;
    if (prev !== NONE) this.#next[prev] = next;
    else {
      const second = Math.floor(end / 1000);
      if (next === NONE) this.#buckets.delete(second);
      else this.#buckets.set(second, next);
    }
    this.#prev[slot] = NONE;
    this.#next[slot] = NONE;
  }
}

function pushMin(heap: number[], value: number): void {
  heap.push(value);
  let i = heap.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if ((heap[parent] as number) <= value) break;
    heap[i] = heap[parent] as number;
    i = parent;
  }
  heap[i] = value;
}

function popMin(heap: number[]): void {
  const last = heap.pop() as number;
  if (heap.length === 0) return;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= heap.length) break;
    const r = l + 1;
    const c = r < heap.length && (heap[r] as number) < (heap[l] as number) ? r : l;
    if ((heap[c] as number) >= last) break;
    heap[i] = heap[c] as number;
    i = c;
  }
  heap[i] = last;
}
