import { writeSnapshot } from './persist.js';

/**
 * When the memory store's snapshot is written: `persistDelay` after a change (changes in between
 * are written together), one write at a time, and once more on close (a chunk at a time, like
 * the others: a million bans written at shutdown do not hold the event loop for seconds; close()
 * resolves once the file is on disk). A failed write is reported and retried at the next change.
 */
export class SnapshotWriter {
  readonly #file: string;
  readonly #delayMs: number;
  readonly #chunks: () => Iterable<string>;
  readonly #onError: (error: Error) => void;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;
  #dirty = false;
  #closed = false;

  constructor(file: string, delayMs: number, chunks: () => Iterable<string>, onError: (e: Error) => void) {
    this.#file = file;
    this.#delayMs = delayMs;
    this.#chunks = chunks;
    this.#onError = onError;
  }

  /** Something changed: a write is scheduled. */
  changed(): void {
    if (this.#closed) return;
    this.#dirty = true;
    if (this.#timer || this.#writing) return;
    this.#timer = setTimeout(() => this.#flush(), this.#delayMs);
    this.#timer.unref();
  }

  #flush(): void {
    this.#timer = undefined;
    if (!this.#dirty) return;
    this.#dirty = false;
    this.#writing = writeSnapshot(this.#file, this.#chunks())
      .catch((error: Error) => {
        this.#dirty = true;
        this.#onError(error);
      })
      .finally(() => {
        this.#writing = undefined;
        if (this.#dirty && !this.#closed) this.changed();
      });
  }

  /** Stops scheduling, waits for a write under way, and writes the final snapshot. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#writing;
    try {
      await writeSnapshot(this.#file, this.#chunks());
    } catch (error) {
      this.#onError(error as Error);
    }
  }
}
