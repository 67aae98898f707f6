import type { Clock } from '../clock.js';
import type { WarningCode } from '../errors.js';

/**
 * One ban. Times are epoch milliseconds; `endMs` is `Infinity` for a permanent ban.
 * `client` is the client key: an IPv4 address, or an IPv6 prefix such as `2001:db8:1:2::/64`.
 */
export interface Ban {
  readonly jail: string;
  readonly client: string;
  readonly startMs: number;
  readonly endMs: number;
  /** How many times this client has been banned in this jail (or in all, with overallJails), this one included. */
  readonly banCount: number;
  readonly reason: string;
  readonly manual: boolean;
}

/** How a failure's ban time escalates; see BanTimeIncrementOptions. */
export interface IncrementInput {
  readonly factor: number;
  readonly multipliers: readonly number[] | null;
  readonly maxTimeMs: number;
  readonly overallJails: boolean;
}

/**
 * A jail's rule for recording failures, built once at setup: with the client and the jitter, it is
 * everything a store needs to record one failure and decide on a ban, in one atomic step.
 */
export interface FailureRule {
  readonly jail: string;
  readonly findTimeMs: number;
  readonly maxRetry: number;
  /** The threshold in force while the client is pardoned in this jail. */
  readonly pardonMaxRetry: number;
  /** Infinity for a permanent ban. */
  readonly banTimeMs: number;
  readonly increment: IncrementInput | null;
  /** Count and decide, but create no ban: the result says what would have been banned. */
  readonly dryRun: boolean;
  /** How long ban history is kept after a ban ends. */
  readonly historyTimeMs: number;
  /** When a ban here feeds the recidive jail: its thresholds. */
  readonly recidive: RecidiveInput | null;
  /** The reason written on bans this rule makes. */
  readonly reason: string;
}

/** The recidive jail's thresholds, carried by the rules of the jails that feed it. */
export interface RecidiveInput {
  readonly jail: string;
  readonly findTimeMs: number;
  readonly maxRetry: number;
  readonly banTimeMs: number;
  readonly dryRun: boolean;
}

/** What a store answers for one recorded failure. */
export interface FailureResult {
  /** Failures in the window, this one included (0 when the client was already banned). */
  readonly count: number;
  /** The threshold that applied. */
  readonly maxRetry: number;
  readonly pardoned: boolean;
  /** The ban this failure created, or the one that already held (see `alreadyBanned`). */
  readonly ban: Ban | null;
  /** True when the client was already banned in this jail: nothing was counted. */
  readonly alreadyBanned: boolean;
  /** In a dry run: the ban that would have been created. */
  readonly wouldBan: Ban | null;
  /** A recidive ban this ban triggered (or would have, in its dry run). */
  readonly recidive: Ban | null;
  readonly recidiveDryRun: boolean;
}

/**
 * What {@link Store.reserve} answers for one attempt on a route a jail targets.
 * `admitted: false` with a `ban` means the client is banned in the jail; without one, the budget
 * is taken by attempts still in flight (failures in the window plus open reservations reach the
 * threshold): the attempt must wait for one to settle, or be refused.
 */
export interface Reservation {
  /** True: the attempt may reach the handler; its slot is held until settled (or `holdMs`). */
  readonly admitted: boolean;
  /** The ban in force, when the client is banned in this jail. */
  readonly ban: Ban | null;
  /** Failures in the window. */
  readonly count: number;
  /** Reservations open (settled neither way), this one included when admitted. */
  readonly inFlight: number;
  /** The threshold in force (the pardoned one while pardoned). */
  readonly maxRetry: number;
}

/** A ban by hand, as the engine hands it to the store. */
export interface ManualBanInput {
  readonly jail: string;
  readonly client: string;
  /** Infinity for permanent. */
  readonly durationMs: number;
  readonly reason: string;
  readonly historyTimeMs: number;
}

/** A jail's counts as the store keeps them (fail2ban-client status). */
export interface StoreJailStatus {
  /** Clients with failures inside the window and no ban yet. */
  readonly currentlyFailed: number;
  readonly totalFailed: number;
  readonly currentlyBanned: number;
  readonly totalBanned: number;
}

/** A query of {@link Store.bansPage}. */
export interface BanPageQuery {
  /** Only this jail's bans. */
  readonly jail?: string;
  /** The cursor a previous page returned as `next`; absent for the first page. */
  readonly after?: string;
  /**
   * The most bans a page holds: every store returns at most this many. A page may hold fewer,
   * even none, and still carry a `next` cursor (a store bounds the work of one call): walk until
   * `next` is absent.
   */
  readonly limit: number;
}

/** A page of active bans, and the cursor of the next page (absent on the last). */
export interface BanPage {
  readonly bans: Ban[];
  readonly next?: string;
}

/** Why a shared store went down, as the store saw it (see {@link StoreContext.storeDown}). */
export interface StoreDownInfo {
  /** What happened, in words: "connection refused", "did not answer within 100 ms"... */
  readonly reason: string;
  /** What the store does meanwhile (its onStoreError policy), in words. */
  readonly meanwhile: string;
  readonly error: unknown;
}

