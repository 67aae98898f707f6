/** The open reservations of one key: ids and their deadlines, side by side (usually one or two). */
interface Held {
  readonly ids: string[];
  readonly until: number[];
}

/**
 * Open reservations per key (jail and client): attempts admitted to a jail's routes and not yet
 * settled. Each expires at its own deadline, so an attempt that is never settled (a crash between
 * admission and answer) stops holding its slot. Expired entries are dropped when their key is
 * touched and on the sweep: no timer per entry.
 *
 * A key holds its reservations in two small arrays, kept while empty until the next sweep: a
 * client's attempts one after another reuse them instead of allocating a Map per attempt.
 */
export class ReservationTable {
  readonly #byKey = new Map<string, Held>();

  /** Open reservations of `key` at `now` (expired ones dropped). */
  open(key: string, now: number): number {
    const held = this.#byKey.get(key);
    if (held === undefined) return 0;
    const { ids, until } = held;
    for (let i = ids.length - 1; i >= 0; i--) {
      if ((until[i] as number) <= now) drop(held, i);
    }
    return ids.length;
  }

  add(key: string, id: string, untilMs: number): void {
    let held = this.#byKey.get(key);
    if (held === undefined) {
      held = { ids: [], until: [] };
      this.#byKey.set(key, held);
    }
    held.ids.push(id);
    held.until.push(untilMs);
  }

  /** Frees a reservation; false when it was not open (settled already, or expired and dropped). */
  remove(key: string, id: string): boolean {
    const held = this.#byKey.get(key);
    if (held === undefined) return false;
    const i = held.ids.indexOf(id);
    if (i < 0) return false;
    drop(held, i);
    return true;
  }

  /** Drops every reservation of `key` (an unban clears the client's slate). */
  clear(key: string): void {
    this.#byKey.delete(key);
  }

  /** Drops expired reservations, and the keys left with none. */
  sweep(now: number): void {
    for (const key of this.#byKey.keys()) if (this.open(key, now) === 0) this.#byKey.delete(key);
  }

  /** Keys with open reservations, for tests and metrics. */
  get size(): number {
    let size = 0;
    for (const held of this.#byKey.values()) if (held.ids.length > 0) size++;
    return size;
  }
}

/** Removes entry `i` by moving the last one into its place (order does not matter). */
function drop(held: Held, i: number): void {
  const last = held.ids.length - 1;
  if (i !== last) {
    held.ids[i] = held.ids[last] as string;
    held.until[i] = held.until[last] as number;
  }
  held.ids.pop();
  held.until.pop();
}
