import type { HistoryEntry } from './ban-history.js';
import type { Ban } from './store.js';

/**
 * The memory store's snapshot format (JSON). Times are epoch ms; `null` end means permanent (JSON
 * has no Infinity). Version 2 keeps in `history` only what ended bans left (an active ban is its
 * own history); version 1 files, whose history also counted the active bans, are read too.
 * Version 3 is version 2 with one entry a line, and the failure counters.
 */
export interface Snapshot {
  readonly bans: Ban[];
  readonly history: HistoryRecord[];
  readonly pardons: PardonRecord[];
  /** Failure counters inside their window (absent from files written before issue 26). */
  readonly failures: FailureRecord[];
}

/** A failure counter: its failure times (oldest first) and the window they count in. */
interface FailureRecord {
  readonly jail: string;
  readonly client: string;
  readonly findTimeMs: number;
  readonly times: number[];
}

/** What one part of a snapshot held, and what of it could not be read. */
export interface SectionLoss {
  readonly section: 'bans' | 'history' | 'pardons' | 'failures';
  /**
   * Entries skipped; `all` for a part that is not a list, and for the parts a file cut short
   * never reached (what they held is unknown).
   */
  readonly dropped: number | 'all';
  /** Why a part was lost whole. */
  readonly why?: 'not a list' | 'cut short';
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

const VERSION = 3;
/** The parts of a snapshot, in the order they are written. */
const SECTIONS = ['bans', 'history', 'pardons', 'failures'] as const;
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
 * Version 3 is JSON with one entry a line, so that a large file is also read a line at a time
 * (see {@link SnapshotLineReader}), and a file cut short is told apart from a whole one: its
 * last line is `]}`.
 */
export function* serializeChunks(source: SnapshotSource, savedAtMs: number): Generator<string> {
  yield `{"version":${VERSION},"savedAt":${savedAtMs},\n"bans":[`;
  yield* list(source.bans(), (b) => JSON.stringify({ ...b, endMs: encodeTime(b.endMs) }));
  yield '],\n"history":[';
  yield* list(source.history(), (h) => JSON.stringify({ ...h, expiresMs: encodeTime(h.expiresMs) }));
  yield '],\n"pardons":[';
  yield* list(source.pardons(), (p) => JSON.stringify(p));
  yield '],\n"failures":[';
  yield* list(source.failures(), (f) => JSON.stringify(f));
  yield ']}\n';
}

function* list<T>(items: Iterable<T>, encode: (item: T) => string): Generator<string> {
  let parts: string[] = [];
  let first = true;
  for (const item of items) {
    parts.push(encode(item));
    if (parts.length === CHUNK) {
      yield `${first ? '\n' : ',\n'}${parts.join(',\n')}`;
      first = false;
      parts = [];
    }
  }
  if (parts.length > 0) yield `${first ? '\n' : ',\n'}${parts.join(',\n')}`;
  yield '\n';
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
  if (
    typeof data !== 'object' ||
    data === null ||
    (data.version !== 1 && data.version !== 2 && data.version !== VERSION)
  ) {
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
      losses.push({ section, dropped: 'all', why: 'not a list', of: 0 });
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

/** An entry of a snapshot's part, as read. */
type SnapshotEntry = Snapshot[keyof Snapshot][number];
/** Where a snapshot read a line at a time hands each entry: see {@link SnapshotLineReader}. */
export type SnapshotSink = (section: keyof Snapshot, entry: SnapshotEntry) => void;

const PARSERS = { bans: banOf, history: historyOf, pardons: pardonOf, failures: failureOf } as const;

/**
 * Reads a version 3 snapshot a line at a time (a large file is read as a stream, with turns of
 * the event loop between lines, never parsed whole). Feed it every line, then `finish()`.
 * `accepts(firstLine)` says whether a file is version 3 (else it is read whole, by deserialize).
 */
export class SnapshotLineReader {
  /** What was read (empty with a `sink`: the entries went there as they were read). */
  readonly snapshot: Snapshot = { bans: [], history: [], pardons: [], failures: [] };
  /** Entries read whole, per part (whether kept in `snapshot` or handed to the sink). */
  readonly read = { bans: 0, history: 0, pardons: 0, failures: 0 };
  readonly #sink: SnapshotSink | undefined;
  #section: (typeof SECTIONS)[number] | undefined;
  #skipped = 0;
  #entries = 0;
  readonly #done = new Set<string>();
  readonly #losses: SectionLoss[] = [];
  #ended = false;
  #headerSeen = false;

  /** `sink`: each entry is handed to it as it is read, and not kept (a million bans are never a list). */
  constructor(sink?: SnapshotSink) {
    this.#sink = sink;
  }

  static accepts(firstLine: string): boolean {
    return /^\{"version":3,"savedAt":-?\d+(\.\d+)?,$/.test(firstLine.trim());
  }

  feed(raw: string): void {
    const line = raw.trim();
    if (line === '') return;
    if (!this.#headerSeen) {
      this.#headerSeen = true;
      if (SnapshotLineReader.accepts(line)) return;
      throw new Error('not a version 3 snapshot');
    }
    const opened = /^"(\w+)":\[$/.exec(line);
    if (opened !== null) {
      const name = opened[1] as string;
      this.#section = (SECTIONS as readonly string[]).includes(name)
        ? (name as (typeof SECTIONS)[number])
        : undefined;
      this.#skipped = 0;
      this.#entries = 0;
      return;
    }
    if (line === '],' || line === ']}') {
      this.#close();
      if (line === ']}') this.#ended = true;
      return;
    }
    if (this.#section === undefined) return; // a part this version does not know
    this.#entries++;
    let item: unknown;
    try {
      item = JSON.parse(line.endsWith(',') ? line.slice(0, -1) : line);
    } catch {
      item = undefined;
    }
    const parse = PARSERS[this.#section] as (item: Record<string, unknown>) => unknown;
    const parsed =
      typeof item === 'object' && item !== null ? parse(item as Record<string, unknown>) : undefined;
    if (parsed === undefined) {
      this.#skipped++;
      return;
    }
    this.read[this.#section]++;
    if (this.#sink !== undefined) this.#sink(this.#section, parsed as SnapshotEntry);
    else (this.snapshot[this.#section] as unknown[]).push(parsed);
  }

  #close(): void {
    if (this.#section === undefined) return;
    if (this.#skipped > 0)
      this.#losses.push({ section: this.#section, dropped: this.#skipped, of: this.#entries });
    this.#done.add(this.#section);
    this.#section = undefined;
  }

  /** What was read, and what was lost (a file cut short loses the parts it never reached). */
  finish(): { snapshot: Snapshot; dropped: number; losses: SectionLoss[]; version: number } {
    if (!this.#headerSeen) throw new Error('an empty file');
    if (!this.#ended) {
      // Cut short: the part it ends in lost its torn last line and whatever followed; the parts
      // after it were never reached.
      const current = this.#section;
      if (current !== undefined) {
        this.#losses.push({ section: current, dropped: this.#skipped, why: 'cut short', of: this.#entries });
        this.#done.add(current);
        this.#section = undefined;
      }
      for (const section of SECTIONS) {
        if (!this.#done.has(section)) this.#losses.push({ section, dropped: 'all', why: 'cut short', of: 0 });
      }
    }
    let dropped = 0;
    for (const loss of this.#losses) dropped += loss.dropped === 'all' ? 1 : loss.dropped;
    return { snapshot: this.snapshot, dropped, losses: this.#losses, version: VERSION };
  }
}
