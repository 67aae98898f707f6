import { performance } from 'node:perf_hooks';
import type { Ban } from '@jailkeeper/core/store';
import type { Cluster } from 'ioredis';
import {
  decodeBans,
  decodeShard,
  shardWhole,
  storableReason,
  TextPool,
  toRedisEnd,
  type Versioned,
  versionOf,
} from './codec.js';
import { type Client, isCluster, type Lines, type Pipeline } from './commands.js';
import { type Keys, SHARD_SLOTS, SHARDS } from './keys.js';
import type { Link } from './link.js';

/** Shards per pipeline (version reads, digests). */
const BATCH = 16;
/**
 * Reads: shards per pipeline, and pipelines asked for ahead of the one being decoded. Redis reads
 * the next shards while this process decodes the last ones (a million bans: about 1.2 s of Redis
 * and 3.5 to 4.5 s here, overlapped, not added); at most READ_BATCH * WINDOW shard reads (about
 * 1.2 ms each at a million bans) wait at Redis ahead of another client's call, and as few replies
 * wait here, alive through the collector's scavenges.
 */
const READ_BATCH = 4;
const WINDOW = 2;
/**
 * A turn of the event loop after SLICE bans, or sooner once a slice has run SLICE_MS (a shard is
 * the unit: about a thousand bans at a million). The first shards run before the decoder is
 * compiled, ten times slower: 3 shards held the loop 100-125 ms at the start of a load.
 */
const SLICE = 2000;
const SLICE_MS = 8;
/** Bans decoded between two looks at the clock. */
const PART = 250;
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
const DONE: Promise<[Error | null, unknown][]> = Promise.resolve([]);

/** A shard as read: its version (`<epoch>:<seq>`, null when the shard does not exist) and its bans. */
export interface ShardRead {
  readonly n: number;
  readonly version: string | null;
  /** Every ban in the shard, ended ones included (the caller judges them by its clock). */
  readonly bans: Ban[];
}

/**
 * Reads and writes whole shards, in batches: pipelines of BATCH shards (grouped by Cluster node),
 * each with the bulk deadline (reads: WINDOW ahead). Never one call per ban.
 */
export class ShardIO {
  readonly #lines: Lines;
  readonly #keys: Keys;
  readonly #link: Link;
  readonly #bulkMs: number;
  readonly #pool = new TextPool();

  constructor(lines: Lines, keys: Keys, link: Link, bulkMs: number) {
    this.#lines = lines;
    this.#keys = keys;
    this.#link = link;
    this.#bulkMs = bulkMs;
  }

