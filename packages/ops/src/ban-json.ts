import type { BanInfo } from '@jailkeeper/core';
import type { Ban } from '@jailkeeper/core/store';

/** A ban as the admin API and the CLI write it: JSON has no Infinity, so a permanent ban's end is null. */
export interface BanJson {
  readonly jail: string;
  readonly client: string;
  readonly startMs: number;
  /** null for a permanent ban. */
  readonly endMs: number | null;
  /** Milliseconds left (null for a permanent ban); present when the ban came with its time left. */
  readonly timeLeftMs?: number | null;
  readonly banCount: number;
  readonly reason: string;
  readonly manual: boolean;
  readonly permanent: boolean;
  /** `'jail'` for a ban refused only on its jail's routes; present when known. */
  readonly scope?: 'app' | 'jail';
}

/**
 * A ban (or a ban with its time left) as JSON: see {@link BanJson}. Written out field by field,
 * not spread: a million of these make `GET /bans/stream`, one object each.
 */
export function banJson(ban: Ban | BanInfo): BanJson {
  const permanent = ban.endMs === Number.POSITIVE_INFINITY;
  const endMs = permanent ? null : ban.endMs;
  const { jail, client, startMs, banCount, reason, manual } = ban;
  if (!('timeLeftMs' in ban)) return { jail, client, startMs, endMs, banCount, reason, manual, permanent };
  const timeLeftMs = permanent ? null : ban.timeLeftMs;
  if (!('scope' in ban)) {
    return { jail, client, startMs, endMs, banCount, reason, manual, timeLeftMs, permanent };
  }
  return { jail, client, startMs, endMs, banCount, reason, manual, timeLeftMs, scope: ban.scope, permanent };
}
