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
    // The last character and the sixth from the end: IPv4 keys end in any digit; IPv6 /64 keys
    // all end in '::/64', and their sixth from the end is their last group's last digit. (With
    // the middle character instead, every IPv6 key of the benches' million fell in one Map,
    // 510,199 keys, whose rehash held a restore's slice 48-73 ms; now the largest holds 102,460.)
    const h = client.charCodeAt(n - 1) + client.charCodeAt(n > 5 ? n - 6 : 0) * 3 + n;
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

/** Slots per segment (a power of two); the first segment grows by doubling up to this size. */
const SEGMENT_SHIFT = 16;
const SEGMENT = 1 << SEGMENT_SHIFT;
const SEGMENT_MASK = SEGMENT - 1;

/** One segment of slots: a column per field. */
interface Segment {
  clients: (string | undefined)[];
  start: Float64Array;
  end: Float64Array;
  count: Int32Array;
  flags: Uint8Array;
  jail: Int32Array;
  reason: Int32Array;
  /** The next slot of the same client; for a free slot, the next free one. */
  chain: Int32Array;
  /** The expiry bucket's doubly linked list. */
  prev: Int32Array;
  next: Int32Array;
}

function segment(size: number, from?: Segment): Segment {
  const grown = <T extends Float64Array | Int32Array | Uint8Array>(
    make: new (n: number) => T,
    old: T | undefined,
    fill?: number,
  ): T => {
    const next = new make(size);
    if (fill !== undefined) next.fill(fill, old?.length ?? 0);
    if (old !== undefined) next.set(old);
    return next;
  };
  return {
    clients: from?.clients ?? [],
    start: grown(Float64Array, from?.start),
    end: grown(Float64Array, from?.end),
    count: grown(Int32Array, from?.count),
    flags: grown(Uint8Array, from?.flags),
    jail: grown(Int32Array, from?.jail),
    reason: grown(Int32Array, from?.reason),
    chain: grown(Int32Array, from?.chain, NONE),
    prev: grown(Int32Array, from?.prev, NONE),
    next: grown(Int32Array, from?.next, NONE),
  };
}

/**
 * Active bans, compact: a million bans must fit in a couple of hundred megabytes. Each ban is a
 * slot in typed arrays (times, count, flags, interned jail and reason) rather than an object; the
 * only per-ban objects are the client key string and its Map entry. A client's bans in several
 * jails are chained from one Map entry. `Ban` objects are built only when asked for.
 *
 * Slots live in segments of 65,536: the first doubles up to that size, then each new segment is
 * added beside the others, and nothing is copied. (One set of arrays doubling from 524,288 to
 * 1,048,576 slots copied 21 MB into 41 MB of fresh memory in one go: 60-100 ms of blocked loop
 * while a million bans were restored, at a load of 6-11.)
 *
 * Expiry is by time buckets (one per second of end time, slots doubly linked inside), found
 * through a min-heap of bucket seconds: sweeping costs what expires, not what exists.
 */
export class BanTable {
  /** client → its first slot. */
  readonly #heads = new ClientHeads();
  readonly #segments: Segment[] = [segment(INITIAL)];
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

