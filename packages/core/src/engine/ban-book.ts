import type { Clock } from '../clock.js';
import { formatDuration } from '../config/duration.js';
import type { Ban } from '../store/store.js';
import { BanIndex } from './ban-index.js';
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
 * Every ban and unban passes here once, so each is logged and emitted exactly once.
 */
export class BanBook {
  readonly index = new BanIndex();
  readonly #options: ResolvedOptions;
  readonly #clock: Clock;
  readonly #announcer: Announcer;
  readonly #connections: ConnectionTracker;
  /** Dry-run bans this process would have made, per jail. */
  readonly wouldBan = new Map<string, number>();

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
    return { ...ban, timeLeftMs: Math.max(0, ban.endMs - now), scope: this.scopeOf(ban.jail) };
  }

  #event(ban: Ban, origin: BanEvent['origin'], ip?: string): BanEvent {
    return {
      ...ban,
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
    const held = this.index.get(ban.client)?.find((e) => e.ban.jail === ban.jail);
    if (held && held.ban.startMs === ban.startMs && held.ban.endMs === ban.endMs) return;
    const appScope = this.scopeOf(ban.jail) === 'app';
    this.index.add(ban, appScope);
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
    }
    this.#announcer.emit('ban', this.#event(ban, origin, ip));
  }

  /** Removes a ban from the index and announces it; nothing when the index does not hold it. */
  lift(ban: Ban, cause: UnbanEvent['cause'], origin: UnbanEvent['origin']): void {
    const removed = this.index.remove(ban.client, ban.jail);
    if (removed === undefined) return;
    this.#announceUnban(removed.ban, cause, origin);
  }

  #announceUnban(ban: Ban, cause: UnbanEvent['cause'], origin: UnbanEvent['origin']): void {
    this.#announcer.logger?.info(
      { event: 'unban', jail: ban.jail, client: ban.client, cause },
      `jailkeeper: unbanned ${ban.client} in ${ban.jail} (${cause})`,
    );
    this.#announcer.emit('unban', { ...ban, cause, origin });
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

  /** Drops and announces the bans that have ended. */
  expire(): void {
    for (const entry of this.index.expire(this.#clock.now())) {
      this.#announceUnban(entry.ban, 'expired', 'local');
    }
  }

  /** The active bans in the index. */
  active(): Ban[] {
    const now = this.#clock.now();
    return [...this.index.values()].map((e) => e.ban).filter((b) => b.endMs > now);
  }

  /** Lifts, in the index, every ban of `client` (in `jail`, or all). */
  liftClient(client: string, jail: string | undefined): void {
    for (const entry of [...(this.index.get(client) ?? [])]) {
      if (jail === undefined || entry.ban.jail === jail) this.lift(entry.ban, 'manual', 'local');
    }
  }

  /** Lifts, in the index, every ban (in `jail`, or all). */
  liftAll(jail: string | undefined): void {
    for (const entry of [...this.index.values()]) {
      if (jail === undefined || entry.ban.jail === jail) this.lift(entry.ban, 'manual', 'local');
    }
  }
}
