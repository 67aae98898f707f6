import type { Ban } from '../store/store.js';

/** [endMs, client, jail] */
type HeapItem = [number, string, string];

/** The answer of `check()`. A ban is a normal result, never an error. */
export type Verdict = NotBanned | Banned;

/** The verdict for a client that may go on. */
export interface NotBanned {
  readonly banned: false;
}

/** The verdict for a banned client: the ban that refuses it, prebuilt so a refusal allocates nothing. */
export interface Banned {
  readonly banned: true;
  readonly jail: string;
  readonly client: string;
  /** Epoch ms when the ban ends; Infinity for a permanent ban. */
  readonly untilMs: number;
  readonly ban: Ban;
}

export const NOT_BANNED: NotBanned = Object.freeze({ banned: false });

/** One ban as the index holds it: the verdict is built once, so a refusal allocates nothing. */
export interface IndexedBan {
  readonly ban: Ban;
  /** True when the ban refuses the client everywhere; false for a jail-scope ban. */
  readonly appScope: boolean;
  readonly verdict: Banned;
}

/**
 * The local replica of active bans that `check()` reads: one Map lookup for a client that is not
 * banned. Expiry is found through a min-heap of end times, so sweeping never scans every ban.
 */
export class BanIndex {
  readonly #byClient = new Map<string, IndexedBan[]>();
  /** [endMs, client, jail] entries; stale ones (the ban was replaced or lifted) are skipped on pop. */
  readonly #heap: Array<HeapItem> = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  get(client: string): readonly IndexedBan[] | undefined {
    return this.#byClient.get(client);
  }

  /** Adds or replaces the client's ban in that jail. Returns the entry. */
  add(ban: Ban, appScope: boolean): IndexedBan {
    const entry: IndexedBan = Object.freeze({
      ban,
      appScope,
      verdict: Object.freeze({
        banned: true as const,
        jail: ban.jail,
        client: ban.client,
        untilMs: ban.endMs,
        ban,
      }),
    });
    const list = this.#byClient.get(ban.client);
    if (list === undefined) {
      this.#byClient.set(ban.client, [entry]);
      this.#size++;
    } else {
      const at = list.findIndex((e) => e.ban.jail === ban.jail);
      if (at === -1) {
        list.push(entry);
        this.#size++;
      } else list[at] = entry;
    }
    if (ban.endMs !== Number.POSITIVE_INFINITY) this.#push([ban.endMs, ban.client, ban.jail]);
    return entry;
  }

  /** Removes the client's ban in one jail; returns it. */
  remove(client: string, jail: string): IndexedBan | undefined {
    const list = this.#byClient.get(client);
    if (list === undefined) return undefined;
    const at = list.findIndex((e) => e.ban.jail === jail);
    if (at === -1) return undefined;
    const [entry] = list.splice(at, 1);
    this.#size--;
    if (list.length === 0) this.#byClient.delete(client);
    return entry;
  }

  /** Removes and returns every ban whose end is at or before `now`. */
  expire(now: number): IndexedBan[] {
    const out: IndexedBan[] = [];
    while (this.#heap.length > 0 && (this.#heap[0] as HeapItem)[0] <= now) {
      const [endMs, client, jail] = this.#pop();
      const entry = this.#byClient.get(client)?.find((e) => e.ban.jail === jail);
      if (entry !== undefined && entry.ban.endMs === endMs) {
        this.remove(client, jail);
        out.push(entry);
      }
    }
    return out;
  }

  *values(): IterableIterator<IndexedBan> {
    for (const list of this.#byClient.values()) yield* list;
  }

  clear(): void {
    this.#byClient.clear();
    this.#heap.length = 0;
    this.#size = 0;
  }

  #push(item: HeapItem): void {
    const heap = this.#heap;
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((heap[parent] as HeapItem)[0] <= item[0]) break;
      heap[i] = heap[parent] as HeapItem;
      i = parent;
    }
    heap[i] = item;
  }

  #pop(): HeapItem {
    const heap = this.#heap;
    const top = heap[0] as HeapItem;
    const last = heap.pop() as HeapItem;
    if (heap.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= heap.length) break;
        const r = l + 1;
        const c = r < heap.length && (heap[r] as HeapItem)[0] < (heap[l] as HeapItem)[0] ? r : l;
        if ((heap[c] as HeapItem)[0] >= last[0]) break;
        heap[i] = heap[c] as HeapItem;
        i = c;
      }
      heap[i] = last;
    }
    return top;
  }
}
