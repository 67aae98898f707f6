import { setImmediate as nextTurn } from 'node:timers/promises';

/** Values sorted natively per run between two yields to the event loop. */
const RUN = 65_536;
/** Values handled (or merge steps) between two yields. */
const SLICE = 131_072;

/**
 * The indices 0..n-1 ordered by `keys` (ascending, ties by index), yielding to the event loop
 * between steps so a million keys never hold it for long. Each key and its index are packed into
 * one float (key rank in the high bits, index in the low ones), so runs sort with the engine's
 * native numeric sort and merge with plain comparisons. Keys whose range does not fit in the
 * float beside the index are first replaced by their rank (a rare case: ban times span weeks).
 */
export async function sortByKeys(input: Float64Array): Promise<Uint32Array> {
  let keys = input;
  const n = keys.length;
  const indexBits = Math.max(1, Math.ceil(Math.log2(n + 1)));
  const room = 2 ** (53 - indexBits);
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const k = keys[i] as number;
    if (k < min) min = k;
    if (k > max) max = k;
    if ((i & (SLICE - 1)) === SLICE - 1) await nextTurn();
  }
  if (max - min >= room) {
    keys = await rankOf(keys);
    min = 0;
  }
  const shift = 2 ** indexBits;
  const packed = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    packed[i] = ((keys[i] as number) - min) * shift + i;
    if ((i & (SLICE - 1)) === SLICE - 1) await nextTurn();
  }
  const sorted = await sortInPlace(packed);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    order[i] = (sorted[i] as number) % shift;
    if ((i & (SLICE - 1)) === SLICE - 1) await nextTurn();
  }
  return order;
}

/**
 * Sorts numbers ascending: runs of RUN sorted natively, then merged pairwise, a turn of the event
 * loop between steps. Returns the sorted array (the input or its twin).
 */
async function sortInPlace(values: Float64Array<ArrayBuffer>): Promise<Float64Array<ArrayBuffer>> {
  const n = values.length;
  let from = values;
  for (let start = 0; start < n; start += RUN) {
    from.subarray(start, Math.min(n, start + RUN)).sort();
    if (n > RUN) await nextTurn();
  }
  if (n <= RUN) return from;
  let to = new Float64Array(n);
  let work = 0;
  for (let width = RUN; width < n; width *= 2) {
    for (let left = 0; left < n; left += 2 * width) {
      const mid = Math.min(n, left + width);
      const right = Math.min(n, left + 2 * width);
      let i = left;
      let j = mid;
      let k = left;
      while (i < mid && j < right) {
        const a = from[i] as number;
        const b = from[j] as number;
        if (b < a) {
          to[k++] = b;
          j++;
        } else {
          to[k++] = a;
          i++;
        }
        if ((++work & (SLICE - 1)) === 0) await nextTurn();
      }
      while (i < mid) to[k++] = from[i++] as number;
      while (j < right) to[k++] = from[j++] as number;
    }
    [from, to] = [to, from];
  }
  return from;
}

/**
 * Sorts indices by a comparison (strings, say) the same way, a turn of the event loop between
 * runs and merge steps: 500,000 IPv6 clients sorted with one `Array.prototype.sort` held the loop
 * for about a second.
 */
export async function sortIndices(
  indices: number[],
  compare: (a: number, b: number) => number,
): Promise<number[]> {
  const n = indices.length;
  const run = 2048;
  for (let start = 0; start < n; start += run) {
    const part = indices.slice(start, start + run).sort(compare);
    for (let k = 0; k < part.length; k++) indices[start + k] = part[k] as number;
    if (n > run) await nextTurn();
  }
  let from = indices;
  let to: number[] = new Array(n);
  let work = 0;
  for (let width = run; width < n; width *= 2) {
    for (let left = 0; left < n; left += 2 * width) {
      const mid = Math.min(n, left + width);
      const right = Math.min(n, left + 2 * width);
      let i = left;
      let j = mid;
      let k = left;
      while (i < mid && j < right) {
        if (compare(from[j] as number, from[i] as number) < 0) to[k++] = from[j++] as number;
        else to[k++] = from[i++] as number;
        if ((++work & 16_383) === 0) await nextTurn();
      }
      while (i < mid) to[k++] = from[i++] as number;
      while (j < right) to[k++] = from[j++] as number;
    }
    [from, to] = [to, from];
  }
  return from;
}

/** Each key's rank among the distinct keys: the same order in a range small enough to pack. */
async function rankOf(keys: Float64Array): Promise<Float64Array> {
  const sorted = await sortInPlace(Float64Array.from(keys));
  let distinct = 0;
  for (let i = 0; i < sorted.length; i++)
    if (i === 0 || sorted[i] !== sorted[distinct - 1]) sorted[distinct++] = sorted[i] as number;
  const ranks = new Float64Array(keys.length);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as number;
    let lo = 0;
    let hi = distinct - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((sorted[mid] as number) < key) lo = mid + 1;
      else hi = mid;
    }
    ranks[i] = lo;
    if ((i & 0xffff) === 0xffff) await nextTurn();
  }
  return ranks;
}
