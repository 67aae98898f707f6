import { setImmediate as nextTurn } from 'node:timers/promises';
import { type Jailkeeper, JailkeeperError } from '@jailkeeper/core';
import { type Cidr, parseCidr } from '@jailkeeper/core/operator';
import type { Ban } from '@jailkeeper/core/store';
import { BanColumns } from './ban-columns.js';
import { sortByKeys, sortIndices } from './ban-sort.js';

/** The orders a page of bans can be sorted in. */
export const BAN_SORT_KEYS = ['endMs', 'startMs', 'client', 'jail', 'banCount'] as const;
/** A sort key of {@link BanTableQuery}: one of {@link BAN_SORT_KEYS}. */
export type BanSortKey = (typeof BAN_SORT_KEYS)[number];

/** A query of the console's bans table: filtered, sorted, sliced (the store's own pages are `BanPage`). */
export interface BanTableQuery {
  /** Only this jail's bans. */
  readonly jail?: string;
  /**
   * An address (the bans of its client), a network in CIDR form (the bans inside it), or text
   * matched case-insensitively inside the client or the reason.
   */
  readonly q?: string;
  /** @default 'endMs' (time left) */
  readonly sort?: BanSortKey;
  /** @default 'asc' */
  readonly order?: 'asc' | 'desc';
  /** @default 0 */
  readonly offset?: number;
  /** 1 to 500. @default 50 */
  readonly limit?: number;
}

/** A page of bans, with the number that matched and the number there are. */
export interface BanTablePage {
  readonly bans: readonly Ban[];
  /** Bans matching `jail` and `q`. */
  readonly total: number;
  /** Active bans in the snapshot the page was cut from. */
  readonly all: number;
  readonly offset: number;
  readonly limit: number;
  readonly sort: BanSortKey;
  readonly order: 'asc' | 'desc';
  /** True when bans changed after the snapshot was taken: ask again shortly for the newest. */
  readonly stale: boolean;
}

/** Answers paged, filtered and sorted queries over the active bans. */
export interface BanPager {
  page(query: BanTableQuery): Promise<BanTablePage>;
  /** Bans changed (a ban or an unban event): the next page is cut from a new snapshot. */
  invalidate(): void;
}

/** Items handled between two yields to the event loop: a slice stays a few milliseconds long. */
const SLICE = 16_384;
const MAX_LIMIT = 500;
const MAX_Q = 100;
const SEARCH_CACHE = 8;

/**
 * The bans a keeper enforces, read from its local index a page at a time with a turn of the event
 * loop between pages (`keeper.activeBans()` builds a million in one go), kept as columns (the
 * page's objects die young): what a pager loads.
 */
async function localBans(keeper: Jailkeeper): Promise<BanColumns> {
  const out = new BanColumns();
  let after: string | undefined;
  do {
    const page = keeper.activeBansPage({ after, limit: 2000 });
    for (const ban of page.bans) out.push(ban);
    after = page.next;
    if (after !== undefined) await nextTurn();
  } while (after !== undefined);
  return out;
}

/** Reads the paging parameters of a query string, with coded errors for bad values. */
export function parseBanQuery(params: URLSearchParams): BanTableQuery {
  const int = (name: string, min: number, max: number): number | undefined => {
    const text = params.get(name);
    if (text === null || text === '') return undefined;
    const value = Number(text);
    if (!/^\d{1,10}$/.test(text) || value < min || value > max) {
      throw new JailkeeperError('JK_ERR_BAD_REQUEST', `${name} must be an integer from ${min} to ${max}.`);
    }
    return value;
  };
  const sort = params.get('sort') ?? undefined;
  if (sort !== undefined && !(BAN_SORT_KEYS as readonly string[]).includes(sort)) {
    throw new JailkeeperError('JK_ERR_BAD_REQUEST', `sort must be one of ${BAN_SORT_KEYS.join(', ')}.`);
  }
  const order = params.get('order') ?? undefined;
  if (order !== undefined && order !== 'asc' && order !== 'desc') {
    throw new JailkeeperError('JK_ERR_BAD_REQUEST', 'order must be asc or desc.');
  }
  const q = params.get('q') ?? undefined;
  if (q !== undefined && q.length > MAX_Q) {
    throw new JailkeeperError('JK_ERR_BAD_REQUEST', `q must be at most ${MAX_Q} characters.`);
  }
  return {
    jail: params.get('jail') || undefined,
    q: q?.trim() || undefined,
    sort: sort as BanSortKey | undefined,
    order,
    offset: int('offset', 0, 1_000_000_000),
    limit: int('limit', 1, MAX_LIMIT),
  };
}

