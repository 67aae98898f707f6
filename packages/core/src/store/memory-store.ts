import { DEFAULTS } from '../config/defaults.js';
import { type Duration, toDurationMs } from '../config/duration.js';
import { checkKeys, positiveInteger } from '../config/validate.js';
import { flatKey } from './ban-table.js';
import { nextBanTimeMs } from './ban-time.js';
import { CounterTable } from './counter-table.js';
import { MemoryBans } from './memory-bans.js';
import { restoreSnapshot } from './memory-restore.js';
import { PardonTable } from './pardons.js';
import { ReservationTable } from './reservations.js';
import { serializeChunks } from './snapshot.js';
import { SnapshotWriter } from './snapshot-writer.js';
import type {
  Ban,
  BanPage,
  BanPageQuery,
  FailureResult,
  FailureRule,
  ManualBanInput,
  Reservation,
  Store,
  StoreContext,
  StoreJailStatus,
} from './store.js';

/** Options of {@link createMemoryStore}. */
export interface MemoryStoreOptions {
  /**
   * The most failure counters kept; at the cap the weakest, oldest counter goes. Also bounds
   * pardons and the history of ended bans (the oldest goes). Active bans are never evicted.
   * @default 100000
   */
  maxTrackedClients?: number;
  /** A file that keeps bans, ban history and pardons across restarts, written atomically. */
  persist?: string;
  /** How soon after a change the snapshot is written. @default '1s' */
  persistDelay?: Duration;
}

const MEMORY_KEYS = { maxTrackedClients: true, persist: true, persistDelay: true } as const;
/** Entries of each table a sweep looks at between two turns of the event loop. */
const SWEEP_SLICE = 2000;
/** Bans per page of `bans()`, built between two turns of the event loop. */
const PAGE = 5000;

interface Totals {
  failed: number;
  banned: number;
}

const SEP = '\u0000';
const keyOf = (jail: string, client: string) => `${jail}${SEP}${client}`;
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * A failure's result that made no ban (`wouldBan`: the one a dry run would have made), written out
 * in the one shape every result has: a spread of a shared object cost more.
 */
function noBan(count: number, maxRetry: number, pardoned: boolean, wouldBan: Ban | null): FailureResult {
  return {
    count,
    maxRetry,
    pardoned,
    ban: null,
    alreadyBanned: false,
    wouldBan,
    recidive: null,
    recidiveDryRun: false,
  };
}

/** The memory store: see {@link createMemoryStore}. */
class InMemoryStore implements Store {
  readonly name = 'memory';
  readonly #persistFile: string | undefined;
  readonly #persistDelayMs: number;
  readonly #counters: CounterTable;
  /** findTime per jail, so that the sweep knows each counter's window. */
  readonly #windows = new Map<string, number>();
  readonly #b: MemoryBans;
  readonly #pardons: PardonTable;
  readonly #totals = new Map<string, Totals>();
  readonly #reservations = new ReservationTable();
  #ctx: StoreContext | undefined;
  #writer: SnapshotWriter | undefined;
  /** A large snapshot being restored: close() waits for it, then writes. */
  #restoring: Promise<void> | undefined;

  constructor(options: MemoryStoreOptions) {
    const input = checkKeys('createMemoryStore options', options, MEMORY_KEYS);
    const cap = positiveInteger('maxTrackedClients', input.maxTrackedClients, DEFAULTS.maxTrackedClients);
    this.#persistFile = input.persist as string | undefined;
    this.#persistDelayMs =
      input.persistDelay === undefined
        ? DEFAULTS.persistDelayMs
        : toDurationMs('persistDelay', input.persistDelay, { allowZero: true });
    this.#counters = new CounterTable(cap);
    this.#b = new MemoryBans(cap);
    this.#pardons = new PardonTable(cap);
  }

  get #now(): number {
    return (this.#ctx as StoreContext).clock.now();
  }

