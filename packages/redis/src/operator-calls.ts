import type {
  Ban,
  BanPage,
  BanPageQuery,
  ManualBanInput,
  StoreContext,
  StoreJailStatus,
} from '@jailkeeper/core/store';
import { fromRedis, listOf, storableReason, versionOf } from './codec.js';
import { SHARDS, shardOf } from './keys.js';
import { type Parts, totalsOf } from './parts.js';
import type { JailRegistry } from './registry.js';

/** Shards read per pipeline while paging: empty shards cost one short reply each. */
const SHARDS_PER_READ = 16;
/** Bans counted between two turns of the event loop. */
const COUNT_SLICE = 2000;
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

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
   * A page of at most `limit` active bans, in the order (shard, client, jail). The cursor names
   * the last ban returned (`<shard>/<jail>/<client>`; jail names hold no `/`), so a page ends anywhere, even inside a
   * shard or between a client's bans; a shard is read whole (one short reply, a few hundred bans
   * even at a million) and what the page cannot hold is read again by the next page. Shards are
   * read one, then two, four... at a time, up to SHARDS_PER_READ, until the page is full. While
   * degraded: the bans this instance enforces. The first page starts with the bans made here
   * while Redis was away and not yet written back (up to `limit`).
   */
  async bansPage(query: BanPageQuery): Promise<BanPage> {
    const { link, fallback, sync, io } = this.#p;
    if (link.degraded) return this.#enforcedPage(query);
    const limit = Math.max(1, Math.floor(query.limit));
    const from = parseCursor(query.after);
    if (from === null) return { bans: [] };
    // Bans made here while Redis was away and not yet written back: on the first page only.
    const out: Ban[] =
      query.after === undefined ? (await fallback.local.bans(query.jail)).slice(0, limit) : [];
    let last = '0/'; // the cursor after the last ban in `out`
    const now = sync.clock.now();
    let n = from.n;
    let width = 1;
    while (n < SHARDS) {
      const take: number[] = [];
      for (let m = n; m < Math.min(SHARDS, n + width); m++) take.push(m);
      width = Math.min(SHARDS_PER_READ, width * 2);
      const read: Array<{ shard: number; bans: Ban[] }> = [];
      await this.#operate('bans', () =>
        io.read(take, ({ n: shard, bans }) => {
          read.push({
            shard,
            bans: bans.filter((b) => b.endMs > now && (query.jail === undefined || b.jail === query.jail)),
          });
        }),
      );
      // In shard order: a cluster answers by node, not in the order the shards were asked for.
      read.sort((a, b) => a.shard - b.shard);
      for (const { shard, bans } of read) {
        bans.sort(byClientThenJail);
        for (const ban of bans) {
          if (shard === from.n && from.client !== undefined && !isAfter(ban, from)) continue;
          if (out.length === limit) return { bans: out, next: last };
          out.push(ban);
          last = `${shard}/${ban.jail}/${ban.client}`;
        }
        n = shard + 1;
      }
    }
    return { bans: out };
  }

  /**
   * While Redis is away: the bans this instance enforces (the fleet's it knew, and its own since),
   * from the keeper's index, paged by a cursor into it (by position where it offers no pages).
   */
  #enforcedPage(query: BanPageQuery): BanPage {
    const ctx = this.#ctx();
    if (ctx?.activeBansPage !== undefined) {
      // A cursor into the index (its slot): each page costs its own bans, not the walk before it.
      const after = query.after === undefined ? undefined : Number(query.after);
      const page = ctx.activeBansPage(Number.isInteger(after) ? after : undefined, query.limit, query.jail);
      return page.next === undefined ? { bans: page.bans } : { bans: page.bans, next: String(page.next) };
    }
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

  #bannedPerJail(): Promise<Map<string, number>> {
    const ctx = this.#ctx();
    // The keeper's own counts, per jail: O(jails). Walking its million bans for a count built a
    // million objects per status() (4 to 11 s, GC pauses of 116 to 293 ms, load 7 to 13).
    const counts = ctx?.banCounts?.();
    if (counts !== undefined) return Promise.resolve(new Map(counts));
    return countPerJail(ctx?.activeBans?.(), this.#p.sync.clock.now(), (after) =>
      this.bansPage({ after, limit: 5000 }),
    );
  }

  async status(jails: readonly string[]): Promise<Record<string, StoreJailStatus>> {
    const banned = await this.#bannedPerJail();
    const failing = this.#p.link.degraded ? new Map<string, number>() : await this.#registry.failing();
    const out: Record<string, StoreJailStatus> = {};
    for (const jail of jails) {
      const totals = this.#p.totals.get(jail);
      out[jail] = {
        currentlyFailed: failing.get(jail) ?? 0,
        totalFailed: totals?.failed ?? 0,
        currentlyBanned: banned.get(jail) ?? 0,
        totalBanned: totals?.banned ?? 0,
      };
    }
    return out;
  }
}

/**
 * Active bans per jail. Counted in the bans this instance enforces (its copy of the fleet's,
 * loaded at start and kept in step with the shards' versions), a slice at a time with a turn of
 * the event loop between slices: reading every shard from Redis for a count took 24 s and built
 * every ban at a million. Without that copy (a store used outside a keeper), the pages are counted.
 */
async function countPerJail(
  held: Iterable<Ban> | undefined,
  now: number,
  page: (after: string | undefined) => Promise<BanPage>,
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (held === undefined) {
    let after: string | undefined;
    do {
      const next = await page(after);
      for (const ban of next.bans) out.set(ban.jail, (out.get(ban.jail) ?? 0) + 1);
      after = next.next;
    } while (after !== undefined);
    return out;
  }
  let seen = 0;
  for (const ban of held) {
    if (ban.endMs > now) out.set(ban.jail, (out.get(ban.jail) ?? 0) + 1);
    if (++seen % COUNT_SLICE === 0) await turn();
  }
  return out;
}

/** Where a page starts: at shard `n`, after the ban (`jail`, `client`) when given. */
interface Cursor {
  readonly n: number;
  readonly jail?: string;
  readonly client?: string;
}

/**
 * A page's cursor: `<shard>/` (from the start of that shard), `<shard>/<jail>/<client>` (after
 * that ban), or the older form `<shard>` (after that whole shard). Null: not a cursor of ours.
 */
function parseCursor(after: string | undefined): Cursor | null {
  if (after === undefined) return { n: 0 };
  const slash = after.indexOf('/');
  const n = Number(slash === -1 ? after : after.slice(0, slash));
  if (!Number.isInteger(n) || n < 0 || n >= SHARDS) return null;
  if (slash === -1) return { n: n + 1 };
  const rest = after.slice(slash + 1);
  if (rest === '') return { n };
  const second = rest.indexOf('/');
  if (second === -1) return null;
  return { n, jail: rest.slice(0, second), client: rest.slice(second + 1) };
}

function byClientThenJail(a: Ban, b: Ban): number {
  if (a.client !== b.client) return a.client < b.client ? -1 : 1;
  return a.jail < b.jail ? -1 : a.jail > b.jail ? 1 : 0;
}

/** True for a ban after the cursor's, in its shard's order. */
function isAfter(ban: Ban, from: Cursor): boolean {
  const client = from.client as string;
  if (ban.client !== client) return ban.client > client;
  return ban.jail > (from.jail as string);
}