/** True when the query string asks for a page (any paging parameter is present). */
export function isPageQuery(params: URLSearchParams): boolean {
  return ['offset', 'limit', 'q', 'sort', 'order'].some((name) => params.has(name));
}

interface Snapshot {
  readonly bans: BanColumns;
  /** IPv4 clients as numbers (NaN for anything else), for address order and network search. */
  readonly v4: Float64Array;
  readonly orders: Map<BanSortKey, Promise<Uint32Array>>;
  readonly searches: Map<string, Promise<Uint32Array>>;
  readonly builtMs: number;
  /**
   * The clients joined by newlines, SLICE of them a piece, with where each starts in its piece:
   * built on the first text search, searched a piece at a time.
   */
  clientText?: ClientText[];
}

interface ClientText {
  readonly text: string;
  /** The index of the piece's first ban. */
  readonly first: number;
  /** Where each client starts in `text`, and one past the last. */
  readonly starts: Uint32Array;
}

async function numbers(count: number, read: (i: number) => number, nonFinite = 0): Promise<Float64Array> {
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const value = read(i); // a forged store entry may hold anything (NaN)
    out[i] = Number.isFinite(value) ? value : nonFinite;
    if ((i & (SLICE - 1)) === SLICE - 1) await nextTurn();
  }
  return out;
}

/** The rank of each ban's text among the distinct texts (few: jail names), as sort keys. */
async function ranks(count: number, read: (i: number) => string): Promise<Float64Array> {
  const seen = new Set<string>();
  for (let i = 0; i < count; i++) {
    seen.add(read(i));
    if ((i & (SLICE - 1)) === SLICE - 1) await nextTurn();
  }
  const rank = new Map([...seen].sort().map((text, i) => [text, i]));
  return numbers(count, (i) => rank.get(read(i)) as number);
}

/** The sort keys of an order: numbers, so that sorting never calls back into JavaScript. */
async function sortKeys(snapshot: Snapshot, sort: BanSortKey): Promise<Float64Array> {
  const { bans, v4 } = snapshot;
  const n = bans.length;
  switch (sort) {
    case 'endMs': {
      // Permanent bans last: one past the latest end.
      const keys = await numbers(n, (i) => bans.endMs(i), Number.NaN);
      let latest = 0;
      for (let i = 0; i < keys.length; i++) if ((keys[i] as number) > latest) latest = keys[i] as number;
      for (let i = 0; i < keys.length; i++) if (Number.isNaN(keys[i] as number)) keys[i] = latest + 1;
      return keys;
    }
    case 'startMs':
      return numbers(n, (i) => bans.startMs(i));
    case 'banCount':
      return numbers(n, (i) => bans.banCount(i));
    case 'jail':
      return ranks(n, (i) => bans.jail(i));
    case 'client': {
      // IPv4 by number, then IPv6 (and anything else) by text, after every IPv4 address.
      let others: number[] = [];
      const keys = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        keys[i] = v4[i] as number;
        if (Number.isNaN(v4[i] as number)) others.push(i);
        if ((i & (SLICE - 1)) === SLICE - 1) await nextTurn();
      }
      others = await sortIndices(others, (x, y) => (bans.client(x) < bans.client(y) ? -1 : 1));
      for (let rank = 0; rank < others.length; rank++) keys[others[rank] as number] = 2 ** 32 + rank;
      return keys;
    }
  }
}

