import type { ResolvedJail } from './options.js';

/**
 * The slots an admitted request holds, one per jail, settled once when its response closes
 * (`keeper.observe()` with `slots`). Adapters keep it with the response and hand it back.
 */
export class Slots {
  /** @internal */
  readonly jails: readonly ResolvedJail[];
  /** @internal */
  readonly ids: readonly string[];
  /** @internal the client key each slot is held under (the address's, or an account's) */
  readonly keys: readonly string[];
  /**
   * @internal per slot, the attempts its client had left in the jail when it was reserved, this
   * one counted as a failure (threshold − failures − attempts in flight); what the store's
   * reservation answered, so the RateLimit header fields cost no extra round trip
   */
  readonly left: readonly number[];
  /** @internal set once settled, so a slot is never settled twice */
  settled = false;

  /** @internal */
  constructor(
    jails: readonly ResolvedJail[],
    ids: readonly string[],
    keys: readonly string[],
    left: readonly number[] = [],
  ) {
    this.jails = jails;
    this.ids = ids;
    this.keys = keys;
    this.left = left;
  }
}

/** The slots of two admissions of one request (before routing, then at the route), as one. */
export function mergeSlots(a: Slots | null, b: Slots | null): Slots | null {
  if (a === null) return b;
  if (b === null) return a;
  return new Slots(
    [...a.jails, ...b.jails],
    [...a.ids, ...b.ids],
    [...a.keys, ...b.keys],
    [...a.left, ...b.left],
  );
}

/** The targets a request does not hold a slot in yet. */
export function notHeld<T>(targets: readonly T[], held: Slots | null): readonly T[] {
  if (held === null || targets.length === 0) return targets;
  return targets.filter((jail) => !(held.jails as readonly unknown[]).includes(jail));
}
