import type {
  Ban,
  BanPage,
  BanPageQuery,
  ManualBanInput,
  StoreContext,
  StoreJailStatus,
} from '@jailkeeper/core';
import { fromRedis, listOf, storableReason, versionOf } from './codec.js';
import { SHARDS, shardOf } from './keys.js';
import { type Parts, totalsOf } from './parts.js';
import type { JailRegistry } from './registry.js';

/** Shards read per pipeline while paging: empty shards cost one short reply each. */
const SHARDS_PER_READ = 16;

/**
 * What operators do through the store (ban, unban, list, status): a failure is reported, degrades
 * the store, and is thrown (an operator's call is never answered from a guess). Lists are read in
 * pages of whole shards; unbanAll lifts a shard per call.
 */
export class OperatorCalls {
  readonly #p: Parts;
  readonly #registry: JailRegistry;
  readonly #ctx: () => StoreContext | undefined;

  constructor(parts: Parts, registry: JailRegistry, ctx: () => StoreContext | undefined) {
    this.#p = parts;
    this.#registry = registry;
    this.#ctx = ctx;
  }

  /** The jail names this keeper answers to (their counters are cleared by an unban of every jail). */
  #jails(): readonly string[] {
    return this.#ctx()?.jails ?? [];
  }

  /** An operator's call, with the bulk deadline: an operator waits a little rather than degrade. */
  async #operate<T>(operation: string, run: () => Promise<T>, timeoutMs = this.#p.bulkMs): Promise<T> {
    try {
      return await this.#p.link.call(run, timeoutMs);
    } catch (error) {
      this.#p.link.fail(operation, error);
      throw error;
    }
  }

  async ban(input: ManualBanInput): Promise<Ban> {
    const { link, keys, fallback } = this.#p;
    if (link.degraded) return fallback.local.ban(input);
    const n = shardOf(input.client);
    const text = await this.#operate('ban', () =>
      this.#p.lines.bulk.jkManualBan(
        keys.bans(n),
        keys.version(n),
        keys.history(input.client),
        keys.failures(input.client, input.jail),
        input.jail,
        input.client,
        input.durationMs === Number.POSITIVE_INFINITY ? -1 : input.durationMs,
        storableReason(input.reason),
        input.historyTimeMs,
        keys.channel,
        this.#p.origin,
      ),
    );
    const out = JSON.parse(text) as { ban: Ban; epoch?: unknown; seqs?: unknown };
    this.#p.sync.note(n, versionOf(out));
    totalsOf(this.#p, input.jail).banned++;
    return fromRedis(out.ban);
  }

  async unban(client: string, jail?: string): Promise<Ban[]> {
    const { link, keys, fallback } = this.#p;
    const local = await fallback.local.unban(client, jail);
    if (link.degraded) return local;
    const n = shardOf(client);
    const text = await this.#operate('unban', () =>
      this.#p.lines.bulk.jkUnban(
        keys.bans(n),
        keys.version(n),
        client,
        jail ?? '',
        keys.channel,
        this.#p.origin,
        keys.base(n),
        ...(jail === undefined ? this.#jails() : []),
      ),
    );
    const out = JSON.parse(text) as { lifted: unknown; epoch?: unknown; seqs?: unknown };
    this.#p.sync.note(n, versionOf(out));
    return [...local, ...listOf<Ban>(out.lifted).map(fromRedis)];
  }

  async unbanAll(jail?: string): Promise<Ban[]> {
    const { link, keys, fallback } = this.#p;
    const lifted = await fallback.local.unbanAll(jail);
    if (link.degraded) return lifted;
    const versions = await this.#operate('unbanAll', () => this.#p.sync.versions());
    for (let n = 0; n < SHARDS; n++) {
      if (versions[n] === null) continue; // no shard, no ban
      const text = await this.#operate('unbanAll', () =>
        this.#p.lines.bulk.jkUnbanShard(
          keys.bans(n),
          keys.version(n),
          jail ?? '',
          keys.channel,
          this.#p.origin,
          keys.base(n),
        ),
      );
      const out = JSON.parse(text) as { lifted: unknown; epoch?: unknown; seqs?: unknown };
      this.#p.sync.note(n, versionOf(out));
      for (const ban of listOf<Ban>(out.lifted)) lifted.push(fromRedis(ban));
    }
    return lifted;
  }

  /** Every active ban, a page at a time. */
  async bans(jail?: string): Promise<Ban[]> {
    const out: Ban[] = [];
    let after: string | undefined;
    do {
      const page = await this.bansPage({ jail, after, limit: 5000 });
      for (const ban of page.bans) out.push(ban);
      after = page.next;
    } while (after !== undefined);
    return out;
  }

  /**
   * A page of the active bans: whole shards after the cursor (a client's bans live in one shard,
   * so they are never split), read a pipeline of shards at a time until about `limit` bans.
   * While degraded: the bans this instance enforces.
   */
  async bansPage(query: BanPageQuery): Promise<BanPage> {
    const { link, fallback, sync, io } = this.#p;
    if (link.degraded) return this.#enforcedPage(query);
    const local = query.after === undefined ? await fallback.local.bans(query.jail) : [];
    let n = query.after === undefined ? 0 : Number(query.after) + 1;
    if (!Number.isInteger(n) || n < 0 || n >= SHARDS) return { bans: local };
    const out = local;
    const now = sync.clock.now();
    while (n < SHARDS && out.length < query.limit) {
      const take: number[] = [];
      for (let m = n; m < Math.min(SHARDS, n + SHARDS_PER_READ); m++) take.push(m);
      n += take.length;
      await this.#operate('bans', () =>
        io.read(take, ({ bans }) => {
          for (const ban of bans)
            if (ban.endMs > now && (query.jail === undefined || ban.jail === query.jail)) out.push(ban);
        }),
      );
    }
    return n < SHARDS ? { bans: out, next: String(n - 1) } : { bans: out };
  }

  /**
   * While Redis is away: the bans this instance enforces (the fleet's it knew, and its own since),
   * from the keeper's index, paged by position.
   */
  #enforcedPage(query: BanPageQuery): BanPage {
    const from = query.after === undefined ? 0 : Number(query.after);
    const bans: Ban[] = [];
    let at = 0;
    for (const ban of this.#ctx()?.activeBans?.() ?? []) {
      if (query.jail !== undefined && ban.jail !== query.jail) continue;
      if (at++ < from) continue;
      if (bans.length === query.limit) return { bans, next: String(from + bans.length) };
      bans.push(ban);
    }
    return { bans };
  }

  async status(jails: readonly string[]): Promise<Record<string, StoreJailStatus>> {
    const bans = await this.bans();
    const failing = this.#p.link.degraded ? new Map<string, number>() : await this.#registry.failing();
    const out: Record<string, StoreJailStatus> = {};
    for (const jail of jails) {
      const totals = this.#p.totals.get(jail);
      out[jail] = {
        currentlyFailed: failing.get(jail) ?? 0,
        totalFailed: totals?.failed ?? 0,
        currentlyBanned: bans.filter((b) => b.jail === jail).length,
        totalBanned: totals?.banned ?? 0,
      };
    }
    return out;
  }
}