  /** The bulk connection: never the hot path's. */
  get #client(): Client {
    return this.#lines.bulk;
  }

  /**
   * The 1,024 versions, and Redis' TIME with the moment it was asked and answered (for the clock
   * offset): on a single Redis one round trip (TIME and one MGET).
   */
  async versions(): Promise<{ versions: (string | null)[]; time?: [string, string]; sent: number }> {
    const keys = Array.from({ length: SHARDS }, (_, n) => this.#keys.version(n));
    const sent = Date.now();
    if (!isCluster(this.#client)) {
      const replies = await this.#link.call(
        () =>
          this.#client
            .pipeline()
            .time()
            .mget(...keys)
            .exec(),
        this.#bulkMs,
      );
      const [time, values] = (replies ?? []).map(([error, value]) => {
        if (error) throw error;
        return value;
      });
      return { versions: values as (string | null)[], time: time as [string, string], sent };
    }
    const cluster = this.#client as Cluster;
    const [node] = cluster.nodes('master');
    const time = node
      ? ((await this.#link.call(() => node.time(), this.#bulkMs)) as unknown as [string, string])
      : undefined;
    const versions: (string | null)[] = new Array(SHARDS).fill(null);
    await Promise.all(
      this.#groups([...keys.keys()]).map(async (group) => {
        const pipeline = cluster.pipeline();
        for (const n of group) pipeline.get(keys[n] as string);
        const replies = await this.#link.call(() => pipeline.exec(), this.#bulkMs);
        (replies ?? []).forEach(([error, value], i) => {
          if (error) throw error;
          versions[group[i] as number] = value as string | null;
        });
      }),
    );
    return { versions, time, sent };
  }

  /**
   * Reads shards, handing each to `each` in turn (a turn of the event loop every SLICE bans or
   * SLICE_MS), WINDOW pipelines asked for ahead of the one being decoded.
   */
  async read(shards: readonly number[], each: (shard: ShardRead) => void): Promise<void> {
    const groups = this.#groups(shards, READ_BATCH);
    const asked: Promise<[Error | null, unknown][]>[] = [];
    const ask = (group: number[]) => {
      const pipeline = this.#client.pipeline() as Pipeline;
      for (const n of group) pipeline.jkReadShardBuffer(this.#keys.bans(n), this.#keys.version(n));
      const replies = this.#link.call(() => pipeline.exec(), this.#bulkMs).then((r) => r ?? []);
      replies.catch(() => {}); // awaited in turn below; a failure after an earlier one is not unhandled
      asked.push(replies);
    };
    for (let i = 0; i < Math.min(WINDOW, groups.length); i++) ask(groups[i] as number[]);
    let since = 0;
    let sliceStart = performance.now();
    for (let i = 0; i < groups.length; i++) {
      const replies = await (asked[i] as Promise<[Error | null, unknown][]>);
      asked[i] = DONE;
      if (i + WINDOW < groups.length) ask(groups[i + WINDOW] as number[]);
      const group = groups[i] as number[];
      for (let k = 0; k < group.length; k++) {
        const [error, value] = replies[k] ?? [new Error('no reply')];
        if (error) throw error;
        const [version, count, blob] = value as [Buffer | null, number, Buffer];
        const n = group[k] as number;
        let bans: Ban[] = [];
        let at = version;
        // A part of the shard at a time, a turn between parts once the slice has run SLICE_MS:
        // the first shards of a load run before the decoder is compiled, 30 to 100 ms each.
        const seen = { pieces: 0 };
        for (let from = 0; ; ) {
          from = decodeShard(blob, this.#pool, bans, from, bans.length + PART, seen);
          if (from > blob.length) break;
          if (performance.now() - sliceStart >= SLICE_MS) {
            since = 0;
            await turn();
            sliceStart = performance.now();
          }
        }
        if (!shardWhole(blob, count, seen)) ({ version: at, bans } = await this.#readByField(n));
        each({ n, version: at === null ? null : at.toString(), bans });
        since += bans.length;
        if (since >= SLICE || performance.now() - sliceStart >= SLICE_MS) {
          since = 0;
          await turn();
          sliceStart = performance.now();
        }
      }
    }
  }

  /**
   * One shard read field by field (its version and HGETALL in one transaction): for a shard whose
   * packed reply did not split into its count of fields and values (a NUL in one of them).
   */
  async #readByField(n: number): Promise<{ version: Buffer | null; bans: Ban[] }> {
    const replies = await this.#link.call(
      () =>
        this.#client
          .multi()
          .callBuffer('GET', this.#keys.version(n))
          .callBuffer('HGETALL', this.#keys.bans(n))
          .exec(),
      this.#bulkMs,
    );
    const [[e1, version], [e2, flat]] = (replies ?? [[new Error('shard read aborted')], []]) as [
      [Error | null, Buffer | null],
      [Error | null, Buffer[]],
    ];
    if (e1) throw e1;
    if (e2) throw e2;
    const bans: Ban[] = [];
    for (let f = 0; f < flat.length; f += 2) {
      const field = flat[f] as Buffer;
      if (field[0] !== 35) decodeBans(field.toString(), flat[f + 1] as Buffer, this.#pool, bans); // '#': not a client
    }
    return { version, bans };
  }

  /**
   * Writes bans back as they were (the RESTORE script, see lua/bans.ts): one call per shard, the
   * calls of a batch in one pipeline (every shard of a batch on one Cluster node: see nodeOf). A
   * call's `digest` (of its bans, or '') is kept with the version when it writes the shard whole.
   * Returns each call's versions.
   */
  async restore(
    calls: readonly { n: number; bans: readonly Ban[]; digest: string }[],
    channel: string,
    origin: string,
    historyMs: number,
    withHistory: boolean,
  ): Promise<Versioned[]> {
    const pipeline = this.#client.pipeline() as Pipeline;
    for (const { n, bans, digest } of calls) {
      const args: (string | number)[] = [this.#keys.bans(n), this.#keys.version(n), this.#keys.digest(n)];
      // The history keys only when the script writes the histories: a restore leaves them to
      // restoreHistory, and 100,000 keys built, sent and parsed for nothing were a fifth of the
      // holder's CPU.
      if (withHistory) {
        const base = this.#keys.base(n);
        for (const ban of bans) args.push(`${base}h:${ban.client}`);
      }
      args.push(channel, origin, historyMs, digest, withHistory ? 1 : 0);
      for (const ban of bans) {
        // The entry's line as codec.ts reads it (integers): a lost shard's entries are these lines.
        const end = Math.trunc(toRedisEnd(ban.endMs));
        const line = `${ban.jail}|${Math.trunc(ban.startMs)}|${end}|${Math.trunc(ban.banCount)}|${ban.manual ? 1 : 0}|${storableReason(ban.reason)}`;
        args.push(ban.client, line, end);
      }
      pipeline.jkRestore(withHistory ? 3 + bans.length : 3, ...args);
    }
    const replies = (await this.#link.call(() => pipeline.exec(), this.#bulkMs)) ?? [];
    return calls.map((_, k) => {
      const [error, text] = replies[k] ?? [new Error('no reply')];
      if (error) throw error;
      return versionOf(JSON.parse(text as string) as { epoch?: unknown; seqs?: unknown });
    });
  }

  /**
   * Writes the histories of bans that `restore` wrote without them (RESTORE_HISTORY, see
   * lua/bans.ts): one call per shard, a batch in one pipeline, as `restore`.
   */
  async restoreHistory(
    calls: readonly { n: number; bans: readonly Ban[] }[],
    historyMs: number,
  ): Promise<void> {
    const pipeline = this.#client.pipeline() as Pipeline;
    for (const { n, bans } of calls) {
      const args: (string | number)[] = [];
      // keys.history(client), its shard known: no hash of each client again
      const base = this.#keys.base(n);
      for (const ban of bans) args.push(`${base}h:${ban.client}`);
      args.push(historyMs);
      for (const ban of bans)
        args.push(ban.jail, Math.trunc(toRedisEnd(ban.endMs)), Math.trunc(ban.banCount));
      pipeline.jkRestoreHistory(bans.length, ...args);
    }
    const replies = (await this.#link.call(() => pipeline.exec(), this.#bulkMs)) ?? [];
    for (const [error] of replies) if (error) throw error;
  }

  /** The Cluster node that serves shard `n` ('' on one Redis): a pipeline goes to one node. */
  nodeOf(n: number): string {
    if (!isCluster(this.#client)) return '';
    const slots = (this.#client as Cluster & { slots: string[][] }).slots;
    return slots[SHARD_SLOTS[n] as number]?.join(',') ?? `?${n}`;
  }

  /**
   * The versions of a few shards (one pipeline per Cluster node, the store's own deadline: it is
   * a glance, not a batch); null while the store is degraded.
   */
  async versionsOf(shards: readonly number[]): Promise<(string | null)[] | null> {
    if (this.#link.degraded) return null;
    const out: (string | null)[] = new Array(shards.length).fill(null);
    const at = new Map(shards.map((n, k) => [n, k]));
    await Promise.all(
      this.#groups(shards).map(async (group) => {
        const pipeline = this.#client.pipeline();
        for (const n of group) pipeline.get(this.#keys.version(n));
        const replies = (await this.#link.call(() => pipeline.exec())) ?? [];
        group.forEach((n, k) => {
          const [error, value] = replies[k] ?? [new Error('no reply')];
          if (error) throw error;
          out[at.get(n) as number] = value as string | null;
        });
      }),
    );
    return out;
  }

  /** The restore digests of the given shards (`<epoch>:<seq>:<digest>`, null when none), pipelined. */
  async digests(shards: readonly number[]): Promise<Map<number, string | null>> {
    const out = new Map<number, string | null>();
    await Promise.all(
      this.#groups(shards).map(async (group) => {
        const pipeline = this.#client.pipeline();
        for (const n of group) pipeline.get(this.#keys.digest(n));
        const replies = (await this.#link.call(() => pipeline.exec(), this.#bulkMs)) ?? [];
        group.forEach((n, k) => {
          const [error, value] = replies[k] ?? [new Error('no reply')];
          if (error) throw error;
          out.set(n, value as string | null);
        });
      }),
    );
    return out;
  }

  /**
   * Takes or renews the restore lease for `ms` (0: releases it). True when this instance holds it.
   */
  async lease(origin: string, ms: number): Promise<boolean> {
    const held = await this.#link.call(
      () => this.#client.jkLease(this.#keys.lease, origin, ms),
      this.#bulkMs,
    );
    return held === 1;
  }

  /** True while another instance holds the restore lease. */
  async leasedElsewhere(origin: string): Promise<boolean> {
    const holder = await this.#link.call(() => this.#client.get(this.#keys.lease), this.#bulkMs);
    return holder !== null && holder !== origin;
  }

  /** Shards grouped by the Cluster node that serves them (`size` a group; any grouping on one Redis). */
  #groups(shards: readonly number[], size = BATCH): number[][] {
    const byNode = new Map<string, number[]>();
    const slots = isCluster(this.#client)
      ? (this.#client as Cluster & { slots: string[][] }).slots
      : undefined;
    for (const n of shards) {
      const node = slots === undefined ? '' : (slots[SHARD_SLOTS[n] as number]?.join(',') ?? `?${n}`);
      const group = byNode.get(node);
      if (group === undefined) byNode.set(node, [n]);
      else group.push(n);
    }
    const out: number[][] = [];
    for (const group of byNode.values())
      for (let i = 0; i < group.length; i += size) out.push(group.slice(i, i + size));
    return out;
  }
}
