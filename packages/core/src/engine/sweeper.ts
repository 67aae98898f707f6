import type { Store } from '../store/store.js';
import type { BanBook } from './ban-book.js';
import type { Announcer } from './events.js';

/** Bans expired (and announced) between two turns of the event loop. */
const EXPIRE_SLICE = 2000;

/**
 * Expires bans on a timer: drops them from the local index, announces them, and lets the store
 * sweep its own. One sweep at a time; a wave of bans ending together expires in slices, a turn of
 * the event loop apart, so that requests are served in between.
 */
export class Sweeper {
  readonly #book: BanBook;
  readonly #store: Store;
  readonly #announcer: Announcer;
  readonly #timer: NodeJS.Timeout;
  #running: Promise<void> | undefined;

  constructor(book: BanBook, store: Store, announcer: Announcer, intervalMs: number) {
    this.#book = book;
    this.#store = store;
    this.#announcer = announcer;
    this.#timer = setInterval(() => void this.sweep(), intervalMs);
    this.#timer.unref();
  }

  /** One sweep (the one under way, if any). Never rejects: store trouble is announced. */
  sweep(): Promise<void> {
    this.#running ??= (async () => {
      try {
        while (this.#book.expire(EXPIRE_SLICE)) await new Promise((resolve) => setImmediate(resolve));
        await this.#store.sweep();
      } catch (error) {
        this.#announcer.storeError('sweep', error);
      } finally {
        this.#running = undefined;
      }
    })();
    return this.#running;
  }

  /** Stops the timer and waits for a sweep under way. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }
}
