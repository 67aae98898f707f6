import type { HistoryEntry } from './ban-history.js';
import {
  quarantine,
  type ReadResult,
  readSnapshot,
  readSnapshotInSlices,
  removeStaleTemporaries,
  SYNC_RESTORE_BYTES,
  sizeOf,
} from './persist.js';
import type { SectionLoss, SnapshotSink } from './snapshot.js';
import type { Ban, StoreContext } from './store.js';

/** Where a restored snapshot's parts go. */
export interface RestoreSinks {
  ban(ban: Ban): void;
  history(client: string, entry: HistoryEntry): void;
  pardon(jail: string, client: string, untilMs: number): void;
  /** A failure counter's times still inside its window (oldest first), and the window. */
  failures(jail: string, client: string, times: number[], findTimeMs: number): void;
}

const NAMES = {
  bans: ['ban', 'bans'],
  history: ['history entry', 'history entries'],
  pardons: ['pardon', 'pardons'],
  failures: ['failure counter', 'failure counters'],
} as const;

/** "3 of 100,000 bans", "every ban (the part is not a list)". */
function lossText(loss: SectionLoss): string {
  const [one, many] = NAMES[loss.section];
  if (loss.why === 'cut short') {
    return loss.dropped === 'all'
      ? `every ${one} (the file ends before its "${loss.section}")`
      : `the ${many} after the first ${(loss.of - loss.dropped).toLocaleString('en')} (the file is cut short inside its "${loss.section}")`;
  }
  if (loss.dropped === 'all') return `every ${one} (its "${loss.section}" is not a list)`;
  return `${loss.dropped.toLocaleString('en')} of ${loss.of.toLocaleString('en')} ${loss.of === 1 ? one : many}`;
}

/**
 * Loads the memory store's snapshot at start, reporting each ban through `ctx.onBan`. Temporary
 * files a crashed writer left are removed first. A corrupted file is moved aside and reported; so
 * is a readable one that cannot be restored whole (malformed entries, a part that is not a list):
 * what it held is restored, and the warning counts what was lost; a file that cannot be read (permissions, a
 * directory) is reported as unreadable and left in place. Returns false in that last case: the
 * store must not write over a file it could not read.
 */
