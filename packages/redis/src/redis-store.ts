import { randomBytes } from 'node:crypto';
import { DEFAULTS } from '@jailkeeper/core/operator';
import type {
  Ban,
  BanPage,
  BanPageQuery,
  Clock,
  FailureResult,
  FailureRule,
  ManualBanInput,
  Reservation,
  Store,
  StoreContext,
  StoreJailStatus,
} from '@jailkeeper/core/store';
import type { Cluster, Redis } from 'ioredis';
import { BanSync } from './ban-sync.js';
import { defineCommands, type Lines } from './commands.js';
import { Counting } from './counting.js';
import { Fallback } from './fallback.js';
import { Keys } from './keys.js';
import { Link } from './link.js';
import { OperatorCalls } from './operator-calls.js';
import { type RedisStoreOptions, resolveRedisOptions } from './options.js';
import type { Parts } from './parts.js';
import { IgnoreSet, JailRegistry } from './registry.js';
import { ShardIO } from './shard-io.js';

/**
 * The store {@link createRedisStore} returns: a facade over its modules (see docs/architecture.md
 * and keys.ts): counting (the hot path's scripts), the operators' calls, the ban sync (load,
 * reconcile, write-back), the link (deadlines, outages) and the local fallback.
 */
export class RedisStore implements Store {
  readonly name = 'redis';
  readonly #p: Parts;
  readonly #reconcileMs: number;
  readonly #startMs: number;
  readonly #loadBans: boolean;
  readonly #counting: Counting;
  readonly #calls: OperatorCalls;
  readonly #registry: JailRegistry;
  readonly #ignore: IgnoreSet;
  #ctx: StoreContext | undefined;
  #subscriber: Redis | Cluster | undefined;
  #bulk: Redis | Cluster | undefined;
  #reconcileTimer: NodeJS.Timeout | undefined;
  #passes = 0;
  /** The shared ignore list as last handed to the keeper (null: changed since, hand it again). */
  #ignoreText: string | null = null;
  #closed = false;

  constructor(options: RedisStoreOptions) {
    const o = resolveRedisOptions(options);
    const client = defineCommands(o.client);
    const lines: Lines = { hot: client, bulk: client };
    const keys = new Keys(o.prefix);
    const origin = randomBytes(8).toString('hex');
    const link = new Link(
      client,
      { timeoutMs: o.timeoutMs, probeMs: o.probeMs, policy: o.onStoreError },
      // Redis answers again: the store leaves the degraded state once its bulk connection is back
      // too, and catches up behind, there: no request waits on a recovery. ioredis reconnects each
      // connection on its own backoff; up with the bulk one still reconnecting, the catch-up's
      // first call failed and reported Redis down again just after it came back (a flap: the
      // instance's local count starts over, an attacker's budget with it; 20 handler runs for one
      // attacker in redis-recovery.test.ts's SHUTDOWN NOSAVE at load 3, in 1 run of 4 at 81519d5).
      // Until then the probe tries again.
      async () => {
        const bulk = this.#bulk;
        if (bulk !== undefined && !(await link.connected(o.probeMs, bulk)))
          throw new Error('the bulk connection is not back yet');
      },
      () => void this.#afterOutage(),
    );
    // Loads, reconciles and operators' calls get a longer deadline than the hot path's: a busy
    // Redis is slow to answer a batch, not down.
    const bulkMs = Math.max(o.startMs, 10 * o.timeoutMs);
    const io = new ShardIO(lines, keys, link, bulkMs);
    const sync = new BanSync(io, keys, {
      origin,
      historyMs: DEFAULTS.historyTimeMs,
      onError: (error) => link.fail('reconcile', error),
    });
    this.#p = {
      lines,
      keys,
      link,
      io,
      sync,
      fallback: new Fallback(),
      origin,
      onStoreError: o.onStoreError,
      bulkMs,
      totals: new Map(),
    };
    this.#reconcileMs = o.reconcileMs;
    this.#startMs = o.startMs;
    this.#loadBans = o.loadBans;
    this.#registry = new JailRegistry(lines, keys, link, bulkMs);
    this.#ignore = new IgnoreSet(lines, keys, link, bulkMs);
    this.#counting = new Counting(this.#p);
    sync.followCalls((jail, client) => this.#counting.busy(jail, client));
    this.#calls = new OperatorCalls(this.#p, this.#registry, () => this.#ctx);
  }

  /** The pub/sub channel on which bans, unbans and ignore-list edits are announced. */
  get channel(): string {
    return this.#p.keys.channel;
  }

