import type { Admitter } from './admission.js';
import type { InFlight } from './in-flight.js';

/**
 * What the adapter toolkit reaches inside a keeper: its admission and its bookkeeping of what is
 * under way. Kept in a module-private table, not on the keeper, so that no public entry point
 * (and no symbol on the object) exposes them: `@jailkeeper/core/adapter` reads them through
 * `internalsOf()`, and nothing else imports this module.
 */
export interface KeeperInternals {
  readonly admitter: Admitter;
  readonly flight: InFlight;
}

const table = new WeakMap<object, KeeperInternals>();

/** Called once by the keeper's constructor. */
export function registerInternals(keeper: object, internals: KeeperInternals): void {
  table.set(keeper, internals);
}

/** The internals of a keeper made by `createJailkeeper()`; undefined for anything else. */
export function internalsOf(keeper: object): KeeperInternals | undefined {
  return table.get(keeper);
}
