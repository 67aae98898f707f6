import {
  closeSync,
  fsyncSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { deserialize, type SectionLoss, type Snapshot } from './snapshot.js';

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

/** The same, synchronously: for `close()`, which must finish before the process exits. */
export function writeSnapshotSync(file: string, chunks: Iterable<string>): void {
  const tmp = tmpOf(file);
  const fd = openSync(tmp, 'w', 0o600);
  try {
    for (const chunk of chunks) writeSync(fd, chunk);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}
