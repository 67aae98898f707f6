import { readdirSync, readFileSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { open, readFile, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  deserialize,
  type SectionLoss,
  type Snapshot,
  SnapshotLineReader,
  type SnapshotSink,
} from './snapshot.js';

/** What reading a snapshot file found. */
export type ReadResult =
  | { readonly state: 'none' }
  | {
      readonly state: 'read';
      readonly snapshot: Snapshot;
      readonly dropped: number;
      readonly losses: SectionLoss[];
      readonly version: number;
    }
  /** The file is there but cannot be read (permissions, a directory...): it is left in place. */
  | { readonly state: 'unreadable'; readonly error: Error }
  /** The file was read but is not a snapshot: the caller moves it aside. */
  | { readonly state: 'corrupt'; readonly error: Error };

/** Reads a snapshot file, telling a missing, an unreadable and a corrupted file apart. */
export function readSnapshot(file: string): ReadResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'none' };
    return { state: 'unreadable', error: error as Error };
  }
  try {
    return { state: 'read', ...deserialize(text) };
  } catch (error) {
    return { state: 'corrupt', error: error as Error };
  }
}

/**
 * Snapshots up to this size are read and restored at construction, in one go (a few
 * milliseconds); a larger one is read a line at a time after it, with turns of the event loop
 * between slices, and the store is ready once it is in.
 */
export const SYNC_RESTORE_BYTES = 4 * 1024 * 1024;
/** Lines read between two turns of the event loop, at most; a slice also ends after SLICE_MS. */
const LINES_PER_TURN = 2000;
const SLICE_MS = 8;
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The size of a file, or undefined when it cannot be told (missing, unreadable: readSnapshot says which). */
export function sizeOf(file: string): number | undefined {
  try {
    return statSync(file).size;
  } catch {
    return undefined;
  }
}

/**
 * Reads a large snapshot without blocking: a version 3 file a line at a time, each entry parsed
 * on its own, with a turn of the event loop every LINES_PER_TURN lines. An older file (one line
 * of JSON) is read asynchronously, then parsed whole: once, the first start after an upgrade.
 */
export async function readSnapshotInSlices(
  file: string,
  into?: { sink: SnapshotSink; between(): Promise<void> },
): Promise<ReadResult & { read?: SnapshotLineReader['read'] }> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'none' };
    return { state: 'unreadable', error: error as Error };
  }
  const reader = new SnapshotLineReader(into?.sink);
  const between = into?.between ?? turn;
  let lines = 0;
  let older = false;
  let sliceStart = performance.now();
  try {
    for await (const line of handle.readLines({ encoding: 'utf8' })) {
      if (lines === 0 && !SnapshotLineReader.accepts(line)) {
        older = true;
        break;
      }
      reader.feed(line);
      // A slice ends after LINES_PER_TURN lines or SLICE_MS, whichever comes first.
      if (
        ++lines % LINES_PER_TURN === 0 ||
        ((lines & 63) === 0 && performance.now() - sliceStart > SLICE_MS)
      ) {
        await between();
        sliceStart = performance.now();
      }
    }
  } catch (error) {
    return { state: 'unreadable', error: error as Error };
  } finally {
    await handle.close().catch(() => {});
  }
  try {
    if (older) return { state: 'read', ...deserialize(await readFile(file, 'utf8')) };
    return { state: 'read', ...reader.finish(), read: reader.read };
  } catch (error) {
    return { state: 'corrupt', error: error as Error };
  }
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

const tmpOf = (file: string) => `${file}.tmp-${process.pid}`;

/**
 * Removes temporary files a crashed writer left beside the snapshot (`<file>.tmp-<pid>`).
 * Returns the names removed.
 */
export function removeStaleTemporaries(file: string): string[] {
  const dir = dirname(file);
  const stem = `${basename(file)}.tmp-`;
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.startsWith(stem) || !/^\d+$/.test(name.slice(stem.length))) continue;
    try {
      unlinkSync(join(dir, name));
      removed.push(name);
    } catch {
      // gone already, or not ours to remove: the next write uses its own name
    }
  }
  return removed;
}

/**
 * Writes atomically: the chunks go to a temporary file in the same folder, which is flushed to
 * disk (fsync) before it is renamed over the old snapshot, so a crash or a power cut leaves the
 * old file or the new one, never a torn one. Each chunk is written before the next is built.
 */
export async function writeSnapshot(file: string, chunks: Iterable<string>): Promise<void> {
  const tmp = tmpOf(file);
  const handle = await open(tmp, 'w', 0o600);
  try {
    for (const chunk of chunks) await handle.write(chunk);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, file);
}
