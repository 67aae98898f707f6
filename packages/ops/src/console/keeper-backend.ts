import {
  type BanEvent,
  type BlockedEvent,
  type FailureEvent,
  type Jailkeeper,
  jailNames,
  type ManualBanOptions,
  type UnbanEvent,
} from '@jailkeeper/core';
import { createBanPager, localBans } from '../ban-pager.js';
import { type ConsoleBackend, HealthTracker, type JailOverview } from './backend.js';
import type { Feed } from './feed.js';
import type { Timeline } from './timeline.js';

/** Origins kept for the bans table; past it the oldest are forgotten (shown as unknown). */
const MAX_ORIGINS = 200_000;
const SAMPLE_MS = 5000;
const HEALTH_MS = 1000;

/**
 * The console's view of one keeper, built on its public API only: the local ban index for the
 * table (no store call per page), the store's counts for the overview, events for the feed and the
 * charts, and `keeper.counters()` for refusals (so a refused request costs nothing extra unless a
 * live feed is open).
 */
export function keeperBackend(keeper: Jailkeeper): ConsoleBackend {
  const now = () => keeper.clock.now();
  const pager = createBanPager(() => localBans(keeper), { now });
  const health = new HealthTracker(now);
  const origins = new Map<string, string>();
  const names = jailNames(keeper.options);
  const stops: Array<() => void> = [];

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
    attach({ feed, timeline }: { feed: Feed; timeline: Timeline }) {
      on('ban', (event: BanEvent) => {
        const key = `${event.jail}\u0000${event.client}`;
        origins.delete(key);
        if (origins.size >= MAX_ORIGINS) origins.delete(origins.keys().next().value as string);
        origins.set(key, event.origin);
        pager.invalidate();
        if (event.origin !== 'restored') timeline.record('bans', event.jail);
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
      const sample = setInterval(() => {
        const blocked = keeper.counters().blocked;
        for (const [jail, count] of Object.entries(blocked)) {
          timeline.record('refusals', jail, count - (last[jail] ?? 0));
        }
        last = blocked;
      }, SAMPLE_MS).unref();
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
      for (const stop of stops.splice(0)) stop();
    },
  };
}