/** What the engine hands a store at start. */
export interface StoreContext {
  readonly clock: Clock;
  /** The jail names this keeper answers to (a shared store may register them for its tools). */
  readonly jails?: readonly string[];
  /**
   * A ban the store learned of outside a call: restored, from another instance, or (`local`) made
   * by this instance's own call whose reply came after the call was given up.
   */
  onBan(ban: Ban, origin: 'restored' | 'remote' | 'local'): void;
  /** A ban lifted outside a call (by another instance). */
  onUnban(ban: Ban, origin: 'remote'): void;
  /** True for a client key that the ignore list covers: such bans are not restored. */
  isIgnored(client: string): boolean;
  warn(code: WarningCode, message: string, details?: object): void;
  /** The bans this instance enforces now, built as they are read: what it writes back to a shared store that lost them. */
  activeBans?(): Iterable<Ban>;
  /** The same, at most `limit` (of `jail`) a page, and the next page's cursor (a short page may have one). */
  activeBansPage?(after: number | undefined, limit: number, jail?: string): { bans: Ban[]; next?: number };
  /**
   * The bans this instance enforces, per jail, counted without building them (as of the last
   * sweep: a ban ended since is counted until swept). What a shared store's `status()` reports,
   * in O(jails).
   */
  banCounts?(): ReadonlyMap<string, number>;
  /** A shared store became unreachable: called once at the start of every outage. */
  storeDown?(info: StoreDownInfo): void;
  /** A shared store answers again after an outage that lasted `durationMs`. */
  storeUp?(info: { durationMs: number }): void;
  /** A store call failed and the store went on without it (counted, not logged one by one). */
  storeError?(operation: string, error: unknown): void;
  /**
   * The shared runtime ignore list changed outside a call: `add` and `remove` carry the entries
   * another instance (or the CLI) changed; `set` carries the whole shared list, as (re)loaded.
   */
  onIgnore?(op: 'add' | 'remove' | 'set', entries: readonly string[]): void;
}

/**
 * Where counters, bans, pardons and history live. Each operation is one atomic step (one round
 * trip for a remote store); durations are milliseconds. The memory store is the reference; every
 * store passes the conformance suite in `@jailkeeper/core/testing`.
 */
export interface Store {
  readonly name: string;
  /**
   * True while the store is down and its policy is to fail closed (the Redis store's
   * onStoreError: 'deny'): check() then refuses every client it does not know to be ignored.
   */
  readonly refusing?: boolean;
  /** True while a remote store is unreachable and the engine works from what it knows locally. */
  readonly degraded?: boolean;
  /**
   * The clock the store's ban times are written in, when it is not the app's: the Redis store
   * writes Redis time, and gives here the app's estimate of it (an offset measured against Redis
   * `TIME`). The engine judges every ban by this clock, so an app clock ahead or behind changes
   * nothing. Absent: the keeper's clock.
   */
  readonly clock?: Clock;
  /** Restores or loads bans (reporting each through `ctx.onBan`) and starts any background work. */
  init(ctx: StoreContext): void | Promise<void>;
  /**
   * Records one failure of `client` under `rule`, and bans when the threshold is reached.
   * `jitterMs` is the random extra ban time the engine drew (0 without jitter).
   */
  recordFailure(rule: FailureRule, client: string, jitterMs: number): Promise<FailureResult>;
  /**
   * Reserves a slot for one attempt of `client` on a route `rule.jail` targets, in one atomic step:
   * admitted while failures in the window plus open reservations stay below the threshold in
   * force and the client is not banned there. `id` names the reservation (unique per attempt); it
   * expires after `holdMs` if never settled (a crashed instance's attempts do not hold slots for
   * ever). Stores without it give the weaker guarantee of `recordFailure` alone (see docs/security.md).
   */
  reserve?(rule: FailureRule, client: string, id: string, holdMs: number): Promise<Reservation>;
  /**
   * Settles a reservation in one atomic step: `failed` records the attempt as a failure, exactly
   * as `recordFailure` does (banning at the threshold), and frees its slot; otherwise the slot is
   * freed and `null` returned. Settling an expired or unknown reservation still records a failure.
   */
  settle?(
    rule: FailureRule,
    client: string,
    id: string,
    failed: boolean,
    jitterMs: number,
  ): Promise<FailureResult | null>;
  /** Records a success: the client is pardoned in the jail for `forMs`. */
  recordPardon(jail: string, client: string, forMs: number): Promise<void>;
  /** A manual ban with its own duration. Replaces an active ban of the same client in the jail. */
  ban(input: ManualBanInput): Promise<Ban>;
  /** Lifts the client's bans (in one jail, or all) and clears its counters there; returns what was lifted. */
  unban(client: string, jail?: string): Promise<Ban[]>;
  /** Lifts every ban (in one jail, or all); returns what was lifted. */
  unbanAll(jail?: string): Promise<Ban[]>;
  /** The active bans (in one jail, or all). */
  bans(jail?: string): Promise<Ban[]>;
  /**
   * One page of the active bans, from a cursor: for lists and exports of any size, without
   * building them whole. At most `query.limit` bans, in the store's own order; a ban made or
   * lifted during a walk may be missed or listed once more. One call is short whatever the
   * store holds (the event loop is never held for the whole set).
   */
  bansPage?(query: BanPageQuery): Promise<BanPage>;
  /** Counts per jail. */
  status(jails: readonly string[]): Promise<Record<string, StoreJailStatus>>;
  /**
   * Optional, for shared stores: the runtime ignore list every instance follows (fail2ban's
   * `addignoreip`). Entries are canonical networks (`'192.0.2.0/24'`); the change reaches the other
   * instances through `StoreContext.onIgnore`.
   */
  addIgnore?(entries: readonly string[]): Promise<void>;
  removeIgnore?(entries: readonly string[]): Promise<void>;
  ignoreEntries?(): Promise<string[]>;
  /**
   * Removes what has expired; returns the bans that ended (when very many end at once, a store
   * may return only some: the engine does not use them). Called by the engine on its sweep.
   */
  sweep(): Promise<Ban[]>;
  close(): Promise<void>;
}