/** A canonical dotted quad as a number (NaN for anything else): the address order and network search. */
function v4Number(client: string): number {
  const length = client.length;
  if (length < 7 || length > 15) return Number.NaN;
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < length; i++) {
    const c = client.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return Number.NaN;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return Number.NaN;
      part = part * 10 + (c - 48);
      if (part > 255) return Number.NaN;
      digits++;
    } else return Number.NaN;
  }
  return dots === 3 && digits > 0 ? value * 256 + part : Number.NaN;
}

/**
 * Marks the bans whose client contains `text`: native searches over the clients joined, a piece of
 * SLICE clients at a time with a turn of the event loop between pieces. (Joined into one string of
 * 17 MB at a million bans, the join and the search of every match held the loop 100-130 ms.) A
 * match never spans two clients: `text` holds no newline.
 */
async function clientsContaining(snapshot: Snapshot, text: string): Promise<Uint8Array> {
  const { bans } = snapshot;
  if (snapshot.clientText === undefined) {
    const pieces: ClientText[] = [];
    for (let first = 0; first < bans.length; first += SLICE) {
      const count = Math.min(SLICE, bans.length - first);
      const starts = new Uint32Array(count + 1);
      const parts: string[] = [];
      let at = 0;
      for (let k = 0; k < count; k++) {
        let client = bans.client(first + k);
        if (client.includes('\n')) client = client.replace(/\n/g, ' ');
        parts.push(client);
        starts[k] = at;
        at += client.length + 1;
      }
      starts[count] = at;
      parts.push(''); // a newline after the last client too
      pieces.push({ text: parts.join('\n'), first, starts });
      await nextTurn();
    }
    snapshot.clientText = pieces;
  }
  const marks = new Uint8Array(bans.length);
  for (const { text: joined, first, starts } of snapshot.clientText) {
    let item = 0;
    for (let found = joined.indexOf(text); found !== -1; found = joined.indexOf(text, found + 1)) {
      while ((starts[item + 1] as number) <= found) item++; // matches come in order: walk, never search
      marks[first + item] = 1;
    }
    await nextTurn();
  }
  return marks;
}

/** How a search string matches a ban: a network or address it must be inside, or text to contain. */
async function matcher(snapshot: Snapshot, q: string | undefined, jail: string | undefined) {
  const { bans, v4 } = snapshot;
  let network: Cidr | undefined;
  let text: string | undefined;
  let clients: Uint8Array | undefined;
  const reasons = new Map<string, boolean>();
  if (q !== undefined) {
    const cidr = parseCidr(q);
    if (typeof cidr !== 'string') network = cidr;
    else {
      text = q.toLowerCase();
      // A client key is written with digits, a-f, dots, colons and a slash: other text can only be in
      // a reason, and the clients are not read for it.
      if (/^[0-9a-f:./]+$/.test(text) && /[0-9:.]/.test(text))
        clients = await clientsContaining(snapshot, text);
    }
  }
  return (i: number): boolean => {
    if (jail !== undefined && bans.jail(i) !== jail) return false;
    if (network !== undefined) {
      if (network.family === 4) {
        const value = v4[i] as number;
        if (Number.isNaN(value)) return false;
        const size = 2 ** (32 - network.prefix);
        return value >= network.value && value < network.value + size;
      }
      const client = parseCidr(bans.client(i));
      if (typeof client === 'string' || client.family !== 6) return false;
      // Two IPv6 networks overlap when they agree on the shorter prefix.
      const bits = Math.min(client.prefix, network.prefix);
      for (let w = 0; w < 8 && w * 16 < bits; w++) {
        const take = Math.min(16, bits - w * 16);
        const mask = (0xffff << (16 - take)) & 0xffff;
        if (((client.words[w] as number) & mask) !== ((network.words[w] as number) & mask)) return false;
      }
      return true;
    }
    if (text !== undefined) {
      if (clients?.[i] === 1) return true;
      const reason = bans.reason(i);
      let hit = reasons.get(reason);
      if (hit === undefined) {
        hit = reason.toLowerCase().includes(text);
        if (reasons.size < 10_000) reasons.set(reason, hit);
      }
      return hit;
    }
    return true;
  };
}

