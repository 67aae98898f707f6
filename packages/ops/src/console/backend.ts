import type { Ban } from '@jailkeeper/core/store';
import type { BanPager } from '../ban-pager.js';
import type { Feed } from './feed.js';
import type { Timeline, TimelineKind } from './timeline.js';

/** One jail on the overview: its thresholds and its counts. Unknown figures are null. */
export interface JailOverview {
  readonly name: string;
  readonly dryRun: boolean;
  readonly scope: 'app' | 'jail' | null;
  readonly maxRetry: number | null;
  readonly findTimeMs: number | null;
  /** null for a permanent ban time, or when unknown (see `known`). */
  readonly banTimeMs: number | null;
  /** The longest escalated ban time (banTimeIncrement.maxTime), when the jail escalates. */
  readonly maxBanTimeMs: number | null;
  /** False when the thresholds are not known here (the fleet console without --config). */
  readonly known: boolean;
  readonly currentlyFailed: number;
  readonly totalFailed: number | null;
  readonly currentlyBanned: number;
  readonly totalBanned: number | null;
  /** Requests refused by this process because of this jail's bans. */
  readonly refused: number | null;
  /** Dry-run bans this process would have made. */
  readonly wouldBan: number | null;
  /** Slots held now by this process's attempts in this jail (answers not decided yet); null in the fleet view. */
  readonly held: number | null;
}

/** The store's health as the console shows it. */
export interface StoreHealth {
  readonly store: string;
  readonly degraded: boolean;
  /** True while the store is down and its policy refuses every client (onStoreError: 'deny'). */
  readonly refusing: boolean;
  /** The outages seen since the console started, newest first (at most 20). */
  readonly outages: ReadonlyArray<{ readonly startMs: number; readonly endMs: number | null }>;
  readonly errors: number;
  readonly lastError: { readonly atMs: number; readonly operation: string; readonly message: string } | null;
}

/**
 * What the console shows and does, whoever answers: one keeper (the admin API's console) or a
 * shared store for a whole fleet (the CLI's `jailkeeper console`).
 */
export interface ConsoleBackend {
  /** Where the figures come from, in words: "this instance (memory store)", "Redis at …". */
  readonly where: string;
  /** The figures the charts can show (a fleet view has no failures or refusals of its own). */
  readonly charted: readonly TimelineKind[];
  readonly pager: BanPager;
  now(): number;
  jails(): Promise<JailOverview[]>;
  health(): StoreHealth;
  /** The jail names a ban may be made in. */
  jailNames(): Promise<string[]>;
  /** 'local', 'remote', 'restored' when the ban's event was seen; undefined when not known. */
  originOf(ban: Ban): string | undefined;
  scopeOf(jail: string): 'app' | 'jail' | null;
  ban(address: string, options: { jail?: string; duration?: string; reason?: string }): Promise<Ban>;
  unban(address: string, jail?: string): Promise<Ban[]>;
  ignoreList(): Promise<string[]>;
  ignoreAdd(entry: string): Promise<string[]>;
  ignoreRemove(entry: string): Promise<string[]>;
  /**
   * Brings the charts up to the moment before they are read: counts kept elsewhere (the keeper's
   * refusal counters) are taken now, so the current minute is complete when the page asks.
   */
  sample?(): void;
  /** Starts feeding the live feed and the charts (listeners, timers that do not hold the process). */
  attach(sinks: { feed: Feed; timeline: Timeline }): void;
  /**
   * Calls back on every refused request, while the live feed has a watcher (a listener costs a
   * little per refusal, so it is only there then). Returns the function that stops it.
   */
  watchRefusals?(onRefusal: (jail: string, client: string) => void): () => void;
  /** Stops what `attach` started. */
  detach(): void;
}

const MAX_OUTAGES = 20;

/** Follows a store's `degraded` flag and its errors: outages with their start and end. */
export class HealthTracker {
  readonly #now: () => number;
  readonly #outages: Array<{ startMs: number; endMs: number | null }> = [];
  #errors = 0;
  #lastError: StoreHealth['lastError'] = null;
  #degraded = false;

  constructor(now: () => number) {
    this.#now = now;
  }

  /** Reads the store's flag; returns 'down' or 'up' on a change, else undefined. */
  observe(degraded: boolean): 'down' | 'up' | undefined {
    if (degraded === this.#degraded) return undefined;
    this.#degraded = degraded;
    if (degraded) {
      this.#outages.unshift({ startMs: this.#now(), endMs: null });
      if (this.#outages.length > MAX_OUTAGES) this.#outages.pop();
      return 'down';
    }
    const open = this.#outages[0];
    if (open !== undefined && open.endMs === null) open.endMs = this.#now();
    return 'up';
  }

  error(operation: string, error: unknown): void {
    this.#errors++;
    const message = error instanceof Error ? error.message : String(error);
    this.#lastError = { atMs: this.#now(), operation, message: message.slice(0, 300) };
  }

  report(store: string, refusing: boolean): StoreHealth {
    return {
      store,
      degraded: this.#degraded,
      refusing,
      outages: this.#outages.map((o) => ({ ...o })),
      errors: this.#errors,
      lastError: this.#lastError,
    };
  }
}