  /** Redis time, as this instance estimates it: the engine judges bans by it (`Store.clock`). */
  get clock(): Clock {
    return this.#p.sync.clock;
  }

  /** True while Redis is unreachable and the store works locally (the `Store` contract's `degraded`). */
  get degraded(): boolean {
    return this.#p.link.degraded;
  }

  /** True while Redis is unreachable under onStoreError: 'deny'. */
  get refusing(): boolean {
    return this.#p.link.degraded && this.#p.onStoreError === 'deny';
  }

  /** The jail names the instances on this Redis registered (each registers its own at start). */
  jails(): Promise<string[]> {
    return this.#registry.list();
  }

  // ------------------------------------------------------------- lifecycle

  /**
   * Waits (up to `startTimeout`) for Redis to answer, subscribes, loads every active ban in
   * batches and registers this keeper's jail names. Redis still silent then: the store goes on
   * degraded and catches up as soon as Redis answers.
   */
  async init(ctx: StoreContext): Promise<void> {
    this.#ctx = ctx;
    const { sync, fallback, link, keys, lines } = this.#p;
    const client = lines.hot;
    const onIgnore = ctx.onIgnore;
    // An ignore-list message changes the keeper's list: the next reload hands the whole list again.
    const counting = this.#counting;
    // A ban learned from another instance refuses this instance's waiting attempts without a call
    // (counting.ts); an unban from another instance drops that refusal.
    sync.start({
      ...ctx,
      onBan: (ban, origin) => {
        if (origin === 'remote') counting.banned(ban); // not the bans a load restores: there may be a million
        ctx.onBan(ban, origin);
      },
      onUnban: (ban, origin) => {
        counting.unbanned(ban);
        ctx.onUnban(ban, origin);
      },
      ...(onIgnore === undefined
        ? {}
        : {
            onIgnore: (op: 'add' | 'remove' | 'set', entries: readonly string[]) => {
              this.#ignoreText = null;
              onIgnore(op, entries);
            },
          }),
    });
    fallback.init(ctx, sync.clock);
    this.#counting.attach(ctx);
    if (!this.#loadBans) {
      if (!(await link.connected(this.#startMs))) link.fail('init', new Error('no connection'));
      return;
    }
    this.#registry.want(ctx.jails ?? []);
    link.attach(ctx, () => this.#soon());
    const subscriber = client.duplicate();
    this.#subscriber = subscriber;
    subscriber.on('error', () => {}); // reconnection is ioredis' job; failures surface on calls
    // Bulk work on a connection of its own: a shard's large reply never delays a counted failure.
    const bulk = defineCommands(client.duplicate());
    this.#bulk = bulk;
    bulk.on('error', () => {});
    lines.bulk = bulk;
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === keys.channel) sync.onMessage(message);
    });
    try {
      if (!(await link.connected(this.#startMs))) throw new Error('no connection');
      // Subscribing before the connection's own ready check has answered makes ioredis fail that
      // check (a subscribed connection refuses INFO) and lose the subscription: wait for it.
      if (!(await link.connected(this.#startMs, subscriber))) throw new Error('no connection');
      if (!(await link.connected(this.#startMs, bulk))) throw new Error('no connection');
      await link.call(() => subscriber.subscribe(keys.channel), this.#startMs);
      // After a reconnection: subscribe again (harmless when ioredis already did), and catch up
      // with what was published meanwhile, which is lost.
      subscriber.on('ready', () => {
        subscriber.subscribe(keys.channel).catch(() => {});
        this.#soon();
      });
      await this.#catchUp('restored');
    } catch (error) {
      link.fail('init', error);
    }
    this.#reconcileTimer = setInterval(() => this.#reconcile(), this.#reconcileMs);
    this.#reconcileTimer.unref();
  }

  /** Everything that may have been missed: bans, the shared ignore list, the jail registry. */
  async #catchUp(origin: 'restored' | 'remote'): Promise<void> {
    await this.#p.sync.writeBack(await this.#p.fallback.pending());
    await this.#p.sync.pass(origin);
    await this.#reloadIgnore(true);
    await this.#registry.register();
  }

  /** The shared ignore list, handed to the keeper when it changed (an edit whose message was missed). */
  async #reloadIgnore(always: boolean): Promise<void> {
    if (!this.#ctx?.onIgnore) return;
    const entries = await this.#ignore.list();
    const text = entries.join(',');
    if (!always && text === this.#ignoreText) return; // the list rarely changes: no work when not
    this.#ignoreText = text;
    this.#ctx.onIgnore('set', entries);
  }

  /**
   * After an outage: the bans made locally meanwhile are written back, then dropped here; then
   * what was missed or lost is caught up (a lost shard restored by one instance, see BanSync).
   */
  async #afterOutage(): Promise<void> {
    this.#counting.release();
    try {
      await this.#p.sync.writeBack(await this.#p.fallback.pending());
      await this.#p.fallback.clear();
    } catch (error) {
      this.#p.link.fail('writeBack', error);
      return;
    }
    try {
      await this.#catchUp('remote');
    } catch (error) {
      this.#p.link.fail('reconcile', error);
    }
  }

  /** A reconnection or a resubscribe: catch up at once, and once more when the resubscribe is surely done. */
  #soon(): void {
    if (this.#closed || this.#p.link.degraded) return;
    const pass = () => void this.#p.sync.pass().catch((error) => this.#p.link.fail('reconcile', error));
    pass();
    setTimeout(pass, 250).unref();
  }

  #reconcile(): void {
    if (this.#closed || this.#p.link.degraded) return;
    // The registry is renewed about once a minute; the rest on every pass.
    const renew = ++this.#passes % Math.max(1, Math.round(60_000 / this.#reconcileMs)) === 0;
    void (async () => {
      await this.#p.sync.pass();
      await this.#reloadIgnore(false);
      if (renew) await this.#registry.register();
    })().catch((error) => this.#p.link.fail('reconcile', error));
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#counting.flush(); // settles waiting for company go now

    clearInterval(this.#reconcileTimer);
    this.#p.sync.close();
    this.#p.link.close();
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    if (subscriber) subscriber.disconnect();
    this.#bulk?.disconnect();
    this.#bulk = undefined;
    await this.#p.fallback.local.close();
  }

  // ------------------------------------------------------------- the Store contract

  recordFailure(rule: FailureRule, client: string, jitterMs: number): Promise<FailureResult> {
    return this.#counting.recordFailure(rule, client, jitterMs);
  }

  reserve(rule: FailureRule, client: string, id: string, holdMs: number): Promise<Reservation> {
    return this.#counting.reserve(rule, client, id, holdMs);
  }

  settle(
    rule: FailureRule,
    client: string,
    id: string,
    failed: boolean,
    jitterMs: number,
  ): Promise<FailureResult | null> {
    return this.#counting.settle(rule, client, id, failed, jitterMs);
  }

  recordPardon(jail: string, client: string, forMs: number): Promise<void> {
    return this.#counting.recordPardon(jail, client, forMs);
  }

  ban(input: ManualBanInput): Promise<Ban> {
    this.#counting.forget();
    return this.#calls.ban(input);
  }

  unban(client: string, jail?: string): Promise<Ban[]> {
    this.#counting.forget();
    return this.#calls.unban(client, jail).finally(() => this.#counting.forget());
  }

  unbanAll(jail?: string): Promise<Ban[]> {
    this.#counting.forget();
    return this.#calls.unbanAll(jail).finally(() => this.#counting.forget());
  }

  bans(jail?: string): Promise<Ban[]> {
    return this.#calls.bans(jail);
  }

  bansPage(query: BanPageQuery): Promise<BanPage> {
    return this.#calls.bansPage(query);
  }

  status(jails: readonly string[]): Promise<Record<string, StoreJailStatus>> {
    return this.#calls.status(jails);
  }

  addIgnore(entries: readonly string[]): Promise<void> {
    this.#ignoreText = null;
    return this.#ignore.edit('add', entries);
  }

  removeIgnore(entries: readonly string[]): Promise<void> {
    this.#ignoreText = null;
    return this.#ignore.edit('remove', entries);
  }

  ignoreEntries(): Promise<string[]> {
    return this.#ignore.list();
  }

  async sweep(): Promise<Ban[]> {
    // Redis expires its own keys; only the local fallback needs sweeping.
    return this.#p.fallback.local.sweep();
  }
}

/**
 * Creates the Redis store: counters and bans shared by every instance, bans read locally. A
 * counted failure is at most its reservation's and its settle's steps in a script call, and the
 * calls of every client waiting at once go in one; a clean request never touches Redis.
 * @example
 * const redis = new Redis(process.env.REDIS_URL, { maxRetriesPerRequest: 1, retryStrategy: (n) => Math.min(n * 100, 500) });
 * const keeper = createJailkeeper({ jails, store: createRedisStore({ client: redis }) });
 * await keeper.ready;
 */
export function createRedisStore(options: RedisStoreOptions): RedisStore {
  return new RedisStore(options);
}
