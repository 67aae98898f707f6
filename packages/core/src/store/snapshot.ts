import type { HistoryEntry } from './ban-history.js';
import type { Ban } from './store.js';

/**
 * The memory store's snapshot format (JSON). Times are epoch ms; `null` end means permanent (JSON
 * has no Infinity). Version 2 keeps in `history` only what ended bans left (an active ban is its
 * own history); version 1 files, whose history also counted the active bans, are read too.
 */
export interface Snapshot {
  readonly bans: Ban[];
  readonly history: HistoryRecord[];
  readonly pardons: PardonRecord[];
  /** Failure counters inside their window (absent from files written before issue 26). */
  readonly failures: FailureRecord[];
}

/** A failure counter: its failure times (oldest first) and the window they count in. */
export interface FailureRecord {
  readonly jail: string;
  readonly client: string;
  readonly findTimeMs: number;
  readonly times: number[];
}

/** What one part of a snapshot held, and what of it could not be read. */
export interface SectionLoss {
  readonly section: 'bans' | 'history' | 'pardons' | 'failures';
  /** Entries skipped; for a part that is not a list, what it held is unknown (`all`). */
  readonly dropped: number | 'all';
  /** Entries the part held, malformed ones included (0 for a part that is not a list). */
  readonly of: number;
}

interface HistoryRecord extends Readonly<HistoryEntry> {
  readonly client: string;
}

interface PardonRecord {
  readonly jail: string;
  readonly client: string;
  readonly untilMs: number;
}

/** What a snapshot's parts are read from while it is written. */
export interface SnapshotSource {
  bans(): Iterable<Ban>;
  history(): Iterable<HistoryRecord>;
  pardons(): Iterable<PardonRecord>;
  failures(): Iterable<FailureRecord>;
}

const VERSION = 2;
/** Entries per chunk of text: a chunk is built between two writes, without blocking for long. */
const CHUNK = 2000;

function encodeTime(ms: number): number | null {
  return ms === Number.POSITIVE_INFINITY ? null : ms;
}

function decodeTime(value: unknown): number | undefined {
  if (value === null) return Number.POSITIVE_INFINITY;
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/**
 * The snapshot as chunks of JSON text, built as they are asked for: a writer awaits each chunk's
 * write before asking for the next, so a million bans never block the event loop at once.
 */
export function* serializeChunks(source: SnapshotSource, savedAtMs: number): Generator<string> {
  yield `{"version":${VERSION},"savedAt":${savedAtMs},"bans":[`;
  yield* list(source.bans(), (b) => JSON.stringify({ ...b, endMs: encodeTime(b.endMs) }));
  yield '],"history":[';
  yield* list(source.history(), (h) => JSON.stringify({ ...h, expiresMs: encodeTime(h.expiresMs) }));
  yield '],"pardons":[';
  yield* list(source.pardons(), (p) => JSON.stringify(p));
  yield '],"failures":[';
  yield* list(source.failures(), (f) => JSON.stringify(f));
  yield ']}';
}

function* list<T>(items: Iterable<T>, encode: (item: T) => string): Generator<string> {
  let parts: string[] = [];
  let first = true;
  for (const item of items) {
    parts.push(encode(item));
    if (parts.length === CHUNK) {
      yield (first ? '' : ',') + parts.join(',');
      first = false;
      parts = [];
    }
  }
  if (parts.length > 0) yield (first ? '' : ',') + parts.join(',');
}

const isName = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 128;
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

function banOf(b: Record<string, unknown>): Ban | undefined {
  const endMs = decodeTime(b.endMs);
  if (!isName(b.jail) || !isName(b.client) || typeof b.startMs !== 'number') return undefined;
  if (endMs === undefined || !isCount(b.banCount)) return undefined;
  return {
    jail: b.jail,
    client: b.client,
    startMs: b.startMs,
    endMs,
    banCount: b.banCount,
    reason: typeof b.reason === 'string' ? b.reason : '',
    manual: b.manual === true,
  };
}

function historyOf(h: Record<string, unknown>): HistoryRecord | undefined {
  const expiresMs = decodeTime(h.expiresMs);
  if (!isName(h.client) || !isCount(h.total) || expiresMs === undefined) return undefined;
  if (typeof h.jails !== 'object' || h.jails === null || Array.isArray(h.jails)) return undefined;
  const jails: Record<string, number> = {};
  for (const [jail, count] of Object.entries(h.jails)) if (isCount(count)) jails[jail] = count;
  return { client: h.client, jails, total: h.total, expiresMs };
}

function pardonOf(p: Record<string, unknown>): PardonRecord | undefined {
  if (!isName(p.jail) || !isName(p.client) || typeof p.untilMs !== 'number') return undefined;
  return { jail: p.jail, client: p.client, untilMs: p.untilMs };
}

function failureOf(f: Record<string, unknown>): FailureRecord | undefined {
  if (!isName(f.jail) || !isName(f.client) || !Array.isArray(f.times)) return undefined;
  if (typeof f.findTimeMs !== 'number' || !(f.findTimeMs > 0) || f.times.length > 1000) return undefined;
  const times = f.times.filter((t): t is number => typeof t === 'number' && Number.isFinite(t));
  if (times.length !== f.times.length) return undefined;
  return { jail: f.jail, client: f.client, findTimeMs: f.findTimeMs, times: times.sort((a, b) => a - b) };
}

/**
 * Parses a snapshot. The file as a whole must be JSON of a known version (else it throws: the
 * caller quarantines it); each entry of the wrong shape is skipped and counted, one by one, and
 * a part that is not a list is lost whole: `losses` says which, and how much.
 */
export function deserialize(text: string): {
  snapshot: Snapshot;
  dropped: number;
  losses: SectionLoss[];
  version: number;
} {
  const data = JSON.parse(text) as Record<string, unknown>;
  if (typeof data !== 'object' || data === null || (data.version !== 1 && data.version !== VERSION)) {
    throw new Error(`unknown snapshot version ${JSON.stringify((data as { version?: unknown })?.version)}`);
  }
  let dropped = 0;
  const losses: SectionLoss[] = [];
  const read = <T>(
    section: SectionLoss['section'],
    value: unknown,
    parse: (item: Record<string, unknown>) => T | undefined,
  ): T[] => {
    if (value === undefined) return [];
    if (!Array.isArray(value)) {
      dropped++;
      losses.push({ section, dropped: 'all', of: 0 });
      return [];
    }
    const out: T[] = [];
    let skipped = 0;
    for (const item of value) {
      const parsed =
        typeof item === 'object' && item !== null ? parse(item as Record<string, unknown>) : undefined;
      if (parsed === undefined) skipped++;
      else out.push(parsed);
    }
    if (skipped > 0) {
      dropped += skipped;
      losses.push({ section, dropped: skipped, of: value.length });
    }
    return out;
  };
  const snapshot = {
    bans: read('bans', data.bans, banOf),
    history: read('history', data.history, historyOf),
    pardons: read('pardons', data.pardons, pardonOf),
    failures: read('failures', data.failures, failureOf),
  };
  return { snapshot, dropped, losses, version: data.version as number };
}
