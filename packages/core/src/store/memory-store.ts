import { DEFAULTS } from '../config/defaults.js';
import { type Duration, toDurationMs } from '../config/duration.js';
import { checkKeys, positiveInteger } from '../config/validate.js';
import { nextBanTimeMs } from './ban-time.js';
import { CounterTable } from './counter-table.js';
import {
  type HistoryRecord,
  quarantine,
  readSnapshot,
  type Snapshot,
  serialize,
  writeSnapshot,
  writeSnapshotSync,
} from './persist.js';
import { ReservationTable } from './reservations.js';
import type {
  Ban,
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
  /** The most failure counters kept; at the cap the weakest, oldest counter goes. Bans are never evicted. @default 100000 */
  maxTrackedClients?: number;
  /** A file that keeps bans, ban history and pardons across restarts, written atomically. */
  persist?: string;
  /** How soon after a change the snapshot is written. @default '1s' */
  persistDelay?: Duration;
}

const MEMORY_KEYS = { maxTrackedClients: true, persist: true, persistDelay: true } as const;

interface History {
  jails: Record<string, number>;
  total: number;
  expiresMs: number;
}

interface Totals {
  failed: number;
  banned: number;
}

const SEP = '\u0000';
const keyOf = (jail: string, client: string) => `${jail}${SEP}${client}`;

class MemoryStore implements Store {
  readonly name = 'memory';
  readonly #cap: number;
  readonly #persistFile: string | undefined;
  readonly #persistDelayMs: number;
  readonly #counters: CounterTable;
  /** findTime per jail, so that the sweep knows each counter's window. */
  readonly #windows = new Map<string, number>();
  readonly #bans = new Map<string, Ban>();
  readonly #history = new Map<string, History>();
  readonly #pardons = new Map<string, number>();
  readonly #totals = new Map<string, Totals>();
  readonly #reservations = new ReservationTable();
  #ctx: StoreContext | undefined;
  #persistTimer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;
  #dirty = false;
  #closed = false;

