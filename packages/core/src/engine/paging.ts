import type { Ban, BanPage, Store } from '../store/store.js';

/** How much work runs between two turns of the event loop while walking or sorting bans. */
const SLICE = 2000;
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * A page of the store's active bans. A store without `bansPage` (a third-party one) is read whole
 * and sliced, the cursor being an offset.
 */
export async function storePage(
  store: Store,
  query: { jail?: string; after?: string; limit: number },
): Promise<BanPage> {
  // A turn of the event loop before each page: a store that answers at once (the memory store)
  // would otherwise let a caller's `do { await bansPage() } while (next)` walk a million bans in
  // one run of microtasks, the loop held for seconds.
  await turn();
  if (store.bansPage !== undefined) return store.bansPage(query);
  const all = await store.bans(query.jail);
  const from = query.after === undefined ? 0 : Number(query.after) || 0;
  const to = from + query.limit;
  return to < all.length ? { bans: all.slice(from, to), next: String(to) } : { bans: all.slice(from) };
}

/** Every active ban of the store, read (and mapped) a page at a time. */
export async function allBans<T>(store: Store, jail: string | undefined, map: (ban: Ban) => T): Promise<T[]> {
  if (store.bansPage === undefined) return (await store.bans(jail)).map(map);
  const out: T[] = [];
  let after: string | undefined;
  do {
    const page = await store.bansPage({ jail, after, limit: SLICE });
    for (const ban of page.bans) out.push(map(ban));
    after = page.next;
    if (after !== undefined) await turn();
  } while (after !== undefined);
  return out;
}

/**
 * Sorts without blocking the event loop for long: runs of SLICE items are sorted, then merged
 * pairwise, yielding between slices. A million bans sort in about a second of slices, none long.
 */
export async function sortInSlices<T>(items: T[], compare: (a: T, b: T) => number): Promise<T[]> {
  if (items.length <= SLICE) return items.sort(compare);
  let runs: T[][] = [];
  for (let i = 0; i < items.length; i += SLICE) {
    runs.push(items.slice(i, i + SLICE).sort(compare));
    await turn();
  }
  while (runs.length > 1) {
    const merged: T[][] = [];
    for (let i = 0; i < runs.length; i += 2) {
      const a = runs[i] as T[];
      const b = runs[i + 1];
      merged.push(b === undefined ? a : await merge(a, b, compare));
    }
    runs = merged;
  }
  return runs[0] as T[];
}

async function merge<T>(a: T[], b: T[], compare: (x: T, y: T) => number): Promise<T[]> {
  const out: T[] = new Array(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length || j < b.length) {
    const stop = Math.min(out.length, k + SLICE * 4);
    for (; k < stop; k++) {
      if (j >= b.length || (i < a.length && compare(a[i] as T, b[j] as T) <= 0)) out[k] = a[i++] as T;
      else out[k] = b[j++] as T;
    }
    if (k < out.length) await turn();
  }
  return out;
}
