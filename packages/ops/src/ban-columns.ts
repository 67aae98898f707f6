import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Ban } from '@jailkeeper/core/store';

/** Bans per chunk (a power of two): no array of the list is ever longer than this. */
const SHIFT = 11;
const CHUNK = 1 << SHIFT;
const MASK = CHUNK - 1;
/** Bans copied from a whole list between two yields to the event loop. */
const SLICE = 16_384;

interface Chunk {
  readonly clients: string[];
  readonly jails: string[];
  readonly reasons: string[];
  readonly start: Float64Array;
  readonly end: Float64Array;
  readonly count: Float64Array;
  readonly manual: Uint8Array;
}

const chunk = (): Chunk => ({
  clients: [],
  jails: [],
  reasons: [],
  start: new Float64Array(CHUNK),
  end: new Float64Array(CHUNK),
  count: new Float64Array(CHUNK),
  manual: new Uint8Array(CHUNK),
});

/**
 * A snapshot of bans for the console's pager, kept as columns in chunks of 2,048: texts as
 * references to the strings the bans already hold, times and counts in typed arrays. A million
 * `Ban` objects kept for a snapshot were a million survivors for the young generation to copy
 * (scavenges of 43 ms at a million bans), and one array of a million grew by copying it whole
 * (24-40 ms in one turn); here the objects read from the keeper die young, and no array grows
 * past a chunk. A page builds its few `Ban` objects back (`ban(i)`). A list handed in whole
 * keeps its own objects, which `ban(i)` returns as they came.
 */
export class BanColumns {
  readonly #chunks: Chunk[] = [];
  #length = 0;
  #given: readonly Ban[] | undefined;

  get length(): number {
    return this.#length;
  }

  /** The columns of a whole list, copied a slice at a time with turns of the event loop between. */
  static async fromList(bans: readonly Ban[]): Promise<BanColumns> {
    const columns = new BanColumns();
    for (let i = 0; i < bans.length; i++) {
      columns.push(bans[i] as Ban);
      if ((i & (SLICE - 1)) === SLICE - 1) await nextTurn();
    }
    columns.#given = bans;
    return columns;
  }

  /**
   * Appends a ban's fields. A forged store entry may hold anything: texts are read as strings,
   * times and counts as numbers (NaN when they are not).
   */
  push(ban: Ban): void {
    const at = this.#length & MASK;
    if (at === 0) this.#chunks.push(chunk());
    const c = this.#chunks[this.#chunks.length - 1] as Chunk;
    c.clients.push(String(ban.client));
    c.jails.push(String(ban.jail));
    c.reasons.push(String(ban.reason));
    c.start[at] = Number(ban.startMs);
    c.end[at] = Number(ban.endMs);
    c.count[at] = Number(ban.banCount);
    c.manual[at] = ban.manual === true ? 1 : 0;
    this.#length++;
  }

  #chunk(i: number): Chunk {
    return this.#chunks[i >>> SHIFT] as Chunk;
  }

  client(i: number): string {
    return this.#chunk(i).clients[i & MASK] as string;
  }

  jail(i: number): string {
    return this.#chunk(i).jails[i & MASK] as string;
  }

  reason(i: number): string {
    return this.#chunk(i).reasons[i & MASK] as string;
  }

  startMs(i: number): number {
    return this.#chunk(i).start[i & MASK] as number;
  }

  endMs(i: number): number {
    return this.#chunk(i).end[i & MASK] as number;
  }

  banCount(i: number): number {
    return this.#chunk(i).count[i & MASK] as number;
  }

  /** The ban at `i`: the object handed in with a whole list, else a new one built from the columns. */
  ban(i: number): Ban {
    if (this.#given !== undefined) return this.#given[i] as Ban;
    const c = this.#chunk(i);
    const at = i & MASK;
    return {
      jail: c.jails[at] as string,
      client: c.clients[at] as string,
      startMs: c.start[at] as number,
      endMs: c.end[at] as number,
      banCount: c.count[at] as number,
      reason: c.reasons[at] as string,
      manual: c.manual[at] === 1,
    };
  }
}
