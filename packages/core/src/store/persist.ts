import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import type { Ban } from './store.js';

/** What the memory store keeps across restarts. Times are epoch ms; `null` end means permanent (JSON has no Infinity). */
export interface Snapshot {
  readonly bans: Ban[];
  readonly history: HistoryRecord[];
  readonly pardons: PardonRecord[];
}

export interface HistoryRecord {
  readonly client: string;
  /** Bans per jail. */
  readonly jails: Record<string, number>;
  readonly total: number;
  /** Epoch ms after which the history is forgotten; Infinity while a permanent ban lasts. */
  readonly expiresMs: number;
}

interface PardonRecord {
  readonly jail: string;
  readonly client: string;
  readonly untilMs: number;
}

const VERSION = 1;

function encodeTime(ms: number): number | null {
  return ms === Number.POSITIVE_INFINITY ? null : ms;
}

function decodeTime(value: unknown): number | undefined {
  if (value === null) return Number.POSITIVE_INFINITY;
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

export function serialize(snapshot: Snapshot, savedAtMs: number): string {
  return JSON.stringify({
    version: VERSION,
    savedAt: savedAtMs,
    bans: snapshot.bans.map((b) => ({ ...b, endMs: encodeTime(b.endMs) })),
    history: snapshot.history.map((h) => ({ ...h, expiresMs: encodeTime(h.expiresMs) })),
    pardons: snapshot.pardons,
  });
}

const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 128;

/** Parses a snapshot; entries of the wrong shape are dropped and counted, not trusted. */
function deserialize(text: string): { snapshot: Snapshot; dropped: number } {
  const data = JSON.parse(text) as Record<string, unknown>;
  if (typeof data !== 'object' || data === null || data.version !== VERSION) {
    throw new Error(`unknown snapshot version ${JSON.stringify((data as { version?: unknown })?.version)}`);
  }
  let dropped = 0;
  const list = (value: unknown): Record<string, unknown>[] => {
    if (!Array.isArray(value)) throw new Error('a snapshot list is not an array');
    return value.filter((v) => typeof v === 'object' && v !== null) as Record<string, unknown>[];
  };
  const bans: Ban[] = [];
  for (const b of list(data.bans)) {
    const endMs = decodeTime(b.endMs);
    if (
      !isString(b.jail) ||
      !isString(b.client) ||
      typeof b.startMs !== 'number' ||
      endMs === undefined ||
      typeof b.banCount !== 'number'
    ) {
      dropped++;
      continue;
    }
    bans.push({
      jail: b.jail,
      client: b.client,
      startMs: b.startMs,
      endMs,
      banCount: b.banCount,
      reason: typeof b.reason === 'string' ? b.reason : '',
      manual: b.manual === true,
    });
  }
  const history: HistoryRecord[] = [];
  for (const h of list(data.history)) {
    const expiresMs = decodeTime(h.expiresMs);
    if (
      !isString(h.client) ||
      typeof h.total !== 'number' ||
      expiresMs === undefined ||
      typeof h.jails !== 'object'
    ) {
      dropped++;
      continue;
    }
    const jails: Record<string, number> = {};
    for (const [jail, count] of Object.entries(h.jails as object))
      if (typeof count === 'number') jails[jail] = count;
    history.push({ client: h.client, jails, total: h.total, expiresMs });
  }
  const pardons: PardonRecord[] = [];
  for (const p of list(data.pardons ?? [])) {
    if (!isString(p.jail) || !isString(p.client) || typeof p.untilMs !== 'number') {
      dropped++;
      continue;
    }
    pardons.push({ jail: p.jail, client: p.client, untilMs: p.untilMs });
  }
  return { snapshot: { bans, history, pardons }, dropped };
}

/** Reads a snapshot file; `undefined` when there is none. Throws on a corrupted file. */
export function readSnapshot(file: string): { snapshot: Snapshot; dropped: number } | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return deserialize(text);
}

/** Moves a corrupted snapshot aside so that the next write does not destroy the evidence. */
export function quarantine(file: string, nowMs: number): string | undefined {
  const target = `${file}.corrupt-${nowMs}`;
  try {
    renameSync(file, target);
    return target;
  } catch {
    return undefined;
  }
}

/** Writes atomically: a temporary file in the same folder, then rename over the old one. */
export async function writeSnapshot(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, text, { mode: 0o600 });
  await rename(tmp, file);
}

export function writeSnapshotSync(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, file);
}