  #totalsOf(jail: string): Totals {
    let totals = this.#totals.get(jail);
    if (!totals) {
      totals = { failed: 0, banned: 0 };
      this.#totals.set(jail, totals);
    }
    return totals;
  }

  /** Restores the snapshot: at once when it is small, else a slice at a time (ready when in). */
  init(ctx: StoreContext): void | Promise<void> {
    this.#ctx = ctx;
    const file = this.#persistFile;
    if (file === undefined) return;
    const writable = restoreSnapshot(file, ctx, {
      ban: (ban) => this.#b.table.set(ban),
      history: (client, entry) => this.#b.history.restore(client, entry),
      pardon: (jail, client, untilMs) => this.#pardons.set(keyOf(jail, client), untilMs),
      failures: (jail, client, times, findTimeMs) => {
        if (!this.#windows.has(jail)) this.#windows.set(jail, findTimeMs);
        this.#counters.restore(keyOf(jail, client), times, findTimeMs);
      },
    });
    if (typeof writable === 'boolean') this.#startWriter(file, writable);
    else {
      this.#restoring = writable.then((ok) => this.#startWriter(file, ok));
      return this.#restoring;
    }
  }

  #startWriter(file: string, writable: boolean): void {
    const ctx = this.#ctx as StoreContext;
    if (!writable) return; // an unreadable file is left alone: never overwritten
    this.#writer = new SnapshotWriter(
      file,
      this.#persistDelayMs,
      () => serializeChunks(this.#source(), this.#now),
      (error) =>
        ctx.warn('JK_WRN_PERSIST_WRITE', `The ban snapshot ${file} could not be written: ${error.message}.`, {
          file,
        }),
    );
  }

  #source() {
    const now = this.#now;
    const table = this.#b.table;
    return {
      *bans() {
        for (const slot of table.slots()) if (table.endMs(slot) > now) yield table.ban(slot);
      },
      history: () => mapIter(this.#b.history.entries(), ([client, h]) => ({ client, ...h })),
      pardons: () =>
        mapIter(this.#pardons.entries(), ([key, untilMs]) => {
          const at = key.indexOf(SEP);
          return { jail: key.slice(0, at), client: key.slice(at + 1), untilMs };
        }),
      // Counters inside their window, so that a restart does not renew an attacker's budget.
      // Written with the snapshot (a change, then close()); failures alone do not schedule a write.
      failures: () =>
        filterMap(this.#counters.entries(), ({ key, times }) => {
          const at = key.indexOf(SEP);
          const jail = key.slice(0, at);
          const findTimeMs = this.#windows.get(jail);
          if (findTimeMs === undefined) return undefined;
          const live = times.filter((t) => t > now - findTimeMs);
          return live.length === 0 ? undefined : { jail, client: key.slice(at + 1), findTimeMs, times: live };
        }),
    };
  }

  async reserve(input: FailureRule, client: string, id: string, holdMs: number): Promise<Reservation> {
    const now = this.#now;
    const key = keyOf(input.jail, client);
    this.#windows.set(input.jail, input.findTimeMs);
    const slot = this.#b.live(input.jail, client, now);
    const maxRetry = this.#pardons.has(key, now) ? input.pardonMaxRetry : input.maxRetry;
    const count = this.#counters.count(key, now, input.findTimeMs);
    const open = this.#reservations.open(key, now);
    if (slot !== -1)
      return { admitted: false, ban: this.#b.table.ban(slot), count, inFlight: open, maxRetry };
    if (count + open >= maxRetry) return { admitted: false, ban: null, count, inFlight: open, maxRetry };
    this.#reservations.add(key, id, now + holdMs);
    return { admitted: true, ban: null, count, inFlight: open + 1, maxRetry };
  }

  async settle(
    input: FailureRule,
    client: string,
    id: string,
    failed: boolean,
    jitterMs: number,
  ): Promise<FailureResult | null> {
    const key = keyOf(input.jail, client);
    this.#reservations.remove(key, id);
    // Counted here, with the key built once: no second async layer, no second key to hash.
    return failed ? this.#record(input, client, key, jitterMs) : null;
  }

  async recordFailure(input: FailureRule, client: string, jitterMs: number): Promise<FailureResult> {
    return this.#record(input, client, keyOf(input.jail, client), jitterMs);
  }

  /** A failure counted (`key`: keyOf(jail, client)). */
  #record(input: FailureRule, client: string, key: string, jitterMs: number): FailureResult {
    const now = this.#now;
    this.#windows.set(input.jail, input.findTimeMs);
    this.#b.historyTimeMs = input.historyTimeMs;
    const held = this.#b.live(input.jail, client, now);
    if (held !== -1) {
      const ban = this.#b.table.ban(held);
      return {
        count: 0,
        maxRetry: input.maxRetry,
        pardoned: false,
        ban,
        alreadyBanned: true,
        wouldBan: null,
        recidive: null,
        recidiveDryRun: false,
      };
    }
    const pardoned = this.#pardons.has(key, now);
    const maxRetry = pardoned ? input.pardonMaxRetry : input.maxRetry;
    const count = this.#counters.add(key, now, input.findTimeMs, maxRetry);
    this.#totalsOf(input.jail).failed++;
    if (count < maxRetry) return noBan(count, maxRetry, pardoned, null);

    // The threshold is reached: the window starts again, as fail2ban resets failures on a ban.
    this.#counters.delete(key);
    const earlier = this.#b.earlier(input.jail, client, input.increment?.overallJails ?? false, now);
    const durationMs = nextBanTimeMs(input.banTimeMs, input.increment, earlier, jitterMs);
    const ban: Ban = {
      jail: input.jail,
      // One flat string, shared by this store's table and the engine's index (see flatKey).
      client: flatKey(client),
      startMs: now,
      endMs: now + durationMs,
      banCount: earlier + 1,
      reason: input.reason,
      manual: false,
    };
    if (input.dryRun) return noBan(count, maxRetry, pardoned, ban);
    this.#b.create(ban, now);
    this.#totalsOf(ban.jail).banned++;
    const recidive = input.recidive ? this.#feedRecidive(input, client, now) : null;
    this.#writer?.changed();
    return {
      count,
      maxRetry,
      pardoned,
      ban,
      alreadyBanned: false,
      wouldBan: null,
      recidive,
      recidiveDryRun: recidive !== null && (input.recidive as NonNullable<FailureRule['recidive']>).dryRun,
    };
  }

  /** A ban is the recidive jail's failure; its threshold bans everywhere. */
  #feedRecidive(input: FailureRule, client: string, now: number): Ban | null {
    const r = input.recidive as NonNullable<FailureRule['recidive']>;
    const key = keyOf(r.jail, client);
    this.#windows.set(r.jail, r.findTimeMs);
    if (this.#b.live(r.jail, client, now) !== -1) return null;
    const count = this.#counters.add(key, now, r.findTimeMs, r.maxRetry);
    this.#totalsOf(r.jail).failed++;
    if (count < r.maxRetry) return null;
    this.#counters.delete(key);
    const ban: Ban = {
      jail: r.jail,
      client: flatKey(client),
      startMs: now,
      endMs: now + r.banTimeMs,
      banCount: this.#b.earlier(r.jail, client, false, now) + 1,
      reason: `banned ${count} times within ${Math.round(r.findTimeMs / 1000)}s`,
      manual: false,
    };
    if (!r.dryRun) {
      this.#b.create(ban, now);
      this.#totalsOf(ban.jail).banned++;
    }
    return ban;
  }

  async recordPardon(jail: string, client: string, forMs: number): Promise<void> {
    this.#pardons.set(keyOf(jail, client), this.#now + forMs);
    this.#writer?.changed();
  }

  async ban(input: ManualBanInput): Promise<Ban> {
    const now = this.#now;
    this.#b.historyTimeMs = input.historyTimeMs;
    this.#b.live(input.jail, input.client, now);
    const ban: Ban = {
      jail: input.jail,
      client: flatKey(input.client),
      startMs: now,
      endMs: now + input.durationMs,
      banCount: this.#b.earlier(input.jail, input.client, false, now) + 1,
      reason: input.reason,
      manual: true,
    };
    this.#b.create(ban, now);
    this.#totalsOf(ban.jail).banned++;
    this.#counters.delete(keyOf(input.jail, input.client));
    this.#writer?.changed();
    return ban;
  }

  async unban(client: string, jail?: string): Promise<Ban[]> {
    const { lifted, jails } = this.#b.lift(client, jail, this.#now);
    for (const name of jails) {
      this.#counters.delete(keyOf(name, client));
      this.#reservations.clear(keyOf(name, client));
    }
    if (lifted.length > 0) this.#writer?.changed();
    return lifted;
  }

  async unbanAll(jail?: string): Promise<Ban[]> {
    const lifted = this.#b.liftAll(jail, this.#now, (name, client) =>
      this.#counters.delete(keyOf(name, client)),
    );
    if (lifted.length > 0) this.#writer?.changed();
    return lifted;
  }

  /** The active bans, built a page at a time between turns of the event loop. */
  async bans(jail?: string): Promise<Ban[]> {
    const out: Ban[] = [];
    let after: string | undefined;
    do {
      const page = await this.bansPage({ jail, after, limit: PAGE });
      for (const ban of page.bans) out.push(ban);
      after = page.next;
      if (after !== undefined) await turn();
    } while (after !== undefined);
    return out;
  }

  async bansPage(query: BanPageQuery): Promise<BanPage> {
    const after = query.after === undefined ? undefined : Number(query.after);
    const page = this.#b.table.page(
      Number.isInteger(after) ? after : undefined,
      query.limit,
      this.#now,
      query.jail,
    );
    return page.next === undefined ? { bans: page.bans } : { bans: page.bans, next: String(page.next) };
  }

  async status(jails: readonly string[]): Promise<Record<string, StoreJailStatus>> {
    const now = this.#now;
    const failed = new Map<string, number>();
    // Up to maxTrackedClients counters: counted a slice at a time, a turn of the event loop apart.
    let seen = 0;
    for (const key of this.#counters.live(now, (k) => this.#windowOf(k))) {
      const jail = key.slice(0, key.indexOf(SEP));
      failed.set(jail, (failed.get(jail) ?? 0) + 1);
      if (++seen % SWEEP_SLICE === 0) await turn();
    }
    const banned = this.#b.table.counts();
    const out: Record<string, StoreJailStatus> = {};
    for (const jail of jails) {
      const totals = this.#totals.get(jail);
      out[jail] = {
        currentlyFailed: failed.get(jail) ?? 0,
        totalFailed: totals?.failed ?? 0,
        currentlyBanned: banned.get(jail) ?? 0,
        totalBanned: totals?.banned ?? 0,
      };
    }
    return out;
  }

  #windowOf(key: string): number {
    return this.#windows.get(key.slice(0, key.indexOf(SEP))) ?? 0;
  }

  /**
   * Expiry costs what ends: bans by their end time, a slice at a time with a turn of the event loop
   * between slices; the other tables a bounded slice per sweep.
   */
  async sweep(): Promise<Ban[]> {
    const now = this.#now;
    const ended: Ban[] = [];
    while (this.#b.expire(now, SWEEP_SLICE, ended, SWEEP_SLICE)) await turn();
    this.#pardons.sweep(now, SWEEP_SLICE);
    this.#b.history.sweep(now, SWEEP_SLICE);
    this.#counters.sweep(now, (k) => this.#windowOf(k), SWEEP_SLICE);
    this.#reservations.sweep(now);
    if (ended.length > 0) this.#writer?.changed();
    return ended;
  }

  /**
   * Starts the count of `client` in `jail` at `count` failures (at `atMs`), unless it counts
   * already: the Redis store's fallback starts from the last count it saw in Redis.
   */
  seedFailures(jail: string, client: string, count: number, atMs: number, findTimeMs: number): void {
    this.#windows.set(jail, findTimeMs);
    this.#counters.seed(keyOf(jail, client), count, atMs, findTimeMs);
  }

  /** Counters held now, and how many were evicted at the cap (for tests and metrics). */
  get trackedClients(): { size: number; evictions: number; bans: number; history: number } {
    return {
      size: this.#counters.size,
      evictions: this.#counters.evictions,
      bans: this.#b.table.size,
      history: this.#b.history.size,
    };
  }

  async close(): Promise<void> {
    await this.#restoring;
    await this.#writer?.close();
  }
}

function* filterMap<T, U>(items: Iterable<T>, map: (item: T) => U | undefined): Generator<U> {
  for (const item of items) {
    const out = map(item);
    if (out !== undefined) yield out;
  }
}

function* mapIter<T, U>(items: Iterable<T>, map: (item: T) => U): Generator<U> {
  for (const item of items) yield map(item);
}

/** The store {@link createMemoryStore} returns. */
export type MemoryStore = Store & {
  readonly trackedClients: { size: number; evictions: number; bans: number; history: number };
  /** See the Redis store's fallback: starts a count from a known one. */
  seedFailures(jail: string, client: string, count: number, atMs: number, findTimeMs: number): void;
};

/**
 * Creates the embedded in-memory store, the default of {@link createJailkeeper}.
 * @example
 * const keeper = createJailkeeper({ jails, store: createMemoryStore({ persist: './bans.json' }) });
 */
export function createMemoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  return new InMemoryStore(options);
}
