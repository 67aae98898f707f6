import type { Clock } from '../clock.js';
import { formatDuration } from '../config/duration.js';
import type { TablePage } from '../store/ban-table.js';
import type { Ban } from '../store/store.js';
import { BanIndex, NO_SLOT } from './ban-index.js';
import type { ConnectionTracker } from './connections.js';
import type { Announcer, BanEvent, BanInfo, UnbanEvent } from './events.js';
import type { ResolvedOptions } from './options.js';

/** The request whose failure made a ban: its method, the route it reached (or its path) and status. */
export interface BanCause {
  readonly method: string;
  readonly route: string | null | undefined;
  readonly path: string;
  readonly status: number;
}

/**
 * The bans this process enforces, and their announcements: the local index that `check()` reads,
 * fed by this process's own failures, by operators, and by the store (restored or remote bans).
 * Every ban and unban passes here once, so each is logged and emitted exactly once. Its clock is
 * the store's (see `Store.clock`): bans are judged in the time they were written in.
 */
export class BanBook {
  readonly index = new BanIndex();
  readonly #options: ResolvedOptions;
  readonly #clock: Clock;
  readonly #announcer: Announcer;
  readonly #connections: ConnectionTracker;
  /** Dry-run bans this process would have made, per jail. */
  readonly wouldBan = new Map<string, number>();
  /** Called after a ban made here (origin `local`) entered the index: range bans watch them. */
  onLocalBan: ((ban: Ban) => void) | undefined;
  /** With range bans, the suffix of a network key (`/48`); `check()` looks networks up while `rangeBans > 0`. */
  rangeSuffix: string | undefined;
  /** Active range bans in the index. */
  rangeBans = 0;

  constructor(options: ResolvedOptions, clock: Clock, announcer: Announcer, connections: ConnectionTracker) {
    this.#options = options;
    this.#clock = clock;
    this.#announcer = announcer;
    this.#connections = connections;
  }

  /** `'jail'` for a ban that refuses only its jail's routes; `'app'` otherwise. */
  scopeOf(jailName: string): 'app' | 'jail' {
    return this.#options.jailsByName.get(jailName)?.scope ?? 'app';
  }

  /** A ban as operators see it, with its time left at `now`. */
  info(ban: Ban, now: number): BanInfo {
    // Written out, not spread from plain(ban): one object, not two, for every ban of every page
    // (a spread into a literal with more fields took most of a page's time at a million bans).
    return {
      jail: ban.jail,
      client: ban.client,
      startMs: ban.startMs,
      endMs: ban.endMs,
      banCount: ban.banCount,
      reason: ban.reason,
      manual: ban.manual,
      timeLeftMs: Math.max(0, ban.endMs - now),
      scope: this.scopeOf(ban.jail),
    };
  }

