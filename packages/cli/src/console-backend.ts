import type { ResolvedOptions } from '@jailkeeper/core/operator';
import type { Ban } from '@jailkeeper/core/store';
import {
  type ConsoleBackend,
  createBanPager,
  type FeedEvent,
  HealthTracker,
  type JailOverview,
} from '@jailkeeper/ops';
import type { BanRow } from './backend.js';
import type { RedisBackend } from './redis-backend.js';

/** Relays the store's ban events to the console once it listens. */
export interface FleetEvents {
  onBan(ban: Ban): void;
  onUnban(ban: Ban): void;
}

/** A fresh relay: hand it to `RedisBackend.open`, then to {@link fleetBackend}. */
export function fleetEvents(): FleetEvents & { listener?: FleetEvents } {
  const relay: FleetEvents & { listener?: FleetEvents } = {
    onBan: (ban) => relay.listener?.onBan(ban),
    onUnban: (ban) => relay.listener?.onUnban(ban),
  };
  return relay;
}

/** The bans table is taken again at least this often: expiries are not announced by the store. */
const REFRESH_MS = 10_000;
const HEALTH_MS = 1000;

function ban(row: BanRow): Ban {
  return {
    jail: row.jail,
    client: row.client,
    startMs: row.startMs,
    endMs: row.endMs ?? Number.POSITIVE_INFINITY,
    banCount: row.banCount,
    reason: row.reason,
    manual: row.manual,
  };
}

/**
 * The console's view of a whole fleet: the shared Redis store. Bans, counts and the ignore list
 * are the store's; the feed and the charts follow the bans and unbans the instances publish
 * (failures and refusals are counted by each instance: its own console has them). With a config
 * file, the jails' thresholds are shown too.
 */
export function fleetBackend(
  redis: RedisBackend,
  events: FleetEvents & { listener?: FleetEvents },
  config: ResolvedOptions | undefined,
): ConsoleBackend {
  const now = () => Date.now();
  const pager = createBanPager(() => redis.rawBans(), { now });
  const health = new HealthTracker(now);
  const origins = new Map<string, string>();
  const timers: NodeJS.Timeout[] = [];
  // The store does not hear its own messages: a ban or unban made from this console is fed and
  // charted here, as the instances' are when they arrive (origin "local", as an app's own console says).
  let own: { onBan(ban: Ban, origin: string): void; onUnban(ban: Ban, origin: string): void } | undefined;

  return {
    where: `every instance through ${redis.where}`,
    charted: ['bans', 'unbans'],
    pager,
    now,
    async jails() {
      const names = await redis.jailNames();
      const counts = await redis.jailCounts(names);
      return names.map((name): JailOverview => {
        const jail = config?.jailsByName.get(name);
        const recidive = name === 'recidive' ? config?.recidive : null;
        const c = counts[name];
        return {
          name,
          dryRun: jail?.dryRun ?? recidive?.dryRun ?? false,
          scope: jail?.scope ?? 'app',
          maxRetry: jail?.maxRetry ?? recidive?.maxRetry ?? null,
          findTimeMs: jail?.findTimeMs ?? recidive?.findTimeMs ?? null,
          banTimeMs: (() => {
            const ms = jail?.banTimeMs ?? recidive?.banTimeMs;
            return ms === undefined || !Number.isFinite(ms) ? null : ms;
          })(),
          maxBanTimeMs: jail?.increment?.maxTimeMs ?? null,
          known: name === 'manual' || jail !== undefined || (recidive !== null && recidive !== undefined),
          currentlyFailed: c?.currentlyFailed ?? 0,
          totalFailed: null, // totals are each instance's (its metrics)
          currentlyBanned: c?.currentlyBanned ?? 0,
          totalBanned: null,
          refused: null,
          wouldBan: null,
          held: null,
        };
      });
    },
    health() {
      health.observe(redis.degraded);
      return health.report('redis', false);
    },
    jailNames: () => redis.jailNames(),
    originOf(b) {
      return origins.get(`${b.jail}\u0000${b.client}`);
    },
    scopeOf(jail) {
      return config?.jailsByName.get(jail)?.scope ?? 'app';
    },
    async ban(address, options) {
      const made = ban(await redis.ban(address, options));
      own?.onBan(made, 'local');
      return made;
    },
    async unban(address, jail) {
      const lifted = (await redis.unban(address, jail)).map(ban);
      for (const b of lifted) own?.onUnban(b, 'local');
      return lifted;
    },
    ignoreList: () => redis.ignoreList(),
    ignoreAdd: (entry) => redis.ignoreAdd(entry),
    ignoreRemove: (entry) => redis.ignoreRemove(entry),
    attach({ feed, timeline }) {
      const publish = (event: Omit<FeedEvent, 'id' | 'atMs'>) => feed.publish(event);
      own = {
        onBan(b, origin) {
          origins.set(`${b.jail}\u0000${b.client}`, origin);
          pager.invalidate();
          timeline.record('bans', b.jail);
          publish({
            type: 'ban',
            jail: b.jail,
            client: b.client,
            reason: b.reason,
            origin: b.manual ? 'manual' : origin,
            banCount: b.banCount,
            endMs: Number.isFinite(b.endMs) ? b.endMs : null,
          });
        },
        onUnban(b, origin) {
          origins.delete(`${b.jail}\u0000${b.client}`);
          pager.invalidate();
          timeline.record('unbans', b.jail);
          publish({ type: 'unban', jail: b.jail, client: b.client, cause: 'manual', origin });
        },
      };
      const relay = own;
      events.listener = {
        onBan: (b) => relay.onBan(b, 'remote'),
        onUnban: (b) => relay.onUnban(b, 'remote'),
      };
      timers.push(
        setInterval(() => pager.invalidate(), REFRESH_MS).unref(),
        setInterval(() => {
          const change = health.observe(redis.degraded);
          if (change !== undefined) publish({ type: 'store', state: change, store: 'redis' });
        }, HEALTH_MS).unref(),
      );
    },
    detach() {
      events.listener = undefined;
      own = undefined;
      for (const timer of timers.splice(0)) clearInterval(timer);
    },
  };
}
