import type {
  BanEvent,
  BlockedEvent,
  FailureEvent,
  Jailkeeper,
  ManualBanOptions,
  UnbanEvent,
} from '@jailkeeper/core';
import { jailNames } from '@jailkeeper/core/operator';
import { localBanPager } from '../ban-pager.js';
import { type ConsoleBackend, HealthTracker, type JailOverview } from './backend.js';
import type { Feed } from './feed.js';
import type { Timeline } from './timeline.js';

/** Origins kept for the bans table; past it the oldest are forgotten (shown as unknown). */
const MAX_ORIGINS = 200_000;
const SAMPLE_MS = 5000;
/** Restored bans arrive one event each, all at startup: they are summed into one feed line. */
const RESTORE_LINE_MS = 250;
const HEALTH_MS = 1000;

/**
 * The console's view of one keeper, built on its public API only: the local ban index for the
 * table (no store call per page), the store's counts for the overview, events for the feed and the
 * charts, and `keeper.counters()` for refusals (so a refused request costs nothing extra unless a
 * live feed is open).
 */
export function keeperBackend(keeper: Jailkeeper): ConsoleBackend {
  const now = () => keeper.clock.now();
  const pager = localBanPager(keeper, { now });
  const health = new HealthTracker(now);
  const origins = new Map<string, string>();
  const names = jailNames(keeper.options);
  const stops: Array<() => void> = [];
  let sampleRefusals: (() => void) | undefined;

  const on = <K extends 'ban' | 'unban' | 'failure' | 'wouldBan' | 'blocked' | 'storeError'>(
    name: K,
    listener: (...args: never[]) => void,
  ) => {
    keeper.on(name, listener as never);
    stops.push(() => keeper.off(name, listener as never));
  };

  return {
    where: `this instance (${keeper.store.name} store)`,
    charted: ['failures', 'bans', 'refusals', 'unbans'],
    pager,
    now,
    async jails() {
      const counts = await keeper.store.status(names);
      const { blocked, wouldBan } = keeper.counters();
      const held = keeper.attempts().held;
      const recidive = keeper.options.recidive;
      return names.map((name): JailOverview => {
        const jail = keeper.options.jailsByName.get(name);
        const c = counts[name];
        const thresholds =
          jail !== undefined
            ? {
                dryRun: jail.dryRun,
                scope: jail.scope,
                maxRetry: jail.maxRetry,
                findTimeMs: jail.findTimeMs,
                banTimeMs: Number.isFinite(jail.banTimeMs) ? jail.banTimeMs : null,
                maxBanTimeMs: jail.increment?.maxTimeMs ?? null,
                known: true,
              }
            : name === 'recidive' && recidive !== null
              ? {
                  dryRun: recidive.dryRun,
                  scope: 'app' as const,
                  maxRetry: recidive.maxRetry,
                  findTimeMs: recidive.findTimeMs,
                  banTimeMs: Number.isFinite(recidive.banTimeMs) ? recidive.banTimeMs : null,
                  maxBanTimeMs: null,
                  known: true,
                }
              : // the manual jail: bans by hand, no thresholds
                {
                  dryRun: false,
                  scope: 'app' as const,
                  maxRetry: null,
                  findTimeMs: null,
                  banTimeMs: null,
                  maxBanTimeMs: null,
                  known: true,
                };
        return {
          name,
          ...thresholds,
          currentlyFailed: c?.currentlyFailed ?? 0,
          totalFailed: c?.totalFailed ?? 0,
          currentlyBanned: c?.currentlyBanned ?? 0,
          totalBanned: c?.totalBanned ?? 0,
          refused: blocked[name] ?? 0,
          wouldBan: wouldBan[name] ?? 0,
          held: held[name] ?? 0,
        };
      });
    },
    health() {
      health.observe(keeper.store.degraded === true);
      return health.report(keeper.store.name, keeper.store.refusing === true);
    },
    async jailNames() {
      return names;
    },
    originOf(ban) {
      return origins.get(`${ban.jail}\u0000${ban.client}`);
    },
    scopeOf(jail) {
      return keeper.options.jailsByName.get(jail)?.scope ?? (names.includes(jail) ? 'app' : null);
    },
    ban(address, options) {
      // The duration is the operator's text: validated by ban() (JK_ERR_INVALID_DURATION).
      return keeper.ban(address, options as ManualBanOptions);
    },
    unban(address, jail) {
      return keeper.unban(address, { jail });
    },
    async ignoreList() {
      return keeper.ignore.list();
    },
    ignoreAdd(entry) {
      return keeper.ignore.addShared(entry);
    },
    ignoreRemove(entry) {
      return keeper.ignore.removeShared(entry);
    },
    sample() {
      sampleRefusals?.();
    },
    attach({ feed, timeline }: { feed: Feed; timeline: Timeline }) {
      // A restored ban is one the store already held (a restart, a snapshot): not a ban made now.
      // It is neither charted nor a "ban" line, so that the feed's ban lines and the charts'
      // totals count the same bans; the restore is one line, per jail.
      let restored: Record<string, number> = {};
      let restoreTimer: NodeJS.Timeout | undefined;
      const flushRestored = () => {
        restoreTimer = undefined;
        const jails = restored;
        restored = {};
        const count = Object.values(jails).reduce((a, b) => a + b, 0);
        if (count > 0) feed.publish({ type: 'restored', count, jails });
      };
      stops.push(() => {
        clearTimeout(restoreTimer);
        restoreTimer = undefined;
      });
      on('ban', (event: BanEvent) => {
        const key = `${event.jail}\u0000${event.client}`;
        origins.delete(key);
        if (origins.size >= MAX_ORIGINS) origins.delete(origins.keys().next().value as string);
        origins.set(key, event.origin);
        pager.invalidate();
        if (event.origin === 'restored') {
          restored[event.jail] = (restored[event.jail] ?? 0) + 1;
          restoreTimer ??= setTimeout(flushRestored, RESTORE_LINE_MS).unref();
          return;
        }
        timeline.record('bans', event.jail);
        feed.publish({
          type: 'ban',
          jail: event.jail,
          client: event.client,
          reason: event.reason,
          origin: event.manual ? 'manual' : event.origin,
          banCount: event.banCount,
          endMs: Number.isFinite(event.endMs) ? event.endMs : null,
        });
      });
      on('unban', (event: UnbanEvent) => {
        origins.delete(`${event.jail}\u0000${event.client}`);
        pager.invalidate();
        timeline.record('unbans', event.jail);
        feed.publish({
          type: 'unban',
          jail: event.jail,
          client: event.client,
          cause: event.cause,
          origin: event.origin,
        });
      });
      on('failure', (event: FailureEvent) => timeline.record('failures', event.jail));
      on('wouldBan', (event: BanEvent) =>
        feed.publish({ type: 'wouldBan', jail: event.jail, client: event.client, reason: event.reason }),
      );
      on('storeError', (event: { operation: string; error: unknown }) =>
        health.error(event.operation, event.error),
      );
      // Refusals for the charts: sampled from the keeper's own counters, nothing per request.
      let last = keeper.counters().blocked;
      sampleRefusals = () => {
        const blocked = keeper.counters().blocked;
        for (const [jail, count] of Object.entries(blocked)) {
          timeline.record('refusals', jail, count - (last[jail] ?? 0));
        }
        last = blocked;
      };
      const sample = setInterval(sampleRefusals, SAMPLE_MS).unref();
      const watchHealth = setInterval(() => {
        const change = health.observe(keeper.store.degraded === true);
        if (change !== undefined) feed.publish({ type: 'store', state: change, store: keeper.store.name });
      }, HEALTH_MS).unref();
      stops.push(
        () => clearInterval(sample),
        () => clearInterval(watchHealth),
      );
    },
    watchRefusals(onRefusal) {
      const listener = (event: BlockedEvent) => onRefusal(event.jail, event.client);
      keeper.on('blocked', listener);
      return () => keeper.off('blocked', listener);
    },
    detach() {
      sampleRefusals = undefined;
      for (const stop of stops.splice(0)) stop();
    },
  };
}