  constructor(options: MemoryStoreOptions) {
    const input = checkKeys('createMemoryStore options', options, MEMORY_KEYS);
    this.#cap = positiveInteger('maxTrackedClients', input.maxTrackedClients, DEFAULTS.maxTrackedClients);
    this.#persistFile = input.persist as string | undefined;
    this.#persistDelayMs =
      input.persistDelay === undefined
        ? DEFAULTS.persistDelayMs
        : toDurationMs('persistDelay', input.persistDelay, { allowZero: true });
    this.#counters = new CounterTable(this.#cap);
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

  init(ctx: StoreContext): void {
    this.#ctx = ctx;
    if (this.#persistFile === undefined) return;
    const now = this.#now;
    let loaded: ReturnType<typeof readSnapshot>;
    try {
      loaded = readSnapshot(this.#persistFile);
    } catch (error) {
      const movedTo = quarantine(this.#persistFile, now);
      ctx.warn(
        'JK_WRN_PERSIST_CORRUPT',
        `The ban snapshot ${this.#persistFile} could not be read (${(error as Error).message}); starting without it${movedTo ? `, and it was moved to ${movedTo}` : ''}.`,
        { file: this.#persistFile },
      );
      return;
    }
    if (loaded === undefined) return;
    if (loaded.dropped > 0) {
      ctx.warn(
        'JK_WRN_PERSIST_CORRUPT',
        `The ban snapshot ${this.#persistFile} held ${loaded.dropped} malformed entries; they were skipped.`,
        { file: this.#persistFile, dropped: loaded.dropped },
      );
    }
    const { bans, history, pardons } = loaded.snapshot;
    for (const h of history) {
      if (h.expiresMs > now)
        this.#history.set(h.client, { jails: { ...h.jails }, total: h.total, expiresMs: h.expiresMs });
    }
    for (const p of pardons) if (p.untilMs > now) this.#pardons.set(keyOf(p.jail, p.client), p.untilMs);
    for (const ban of bans) {
      if (ban.endMs <= now || ctx.isIgnored(ban.client)) continue;
      this.#bans.set(keyOf(ban.jail, ban.client), ban);
      ctx.onBan(ban, 'restored');
    }
  }

  #remember(jail: string, client: string, endMs: number, historyTimeMs: number): History {
    let h = this.#history.get(client);
    if (!h) {
      h = { jails: {}, total: 0, expiresMs: 0 };
      this.#history.set(client, h);
    }
    h.jails[jail] = (h.jails[jail] ?? 0) + 1;
    h.total++;
    h.expiresMs = Math.max(h.expiresMs, endMs + historyTimeMs);
    return h;
  }

  #earlierBans(jail: string, client: string, overall: boolean): number {
    const h = this.#history.get(client);
    if (!h || h.expiresMs <= this.#now) return 0;
    return overall ? h.total : (h.jails[jail] ?? 0);
  }

  #activeBan(key: string, now: number): Ban | undefined {
    const ban = this.#bans.get(key);
    return ban !== undefined && ban.endMs > now ? ban : undefined;
  }

  async reserve(input: FailureRule, client: string, id: string, holdMs: number): Promise<Reservation> {
    const now = this.#now;
    const key = keyOf(input.jail, client);
    this.#windows.set(input.jail, input.findTimeMs);
    const held = this.#activeBan(key, now);
    const maxRetry = this.#threshold(input, key, now);
    const count = this.#counters.count(key, now, input.findTimeMs);
    const open = this.#reservations.open(key, now);
    if (held) return { admitted: false, ban: held, count, inFlight: open, maxRetry };
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
    this.#reservations.remove(keyOf(input.jail, client), id);
    return failed ? this.recordFailure(input, client, jitterMs) : null;
  }

  /** The threshold in force for a key: the pardoned one while pardoned. */
  #threshold(input: FailureRule, key: string, now: number): number {
    const pardonUntil = this.#pardons.get(key);
    return pardonUntil !== undefined && pardonUntil > now ? input.pardonMaxRetry : input.maxRetry;
  }

  async recordFailure(input: FailureRule, client: string, jitterMs: number): Promise<FailureResult> {
    const now = this.#now;
    const key = keyOf(input.jail, client);
    this.#windows.set(input.jail, input.findTimeMs);
    const held = this.#activeBan(key, now);
    if (held) {
      return {
        count: 0,
        maxRetry: input.maxRetry,
        pardoned: false,
        ban: held,
        alreadyBanned: true,
        ...NO_BAN,
      };
    }
    const pardonUntil = this.#pardons.get(key);
    const pardoned = pardonUntil !== undefined && pardonUntil > now;
    const maxRetry = pardoned ? input.pardonMaxRetry : input.maxRetry;
    const count = this.#counters.add(key, now, input.findTimeMs, maxRetry);
    this.#totalsOf(input.jail).failed++;
    if (count < maxRetry) return { count, maxRetry, pardoned, ban: null, alreadyBanned: false, ...NO_BAN };

    // The threshold is reached: the window starts again, as fail2ban resets failures on a ban.
    this.#counters.delete(key);
    const overall = input.increment?.overallJails ?? false;
    const earlier = this.#earlierBans(input.jail, client, overall);
    const durationMs = nextBanTimeMs(input.banTimeMs, input.increment, earlier, jitterMs);
    const ban: Ban = {
      jail: input.jail,
      client,
      startMs: now,
      endMs: now + durationMs,
      banCount: earlier + 1,
      reason: input.reason,
      manual: false,
    };
    if (input.dryRun) {
      return {
        count,
        maxRetry,
        pardoned,
        ban: null,
        alreadyBanned: false,
        wouldBan: ban,
        recidive: null,
        recidiveDryRun: false,
      };
    }
    this.#bans.set(key, ban);
    this.#remember(input.jail, client, ban.endMs, input.historyTimeMs);
    this.#totalsOf(input.jail).banned++;
    const recidive = input.recidive ? this.#feedRecidive(input, client, now) : null;
    this.#changed();
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
    if (this.#activeBan(key, now)) return null;
    const count = this.#counters.add(key, now, r.findTimeMs, r.maxRetry);
    this.#totalsOf(r.jail).failed++;
    if (count < r.maxRetry) return null;
    this.#counters.delete(key);
    const ban: Ban = {
      jail: r.jail,
      client,
      startMs: now,
      endMs: now + r.banTimeMs,
      banCount: this.#earlierBans(r.jail, client, false) + 1,
      reason: `banned ${count} times within ${Math.round(r.findTimeMs / 1000)}s`,
      manual: false,
    };
    if (r.dryRun) return ban;
    this.#bans.set(key, ban);
    this.#remember(r.jail, client, ban.endMs, input.historyTimeMs);
    this.#totalsOf(r.jail).banned++;
    return ban;
  }

  async recordPardon(jail: string, client: string, forMs: number): Promise<void> {
    const key = keyOf(jail, client);
    this.#pardons.delete(key);
    // Pardons are capped like counters; losing one only lowers a threshold back to normal.
    if (this.#pardons.size >= this.#cap) {
      const oldest = this.#pardons.keys().next();
      if (!oldest.done) this.#pardons.delete(oldest.value);
    }
    this.#pardons.set(key, this.#now + forMs);
    this.#changed();
  }

  async ban(input: ManualBanInput): Promise<Ban> {
    const now = this.#now;
    const key = keyOf(input.jail, input.client);
    const ban: Ban = {
      jail: input.jail,
      client: input.client,
      startMs: now,
      endMs: now + input.durationMs,
      banCount: this.#earlierBans(input.jail, input.client, false) + 1,
      reason: input.reason,
      manual: true,
    };
    this.#bans.set(key, ban);
    this.#counters.delete(key);
    this.#remember(input.jail, input.client, ban.endMs, input.historyTimeMs);
    this.#totalsOf(input.jail).banned++;
    this.#changed();
    return ban;
  }

  async unban(client: string, jail?: string): Promise<Ban[]> {
    const now = this.#now;
    const lifted: Ban[] = [];
    const jails = jail === undefined ? [...new Set([...this.#bans.values()].map((b) => b.jail))] : [jail];
    for (const name of jails) {
      const key = keyOf(name, client);
      const ban = this.#bans.get(key);
      this.#counters.delete(key);
      this.#reservations.clear(key);
      if (ban && this.#bans.delete(key) && ban.endMs > now) lifted.push(ban);
    }
    if (lifted.length > 0) this.#changed();
    return lifted;
  }

  async unbanAll(jail?: string): Promise<Ban[]> {
    const now = this.#now;
    const lifted: Ban[] = [];
    for (const [key, ban] of this.#bans) {
      if (jail !== undefined && ban.jail !== jail) continue;
      this.#bans.delete(key);
      this.#counters.delete(key);
      if (ban.endMs > now) lifted.push(ban);
    }
    if (lifted.length > 0) this.#changed();
    return lifted;
  }

  async bans(jail?: string): Promise<Ban[]> {
    const now = this.#now;
    const out: Ban[] = [];
    for (const ban of this.#bans.values()) {
      if (ban.endMs > now && (jail === undefined || ban.jail === jail)) out.push(ban);
    }
    return out;
  }

  async status(jails: readonly string[]): Promise<Record<string, StoreJailStatus>> {
    const now = this.#now;
    const failed = new Map<string, number>();
    for (const key of this.#counters.live(now, (k) => this.#windowOf(k))) {
      const jail = key.slice(0, key.indexOf(SEP));
      failed.set(jail, (failed.get(jail) ?? 0) + 1);
    }
    const banned = new Map<string, number>();
    for (const ban of this.#bans.values())
      if (ban.endMs > now) banned.set(ban.jail, (banned.get(ban.jail) ?? 0) + 1);
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

  async sweep(): Promise<Ban[]> {
    const now = this.#now;
    const ended: Ban[] = [];
    for (const [key, ban] of this.#bans) {
      if (ban.endMs <= now) {
        this.#bans.delete(key);
        ended.push(ban);
      }
    }
    for (const [key, until] of this.#pardons) if (until <= now) this.#pardons.delete(key);
    for (const [client, h] of this.#history) if (h.expiresMs <= now) this.#history.delete(client);
    this.#counters.sweep(now, (k) => this.#windowOf(k));
    this.#reservations.sweep(now);
    if (ended.length > 0) this.#changed();
    return ended;
  }

  /** Counters held now, and how many were evicted at the cap (for tests and metrics). */
  get trackedClients(): { size: number; evictions: number; bans: number } {
    return { size: this.#counters.size, evictions: this.#counters.evictions, bans: this.#bans.size };
  }

  #snapshot(): Snapshot {
    const history: HistoryRecord[] = [];
    for (const [client, h] of this.#history)
      history.push({ client, jails: h.jails, total: h.total, expiresMs: h.expiresMs });
    const pardons = [...this.#pardons].map(([key, untilMs]) => {
      const at = key.indexOf(SEP);
      return { jail: key.slice(0, at), client: key.slice(at + 1), untilMs };
    });
    return { bans: [...this.#bans.values()], history, pardons };
  }

  #changed(): void {
    if (this.#persistFile === undefined || this.#closed) return;
    this.#dirty = true;
    if (this.#persistTimer || this.#writing) return;
    this.#persistTimer = setTimeout(() => this.#flush(), this.#persistDelayMs);
    this.#persistTimer.unref();
  }

  #flush(): void {
    this.#persistTimer = undefined;
    if (!this.#dirty || this.#persistFile === undefined) return;
    this.#dirty = false;
    const file = this.#persistFile;
    this.#writing = writeSnapshot(file, serialize(this.#snapshot(), this.#now))
      .catch((error: Error) => {
        this.#dirty = true;
        this.#ctx?.warn(
          'JK_WRN_PERSIST_WRITE',
          `The ban snapshot ${file} could not be written: ${error.message}.`,
          {
            file,
          },
        );
      })
      .finally(() => {
        this.#writing = undefined;
        if (this.#dirty && !this.#closed) this.#changed();
      });
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#persistTimer);
    this.#persistTimer = undefined;
    await this.#writing;
    if (this.#persistFile !== undefined && this.#ctx !== undefined) {
      try {
        writeSnapshotSync(this.#persistFile, serialize(this.#snapshot(), this.#now));
      } catch (error) {
        this.#ctx.warn(
          'JK_WRN_PERSIST_WRITE',
          `The ban snapshot ${this.#persistFile} could not be written: ${(error as Error).message}.`,
        );
      }
    }
  }
}

const NO_BAN = Object.freeze({ wouldBan: null, recidive: null, recidiveDryRun: false });

/**
 * Creates the embedded in-memory store, the default of {@link createJailkeeper}.
 * @example
 * const keeper = createJailkeeper({ jails, store: createMemoryStore({ persist: './bans.json' }) });
 */
export function createMemoryStore(options: MemoryStoreOptions = {}): Store & {
  readonly trackedClients: { size: number; evictions: number; bans: number };
} {
  return new MemoryStore(options);
}
