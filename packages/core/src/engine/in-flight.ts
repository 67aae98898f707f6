/**
 * What is under way, for `settling()`, `idle()` and `close()`: each client's failure still being
 * recorded, every store call, and every admitted response not yet counted.
 */
export class InFlight {
  /**
   * Failures being recorded, by client key: the latest store call of each client. A request of a
   * client with a failure in flight waits for it (see settling()), so that a remote store's round
   * trip cannot let a fast attacker's next attempt in before its ban lands.
   */
  readonly #recording = new Map<string, Promise<unknown>>();
  /** Store calls under way plus admitted responses not yet counted. */
  #count = 0;
  #idleWaiters: Array<() => void> = [];
  readonly #storeCalls = new Set<Promise<unknown>>();

  /** The client's failure still being recorded, or undefined (at once when there is none). */
  settling(key: string): Promise<unknown> | undefined {
    if (this.#recording.size === 0) return undefined;
    return this.#recording.get(key);
  }

  /** Resolves when no failure or pardon is still being recorded and no admitted response is uncounted. */
  idle(): Promise<void> {
    if (this.#count === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** How many things are under way: store calls plus admitted responses not yet counted. */
  get pending(): number {
    return this.#count;
  }

  /**
   * Resolves true once nothing is under way (see idle()), or false when `timeoutMs` ends first.
   * The timer keeps the process alive: a shutdown waits for it, then persists.
   */
  idleWithin(timeoutMs: number): Promise<boolean> {
    if (this.#count === 0) return Promise.resolve(true);
    if (timeoutMs <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.#idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Resolves when no store call is under way (open responses are not waited for). */
  async settled(): Promise<void> {
    while (this.#storeCalls.size > 0) await Promise.allSettled([...this.#storeCalls]);
  }

  /** One more thing under way: a store call, or an admitted response that will be counted when it closes. */
  begin(): void {
    this.#count++;
  }

  /** One thing under way has ended; the idle waiters run when none is left. */
  end(): void {
    if (--this.#count === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /** Counts a store call under way until `promise` settles. */
  track<T>(promise: Promise<T>): Promise<T> {
    this.begin();
    this.#storeCalls.add(promise);
    const done = () => {
      this.#storeCalls.delete(promise);
      this.end();
    };
    promise.then(done, done);
    return promise;
  }

  /**
   * A store call under way whose outcome is `outcome`, which calls `called(outcome)` once it has
   * settled: one promise chain per call, not track()'s second then() and closure.
   */
  calling(outcome: Promise<unknown>): void {
    this.begin();
    this.#storeCalls.add(outcome);
  }

  /** The call `calling()` registered has settled. */
  called(outcome: Promise<unknown>): void {
    this.#storeCalls.delete(outcome);
    this.end();
  }

  /**
   * A client's failure being recorded: `recorded` is its outcome, which calls `done(recorded)` when it
   * has settled (one promise chain per counted failure, not one per piece of bookkeeping).
   */
  recording(key: string, recorded: Promise<unknown>): void {
    this.begin();
    this.#storeCalls.add(recorded);
    this.#recording.set(key, recorded);
  }

  /** The failure `recording()` registered has settled. */
  recorded(key: string, recorded: Promise<unknown>): void {
    if (this.#recording.get(key) === recorded) this.#recording.delete(key);
    this.#storeCalls.delete(recorded);
    this.end();
  }
}
