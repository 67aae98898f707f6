import type { HistoryEntry } from './ban-history.js';
import { quarantine, readSnapshot, removeStaleTemporaries } from './persist.js';
import type { Ban, StoreContext } from './store.js';

/** Where a restored snapshot's parts go. */
export interface RestoreSinks {
  ban(ban: Ban): void;
  history(client: string, entry: HistoryEntry): void;
  pardon(jail: string, client: string, untilMs: number): void;
}

/**
 * Loads the memory store's snapshot at start, reporting each ban through `ctx.onBan`. Temporary
 * files a crashed writer left are removed first. A corrupted file is moved aside and reported; a
 * malformed entry is skipped and counted, one by one; a file that cannot be read (permissions, a
 * directory) is reported as unreadable and left in place. Returns false in that last case: the
 * store must not write over a file it could not read.
 */
export function restoreSnapshot(file: string, ctx: StoreContext, sinks: RestoreSinks): boolean {
  const now = ctx.clock.now();
  removeStaleTemporaries(file);
  const loaded = readSnapshot(file);
  if (loaded.state === 'none') return true;
  if (loaded.state === 'unreadable') {
    ctx.warn(
      'JK_WRN_PERSIST_UNREADABLE',
      `The ban snapshot ${file} exists but cannot be read (${loaded.error.message}); jailkeeper starts without it, leaves it in place and does not write over it. Fix its permissions, then restart.`,
      { file },
    );
    return false;
  }
  if (loaded.state === 'corrupt') {
    const movedTo = quarantine(file, now);
    ctx.warn(
      'JK_WRN_PERSIST_CORRUPT',
      `The ban snapshot ${file} is not a jailkeeper snapshot (${loaded.error.message}); starting without it${movedTo ? `, and it was moved to ${movedTo}` : ''}.`,
      { file },
    );
    return true;
  }
  if (loaded.dropped > 0) {
    ctx.warn(
      'JK_WRN_PERSIST_CORRUPT',
      `The ban snapshot ${file} held ${loaded.dropped} malformed ${loaded.dropped === 1 ? 'entry' : 'entries'}; ${loaded.dropped === 1 ? 'it was' : 'they were'} skipped, the rest restored.`,
      { file, dropped: loaded.dropped },
    );
  }
  const { bans, history, pardons } = loaded.snapshot;
  const active = bans.filter((ban) => ban.endMs > now && !ctx.isIgnored(ban.client));
  // Version 1 counted the active bans in the history too; now an active ban is its own history.
  const held = new Map<string, number>();
  if (loaded.version === 1) for (const ban of active) held.set(ban.client, (held.get(ban.client) ?? 0) + 1);
  for (const h of history) {
    if (h.expiresMs <= now) continue;
    sinks.history(h.client, {
      jails: h.jails,
      total: Math.max(0, h.total - (held.get(h.client) ?? 0)),
      expiresMs: h.expiresMs,
    });
  }
  for (const p of pardons) if (p.untilMs > now) sinks.pardon(p.jail, p.client, p.untilMs);
  for (const ban of active) {
    sinks.ban(ban);
    ctx.onBan(ban, 'restored');
  }
  return true;
}