async function filterOrder(order: Uint32Array, keep: (i: number) => boolean): Promise<Uint32Array> {
  // A turn first: the search that made `keep` may have ended its own slice just now.
  await nextTurn();
  const out = new Uint32Array(order.length);
  let n = 0;
  for (let k = 0; k < order.length; k++) {
    const i = order[k] as number;
    if (keep(i)) out[n++] = i;
    if ((k & (SLICE - 1)) === SLICE - 1) await nextTurn();
  }
  return out.slice(0, n);
}

/**
 * A pager over a full list of bans (today's store contract returns them all): the list is taken
 * once per change into a snapshot, sorted per requested order in slices that yield to the event
 * loop, and searched the same way; pages are then cut in O(limit). Point `load` at a store-side
 * paged query when the store has one, and this module goes away.
 */
export function createBanPager(
  load: () => readonly Ban[] | Promise<readonly Ban[]>,
  options: { now?: () => number } = {},
): BanPager {
  return columnPager(async () => BanColumns.fromList(await load()), options);
}

/** The pager over the bans a keeper enforces (its local index), read a page at a time. */
export function localBanPager(keeper: Jailkeeper, options: { now?: () => number } = {}): BanPager {
  return columnPager(() => localBans(keeper), options);
}

function columnPager(load: () => Promise<BanColumns>, options: { now?: () => number }): BanPager {
  const now = options.now ?? Date.now;
  let snapshot: Promise<Snapshot> | undefined;
  let dirty = true;
  let lastBuildMs = 0;
  let builtAt = 0;

  const build = async (): Promise<Snapshot> => {
    const started = performance.now();
    const bans = await load();
    const v4 = new Float64Array(bans.length);
    for (let i = 0; i < bans.length; i++) {
      v4[i] = v4Number(bans.client(i));
      if ((i & (SLICE - 1)) === SLICE - 1) await nextTurn();
    }
    builtAt = performance.now();
    lastBuildMs = builtAt - started;
    return { bans, v4, orders: new Map(), searches: new Map(), builtMs: now() };
  };

  const current = (): Promise<Snapshot> => {
    // Under a storm of bans a large snapshot is reused for twice its build time (at most 2 s), so
    // rebuilds never run back to back; such a page says it is stale.
    const young = performance.now() - builtAt < Math.min(2000, 2 * lastBuildMs);
    if (snapshot === undefined || (dirty && !young)) {
      dirty = false;
      const next = build();
      snapshot = next;
      next.catch(() => {
        if (snapshot === next) snapshot = undefined;
      });
    }
    return snapshot;
  };

  const orderOf = (s: Snapshot, sort: BanSortKey): Promise<Uint32Array> => {
    let order = s.orders.get(sort);
    if (order === undefined) {
      order = sortKeys(s, sort).then(sortByKeys);
      s.orders.set(sort, order);
    }
    return order;
  };

  return {
    invalidate() {
      dirty = true;
    },
    async page(query) {
      const sort = query.sort ?? 'endMs';
      const order = query.order ?? 'asc';
      const offset = query.offset ?? 0;
      const limit = Math.min(query.limit ?? 50, MAX_LIMIT);
      const s = await current();
      const sorted = await orderOf(s, sort);
      let selected = sorted;
      if (query.q !== undefined || query.jail !== undefined) {
        const key = `${sort}\u0000${query.jail ?? ''}\u0000${query.q ?? ''}`;
        let found = s.searches.get(key);
        if (found === undefined) {
          found = matcher(s, query.q, query.jail).then((keep) => filterOrder(sorted, keep));
          if (s.searches.size >= SEARCH_CACHE) s.searches.delete(s.searches.keys().next().value as string);
          s.searches.set(key, found);
        }
        selected = await found;
      }
      const total = selected.length;
      const bans: Ban[] = [];
      for (let k = offset; k < Math.min(total, offset + limit); k++) {
        const at = order === 'asc' ? k : total - 1 - k;
        bans.push(s.bans.ban(selected[at] as number));
      }
      return { bans, total, all: s.bans.length, offset, limit, sort, order, stale: dirty };
    },
  };
}