  /** The segment holding `slot` (its index there is `slot & SEGMENT_MASK`). */
  #at(slot: number): Segment {
    return this.#segments[slot >>> SEGMENT_SHIFT] as Segment;
  }

  /** The first slot of `client`'s chain, or NONE (-1). */
  head(client: string): number {
    return this.#heads.get(client) ?? NONE;
  }

  /** The next slot in the same client's chain, or -1. */
  chained(slot: number): number {
    return this.#at(slot).chain[slot & SEGMENT_MASK] as number;
  }

  /** The slot of `client`'s ban in `jail`, or -1. */
  find(client: string, jail: string): number {
    const id = this.#jails.peek(jail);
    if (id === undefined) return NONE;
    for (let s = this.head(client); s !== NONE; ) {
      const seg = this.#at(s);
      const i = s & SEGMENT_MASK;
      if (seg.jail[i] === id) return s;
      s = seg.chain[i] as number;
    }
    return NONE;
  }

  client(slot: number): string {
    return this.#at(slot).clients[slot & SEGMENT_MASK] as string;
  }

  jail(slot: number): string {
    return this.#jails.name(this.#at(slot).jail[slot & SEGMENT_MASK] as number);
  }

  startMs(slot: number): number {
    return this.#at(slot).start[slot & SEGMENT_MASK] as number;
  }

  endMs(slot: number): number {
    return this.#at(slot).end[slot & SEGMENT_MASK] as number;
  }

  banCount(slot: number): number {
    return this.#at(slot).count[slot & SEGMENT_MASK] as number;
  }

  hasFlag(slot: number, flag: number): boolean {
    return ((this.#at(slot).flags[slot & SEGMENT_MASK] as number) & flag) !== 0;
  }

  /** The ban in a slot, as a new plain object. */
  ban(slot: number): Ban {
    const seg = this.#at(slot);
    const i = slot & SEGMENT_MASK;
    return {
      jail: this.#jails.name(seg.jail[i] as number),
      client: seg.clients[i] as string,
      startMs: seg.start[i] as number,
      endMs: seg.end[i] as number,
      banCount: seg.count[i] as number,
      reason: this.#reasons.name(seg.reason[i] as number),
      manual: ((seg.flags[i] as number) & MANUAL) !== 0,
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
      for (let s = head as number; s !== NONE; ) {
        const seg = this.#at(s);
        const i = s & SEGMENT_MASK;
        if (seg.jail[i] === id) {
          slot = s;
          break;
        }
        s = seg.chain[i] as number;
      }
    }
    let seg: Segment;
    let i: number;
    if (slot === NONE) {
      slot = this.#allocate();
      seg = this.#at(slot);
      i = slot & SEGMENT_MASK;
      // The Map keeps the first string it was given for the client: the slot shares it.
      const client = head === undefined ? flatKey(ban.client) : this.client(head);
      seg.clients[i] = client;
      seg.chain[i] = head ?? NONE;
      this.#heads.set(client, slot);
      seg.jail[i] = this.#jails.acquire(ban.jail);
      this.#size++;
    } else {
      seg = this.#at(slot);
      i = slot & SEGMENT_MASK;
      if (seg.start[i] === ban.startMs && seg.end[i] === ban.endMs) return undefined;
      this.#unbucket(slot);
      this.#reasons.release(seg.reason[i] as number);
    }
    seg.start[i] = ban.startMs;
    seg.end[i] = ban.endMs;
    seg.count[i] = ban.banCount;
    seg.flags[i] = (ban.manual ? MANUAL : 0) | (ownerFlag ? OWNER_FLAG : 0);
    seg.reason[i] = this.#reasons.acquire(ban.reason);
    this.#bucket(slot);
    return slot;
  }

  /** Removes a slot's ban. */
  remove(slot: number): void {
    const seg = this.#at(slot);
    const i = slot & SEGMENT_MASK;
    const client = seg.clients[i] as string;
    const head = this.#heads.get(client) as number;
    const after = seg.chain[i] as number;
    if (head === slot) {
      if (after === NONE) this.#heads.delete(client);
      else this.#heads.set(client, after);
    } else {
      let s = head;
      while (this.chained(s) !== slot) s = this.chained(s);
      this.#at(s).chain[s & SEGMENT_MASK] = after;
    }
    this.#unbucket(slot);
    this.#jails.release(seg.jail[i] as number);
    this.#reasons.release(seg.reason[i] as number);
    seg.clients[i] = undefined;
    seg.chain[i] = this.#freeHead;
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
        const seg = this.#at(s);
        const i = s & SEGMENT_MASK;
        const next = seg.next[i] as number;
        if (whole || (seg.end[i] as number) <= now) {
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
      const seg = this.#at(s);
      const i = s & SEGMENT_MASK;
      if (seg.clients[i] === undefined) continue;
      if ((seg.end[i] as number) <= now || (id !== undefined && seg.jail[i] !== id)) continue;
      bans.push(this.ban(s));
      if (bans.length >= limit) return { bans, next: s < this.#used - 1 ? s : undefined };
    }
    return { bans, next: stop < this.#used ? stop - 1 : undefined };
  }

  /** Every occupied slot. */
  *slots(): IterableIterator<number> {
    for (const head of this.#heads.values()) {
      for (let s = head; s !== NONE; s = this.chained(s)) yield s;
    }
  }

  /** Bans per jail. */
  counts(): Map<string, number> {
    return new Map(this.#jails.entries());
  }

  clear(): void {
    for (const slot of [...this.slots()]) this.remove(slot);
  }

  #allocate(): number {
    if (this.#freeHead !== NONE) {
      const slot = this.#freeHead;
      this.#freeHead = this.chained(slot);
      return slot;
    }
    if (this.#used === this.#capacity) this.#grow();
    return this.#used++;
  }

  /** The first segment doubles until it is whole; then a new segment is added: nothing is copied. */
  #grow(): void {
    if (this.#capacity < SEGMENT) {
      const size = this.#capacity * 2;
      this.#segments[0] = segment(size, this.#segments[0]);
      this.#capacity = size;
    } else {
      this.#segments.push(segment(SEGMENT));
      this.#capacity += SEGMENT;
    }
  }

  #bucket(slot: number): void {
    const seg = this.#at(slot);
    const i = slot & SEGMENT_MASK;
    const end = seg.end[i] as number;
    if (end === Number.POSITIVE_INFINITY) return; // a permanent ban never expires
    const second = Math.floor(end / 1000);
    const head = this.#buckets.get(second);
    seg.prev[i] = NONE;
    if (head === undefined) {
      seg.next[i] = NONE;
      pushMin(this.#seconds, second);
    } else {
      seg.next[i] = head;
      this.#at(head).prev[head & SEGMENT_MASK] = slot;
    }
    this.#buckets.set(second, slot);
  }

  #unbucket(slot: number): void {
    const seg = this.#at(slot);
    const i = slot & SEGMENT_MASK;
    const end = seg.end[i] as number;
    if (end === Number.POSITIVE_INFINITY) return;
    const prev = seg.prev[i] as number;
    const next = seg.next[i] as number;
    if (next !== NONE) this.#at(next).prev[next & SEGMENT_MASK] = prev;
    if (prev !== NONE) this.#at(prev).next[prev & SEGMENT_MASK] = next;
    else {
      const second = Math.floor(end / 1000);
      if (next === NONE) this.#buckets.delete(second);
      else this.#buckets.set(second, next);
    }
    seg.prev[i] = NONE;
    seg.next[i] = NONE;
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