export function restoreSnapshot(
  file: string,
  ctx: StoreContext,
  sinks: RestoreSinks,
): boolean | Promise<boolean> {
  removeStaleTemporaries(file);
  const size = sizeOf(file);
  if (size !== undefined && size > SYNC_RESTORE_BYTES) return restoreInSlices(file, ctx, sinks);
  const steps = apply(file, readSnapshot(file), ctx, sinks);
  for (let step = steps.next(); ; step = steps.next()) if (step.done === true) return step.value;
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
/**
 * A whole turn of the event loop, timers and I/O included: a slice that ends in an I/O callback
 * (a line read) and yields once resumes in the same turn's check phase, before any timer or
 * socket is served. A second setImmediate, queued from the check phase, waits for the next turn.
 */
const wholeTurn = async () => {
  await turn();
  await turn();
};

/**
 * A large snapshot: each entry is restored as its line is read (a version 3 file), in slices with
 * turns of the event loop between them, so that a million bans are never a list of a million
 * objects kept until the end (their collection paused the loop). The store's own table takes a
 * slice's bans in the slice, the engine's index (`ctx.onBan`) after the next turn: both tables
 * grow their client Map at the same size, and a Map rehashes whole when it grows (about 30 ms at
 * 524,288 clients on a quiet machine), so the two rehashes never fall in one slice. An older file
 * (one line of JSON) is read whole, then restored a slice at a time.
 */
async function restoreInSlices(file: string, ctx: StoreContext, sinks: RestoreSinks): Promise<boolean> {
  const now = ctx.clock.now();
  let pending: Ban[] = [];
  const announce = () => {
    const bans = pending;
    pending = [];
    for (const ban of bans) ctx.onBan(ban, 'restored');
  };
  let restored = 0;
  const sink: SnapshotSink = (section, entry) => {
    restored++;
    switch (section) {
      case 'bans': {
        const ban = entry as Ban;
        if (ban.endMs <= now || ctx.isIgnored(ban.client)) return;
        sinks.ban(ban);
        pending.push(ban);
        return;
      }
      case 'history': {
        const h = entry as HistoryEntry & { client: string };
        if (h.expiresMs > now)
          sinks.history(h.client, { jails: h.jails, total: h.total, expiresMs: h.expiresMs });
        return;
      }
      case 'pardons': {
        const p = entry as { jail: string; client: string; untilMs: number };
        if (p.untilMs > now) sinks.pardon(p.jail, p.client, p.untilMs);
        return;
      }
      case 'failures':
        restoreFailures(entry as FailureEntry, now, ctx, sinks);
        return;
    }
  };
  const loaded = await readSnapshotInSlices(file, {
    sink,
    async between() {
      await wholeTurn();
      if (pending.length > 0) {
        announce();
        await wholeTurn();
      }
    },
  });
  announce();
  if (loaded.state === 'unreadable' && restored > 0) {
    // A read error part way: what came before it is in, and the file is left alone.
    ctx.warn(
      'JK_WRN_PERSIST_UNREADABLE',
      `The ban snapshot ${file} could not be read to its end (${loaded.error.message}); ${restored.toLocaleString('en')} entries before the error were restored. The file is left in place and not written over. Fix it, then restart.`,
      { file },
    );
    return false;
  }
  if (loaded.state !== 'read' || loaded.read === undefined) {
    // Not streamed: an older file read whole (restored here a slice at a time), or a file that
    // could not be read or parsed (nothing was restored from it: reported by apply).
    const steps = apply(file, loaded, ctx, sinks);
    for (let step = steps.next(); ; step = steps.next()) {
      if (step.done === true) return step.value;
      await turn();
    }
  }
  if (loaded.losses.length > 0) reportLosses(file, loaded, loaded.read, now, ctx);
  return true;
}

interface FailureEntry {
  readonly jail: string;
  readonly client: string;
  readonly findTimeMs: number;
  readonly times: number[];
}

/** A restart does not renew an attacker's budget: counts inside their window come back. */
function restoreFailures(f: FailureEntry, now: number, ctx: StoreContext, sinks: RestoreSinks): void {
  const since = now - f.findTimeMs;
  const times = f.times.filter((t) => t > since && t <= now);
  if (times.length > 0 && !ctx.isIgnored(f.client)) sinks.failures(f.jail, f.client, times, f.findTimeMs);
}

/**
 * Not restorable whole: the file is kept aside as evidence (the next snapshot is written from
 * what was restored), and the warning says what was lost, part by part.
 */
function reportLosses(
  file: string,
  loaded: Extract<ReadResult, { state: 'read' }>,
  read: { bans: number; history: number; pardons: number; failures: number },
  now: number,
  ctx: StoreContext,
): void {
  const movedTo = quarantine(file, now);
  ctx.warn(
    'JK_WRN_PERSIST_CORRUPT',
    `The ban snapshot ${file} could not be restored whole: lost ${loaded.losses.map(lossText).join(', ')}. Restored ${read.bans.toLocaleString('en')} bans, ${read.history.toLocaleString('en')} history entries, ${read.pardons.toLocaleString('en')} pardons and ${read.failures.toLocaleString('en')} failure counters${movedTo ? `; the file was moved to ${movedTo}` : ''}.`,
    { file, dropped: loaded.dropped, losses: loaded.losses, movedTo },
  );
}

/** Entries restored between two turns of the event loop (a large snapshot's restore). */
const RESTORE_SLICE = 2000;

/**
 * Restores what was read: yields every RESTORE_SLICE entries, so that a large snapshot is applied
 * a slice at a time (a small one runs through at once). Returns whether the file may be written.
 */
function* apply(
  file: string,
  loaded: ReadResult,
  ctx: StoreContext,
  sinks: RestoreSinks,
): Generator<void, boolean> {
  const now = ctx.clock.now();
  let work = 0;
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
  const { bans, history, pardons, failures } = loaded.snapshot;
  if (loaded.losses.length > 0) {
    const read = {
      bans: bans.length,
      history: history.length,
      pardons: pardons.length,
      failures: failures.length,
    };
    reportLosses(file, loaded, read, now, ctx);
  }
  // Whether a ban is active and not ignored is asked in the sliced loop below: the ignore list's
  // test parses the client key, which over a million bans held the loop 0.77 s in one go.
  const live = (ban: Ban) => ban.endMs > now && !ctx.isIgnored(ban.client);
  const active = loaded.version === 1 ? bans.filter(live) : bans;
  // Version 1 counted the active bans in the history too; now an active ban is its own history.
  const held = new Map<string, number>();
  if (loaded.version === 1) for (const ban of active) held.set(ban.client, (held.get(ban.client) ?? 0) + 1);
  for (const h of history) {
    if (++work % RESTORE_SLICE === 0) yield;
    if (h.expiresMs <= now) continue;
    sinks.history(h.client, {
      jails: h.jails,
      total: Math.max(0, h.total - (held.get(h.client) ?? 0)),
      expiresMs: h.expiresMs,
    });
  }
  for (const p of pardons) {
    if (++work % RESTORE_SLICE === 0) yield;
    if (p.untilMs > now) sinks.pardon(p.jail, p.client, p.untilMs);
  }
  for (const f of failures) {
    if (++work % RESTORE_SLICE === 0) yield;
    restoreFailures(f, now, ctx, sinks);
  }
  for (const ban of active) {
    if (++work % RESTORE_SLICE === 0) yield;
    if (loaded.version !== 1 && !live(ban)) continue;
    sinks.ban(ban);
    ctx.onBan(ban, 'restored');
  }
  return true;
}