  #event(ban: Ban, origin: BanEvent['origin'], ip?: string): BanEvent {
    return {
      ...plain(ban),
      durationMs: ban.endMs - ban.startMs,
      scope: this.scopeOf(ban.jail),
      origin,
      ...(ip === undefined ? {} : { ip }),
    };
  }

  /**
   * Adds a ban to the index and announces it, unless the index already holds this very ban.
   * `cause`: the failure that made it (its request), for the log line.
   */
  apply(ban: Ban, origin: BanEvent['origin'], ip?: string, quiet = false, cause?: BanCause): void {
    if (ban.endMs <= this.#clock.now()) return;
    const appScope = this.scopeOf(ban.jail) === 'app';
    const change = this.index.apply(ban, appScope);
    if (change === 'same') return;
    if (change === 'added') this.#countRange(ban, 1);
    // A jail-scope ban refuses only some routes: the client's other traffic may go on.
    if (appScope && this.#options.closeConnectionsOnBan) this.#connections.close(ban.client);
    if (quiet) return;
    if (origin === 'local' || (origin === 'remote' && ban.manual)) {
      // A ban made here, or one an operator made elsewhere (the CLI, another instance's admin API).
      const by = origin === 'remote' ? ' by an operator elsewhere' : '';
      const on =
        cause === undefined ? '' : ` after ${cause.status} on ${cause.method} ${cause.route ?? cause.path}`;
      this.#announcer.logger?.info(
        {
          event: 'ban',
          jail: ban.jail,
          client: ban.client,
          endMs: ban.endMs,
          banCount: ban.banCount,
          reason: ban.reason,
          origin,
          ...(cause === undefined ? {} : cause),
        },
        `jailkeeper: banned ${ban.client} in ${ban.jail} for ${formatDuration(ban.endMs - ban.startMs)}${by} (${ban.reason})${on}`,
      );
      this.onLocalBan?.(ban);
    }
    // A million restored bans build no event objects when nobody listens.
    if (this.#announcer.listens('ban')) this.#announcer.emit('ban', this.#event(ban, origin, ip));
  }

  /** Removes a ban from the index and announces it; nothing when the index does not hold it. */
  lift(ban: Ban, cause: UnbanEvent['cause'], origin: UnbanEvent['origin']): void {
    const removed = this.index.remove(ban.client, ban.jail);
    if (removed === undefined) return;
    this.#countRange(removed, -1);
    this.#announceUnban(removed, cause, origin);
  }

  #countRange(ban: Ban, delta: 1 | -1): void {
    if (this.rangeSuffix !== undefined && ban.client.endsWith(this.rangeSuffix)) this.rangeBans += delta;
  }

  #announceUnban(ban: Ban, cause: UnbanEvent['cause'], origin: UnbanEvent['origin']): void {
    this.#announcer.logger?.info(
      { event: 'unban', jail: ban.jail, client: ban.client, cause },
      `jailkeeper: unbanned ${ban.client} in ${ban.jail} (${cause})`,
    );
    if (this.#announcer.listens('unban')) this.#announcer.emit('unban', { ...ban, cause, origin });
  }

  /** A dry run's ban: counted and announced, never enforced. */
  wouldHaveBanned(ban: Ban, ip: string): void {
    this.wouldBan.set(ban.jail, (this.wouldBan.get(ban.jail) ?? 0) + 1);
    this.#announcer.logger?.info(
      { event: 'wouldBan', jail: ban.jail, client: ban.client, durationMs: ban.endMs - ban.startMs },
      `jailkeeper: dry run: would ban ${ban.client} in ${ban.jail} for ${formatDuration(ban.endMs - ban.startMs)}`,
    );
    this.#announcer.emit('wouldBan', this.#event(ban, 'local', ip));
  }

  /**
   * Drops and announces the bans that have ended, at most `max`: the cost is what ends, not what
   * is held. Returns true when more are due (the sweep goes on after a turn of the event loop).
   */
  expire(max = Number.POSITIVE_INFINITY): boolean {
    const { bans, more } = this.index.expire(this.#clock.now(), max);
    for (const ban of bans) {
      this.#countRange(ban, -1);
      this.#announceUnban(ban, 'expired', 'local');
    }
    return more;
  }

  /** The active bans in the index, built one by one as they are read. */
  *active(): IterableIterator<Ban> {
    const now = this.#clock.now();
    for (const ban of this.index.values()) if (ban.endMs > now) yield ban;
  }

  /** One page of the active bans (see `BanTable.page`). */
  page(after: number | undefined, limit: number, jail?: string): TablePage {
    return this.index.page(after, limit, this.#clock.now(), jail);
  }

  /** Lifts, in the index, every ban of `client` (in `jail`, or all). */
  liftClient(client: string, jail: string | undefined): void {
    const held: Ban[] = [];
    for (let s = this.index.head(client); s !== NO_SLOT; s = this.index.next(s)) {
      if (jail === undefined || this.index.jail(s) === jail) held.push(this.index.ban(s));
    }
    for (const ban of held) this.lift(ban, 'manual', 'local');
  }

  /** Lifts, in the index, every ban (in `jail`, or all). */
  liftAll(jail: string | undefined): void {
    const held = [...this.index.values()].filter((b) => jail === undefined || b.jail === jail);
    for (const ban of held) this.lift(ban, 'manual', 'local');
  }
}

/** A ban's own fields, whatever else the object carries. */
function plain(ban: Ban): Ban {
  return {
    jail: ban.jail,
    client: ban.client,
    startMs: ban.startMs,
    endMs: ban.endMs,
    banCount: ban.banCount,
    reason: ban.reason,
    manual: ban.manual,
  };
}
