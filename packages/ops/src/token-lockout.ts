import type { Duration } from '@jailkeeper/core';
import { checkKeys, positiveInteger, toDurationMs } from '@jailkeeper/core/adapter';

/**
 * The admin API's own lockout of callers that present wrong tokens. It works whatever jails the app
 * configured (and for callers in `ignoreIp`, which no jail bans): a caller that sends `maxRetry`
 * wrong tokens within `findTime` is refused for `banTime`, even with the right token.
 */
export interface LockoutOptions {
  /** Wrong tokens from one caller within `findTime` that lock it out. @default 5 */
  maxRetry?: number;
  /** The window wrong tokens are counted in. @default '10m' */
  findTime?: Duration;
  /** How long a locked-out caller is refused. @default '15m' */
  banTime?: Duration;
}

const KEYS = { maxRetry: true, findTime: true, banTime: true } as const;
/** Callers tracked at once; past it the oldest unlocked entry is dropped first (bounded memory). */
const MAX_CALLERS = 10_000;

interface Entry {
  /** Times of the wrong tokens inside the window, oldest first (at most maxRetry). */
  failures: number[];
  /** When the lockout ends; 0 when not locked. */
  untilMs: number;
}

/** What one wrong token did: whether it locked the caller, and for how long. */
export interface LockoutResult {
  readonly locked: boolean;
  readonly retryAfterMs: number;
  /** Wrong tokens in the window, this one included (0 once locked). */
  readonly count: number;
}

/**
 * Counts wrong tokens per caller key (an address, an IPv6 /64) and locks callers out. Counting is
 * synchronous, so parallel requests are counted exactly: the `maxRetry`-th wrong token locks.
 */
export class TokenLockout {
  readonly maxRetry: number;
  readonly findTimeMs: number;
  readonly banTimeMs: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();

  constructor(options: LockoutOptions | undefined, now: () => number) {
    const input = checkKeys('admin.lockout', options ?? {}, KEYS);
    this.maxRetry = positiveInteger('admin.lockout.maxRetry', input.maxRetry, 5, { max: 1000 });
    this.findTimeMs =
      input.findTime === undefined ? 600_000 : toDurationMs('admin.lockout.findTime', input.findTime);
    this.banTimeMs =
      input.banTime === undefined ? 900_000 : toDurationMs('admin.lockout.banTime', input.banTime);
    this.#now = now;
  }

  /** Milliseconds the caller stays locked out; 0 when it is not. */
  lockedFor(key: string): number {
    const entry = this.#entries.get(key);
    if (entry === undefined || entry.untilMs === 0) return 0;
    const left = entry.untilMs - this.#now();
    if (left > 0) return left;
    entry.untilMs = 0;
    if (entry.failures.length === 0) this.#entries.delete(key);
    return 0;
  }

  /** Records a wrong token; the one that reaches `maxRetry` locks the caller out. */
  fail(key: string): LockoutResult {
    const now = this.#now();
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      if (this.#entries.size >= MAX_CALLERS) this.#evict(now);
      entry = { failures: [], untilMs: 0 };
      this.#entries.set(key, entry);
    }
    if (entry.untilMs > now) return { locked: true, retryAfterMs: entry.untilMs - now, count: 0 };
    const since = now - this.findTimeMs;
    while (entry.failures.length > 0 && (entry.failures[0] as number) <= since) entry.failures.shift();
    entry.failures.push(now);
    if (entry.failures.length < this.maxRetry) {
      return { locked: false, retryAfterMs: 0, count: entry.failures.length };
    }
    entry.failures = [];
    entry.untilMs = now + this.banTimeMs;
    return { locked: true, retryAfterMs: this.banTimeMs, count: this.maxRetry };
  }

  /** Callers currently locked out, with the time each is refused until. */
  locked(): Array<{ key: string; untilMs: number }> {
    const now = this.#now();
    const out: Array<{ key: string; untilMs: number }> = [];
    for (const [key, entry] of this.#entries)
      if (entry.untilMs > now) out.push({ key, untilMs: entry.untilMs });
    return out;
  }

  #evict(now: number): void {
    // Prefer an entry that is not locked out: a flood of new addresses should not free a locked one.
    let scanned = 0;
    for (const [key, entry] of this.#entries) {
      if (entry.untilMs <= now) {
        this.#entries.delete(key);
        return;
      }
      if (++scanned >= 100) break;
    }
    const oldest = this.#entries.keys().next();
    if (!oldest.done) this.#entries.delete(oldest.value);
  }
}
