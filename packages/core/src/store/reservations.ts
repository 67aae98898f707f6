/**
 * Open reservations per key (jail and client): attempts admitted to a jail's routes and not yet
 * settled. Each expires at its own deadline, so an attempt that is never settled (a crash between
 * admission and answer) stops holding its slot. Expired entries are dropped when their key is
 * touched and on the sweep: no timer per entry.
 */
export class ReservationTable {
  readonly #byKey = new Map<string, Map<string, number>>();

  /** Open reservations of `key` at `now` (expired ones dropped). */
  open(key: string, now: number): number {
    const held = this.#byKey.get(key);
    if (held === undefined) return 0;
    for (const [id, until] of held) if (until <= now) held.delete(id);
    if (held.size === 0) this.#byKey.delete(key);
    return held.size;
  }

  add(key: string, id: string, untilMs: number): void {
    let held = this.#byKey.get(key);
    if (held === undefined) {
      held = new Map();
      this.#byKey.set(key, held);
    }
    held.set(id, untilMs);
  }

  /** Frees a reservation; false when it was not open (settled already, or expired and dropped). */
  remove(key: string, id: string): boolean {
    const held = this.#byKey.get(key);
    if (held === undefined || !held.delete(id)) return false;
    if (held.size === 0) this.#byKey.delete(key);
    return true;
  }

  /** Drops every reservation of `key` (an unban clears the client's slate). */
  clear(key: string): void {
    this.#byKey.delete(key);
  }

  sweep(now: number): void {
    for (const key of this.#byKey.keys()) this.open(key, now);
  }

  /** Keys with open reservations, for tests and metrics. */
  get size(): number {
    return this.#byKey.size;
  }
}
