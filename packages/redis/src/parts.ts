import type { BanSync } from './ban-sync.js';
import type { Lines } from './commands.js';
import type { Fallback } from './fallback.js';
import type { Keys } from './keys.js';
import type { Link } from './link.js';
import type { ShardIO } from './shard-io.js';

/** What the store's modules share: built once by the store. */
export interface Parts {
  /** The hot path's connection and the bulk one (see Lines). */
  readonly lines: Lines;
  readonly keys: Keys;
  readonly link: Link;
  readonly io: ShardIO;
  readonly sync: BanSync;
  readonly fallback: Fallback;
  /** This instance, in its announcements: its own echo is not a remote ban. */
  readonly origin: string;
  readonly onStoreError: 'local' | 'allow' | 'deny';
  /** The deadline of loads, reconciles and operators' calls (longer than the hot path's). */
  readonly bulkMs: number;
  /** This instance's totals per jail (status()). */
  readonly totals: Map<string, { failed: number; banned: number }>;
}

/** The totals of a jail, created at zero. */
export function totalsOf(parts: Parts, jail: string): { failed: number; banned: number } {
  let totals = parts.totals.get(jail);
  if (!totals) {
    totals = { failed: 0, banned: 0 };
    parts.totals.set(jail, totals);
  }
  return totals;
}
