import {
  type Ban,
  createMemoryStore,
  type Duration,
  type FailureResult,
  type FailureRule,
  JailkeeperConfigError,
  type ManualBanInput,
  parseDuration,
  type Store,
  type StoreContext,
  type StoreJailStatus,
} from '@jailkeeper/core';
import { checkKeys } from '@jailkeeper/core/adapter';
import type { Cluster, Redis } from 'ioredis';
import { MANUAL_BAN, READ_BANS, RECORD_FAILURE, RECORD_PARDON, UNBAN } from './scripts.js';

/** Options of {@link createRedisStore}. */
export interface RedisStoreOptions {
  /** An ioredis `Redis` or `Cluster` the app already has. */
  client: Redis | Cluster;
  /** Prepended to every key and to the pub/sub channel. Letters, digits, `:`, `_`, `-`. @default 'jk:' */
  prefix?: string;
  /** The most a call to Redis may take before the store treats Redis as down, whatever the client's own settings. @default 100 (ms) */
  timeout?: Duration;
  /**
   * While Redis is unreachable: `'local'` counts and bans in this process (and writes its bans back
   * to Redis on recovery); `'allow'` counts nothing; `'deny'` also counts locally and refuses every
   * client not in ignoreIp until Redis answers (fail closed). Known bans stay enforced in every case.
   * @default 'local'
   */
  onStoreError?: 'local' | 'allow' | 'deny';
  /** How often bans are re-read from Redis (missed messages, a Redis restart). @default '30s' */
  reconcileInterval?: Duration;
  /** How often an unreachable Redis is probed. @default '1s' */
  probeInterval?: Duration;
}

const OPTION_KEYS = {
  client: true,
  prefix: true,
  timeout: true,
  onStoreError: true,
  reconcileInterval: true,
  probeInterval: true,
} as const;
/** The most failure times a counter keeps, as in the memory store. */
const MAX_KEPT = 1000;

interface Commands {
  jkRecordFailure(...args: (string | number)[]): Promise<string>;
  jkRecordPardon(...args: (string | number)[]): Promise<number>;
  jkManualBan(...args: (string | number)[]): Promise<string>;
  jkUnban(...args: (string | number)[]): Promise<string>;
  jkReadBans(...args: (string | number)[]): Promise<string>;
}
type Client = (Redis | Cluster) & Commands;

class TimeoutError extends Error {}

/** Redis writes a permanent ban's end as -1; the engine uses Infinity. */
function fromRedis(ban: Ban): Ban {
  return ban.endMs < 0 ? { ...ban, endMs: Number.POSITIVE_INFINITY } : ban;
}

function ms(value: unknown, path: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = typeof value === 'number' || typeof value === 'string' ? parseDuration(value) : undefined;
  if (parsed === undefined || parsed <= 0) {
    throw new JailkeeperConfigError(
      'JK_ERR_INVALID_DURATION',
      path,
      `${path} must be a positive duration (ms or "100ms"); received ${JSON.stringify(value)}.`,
    );
  }
  return parsed;
}

/** The store {@link createRedisStore} returns. */
export class RedisStore implements Store {
  readonly name = 'redis';
  readonly #client: Client;
  readonly #prefix: string;
  readonly #channel: string;
  readonly #timeoutMs: number;
  readonly #onStoreError: 'local' | 'allow' | 'deny';
  readonly #reconcileMs: number;
  readonly #probeMs: number;
  /** Counting and bans while Redis is down. */
  readonly #local = createMemoryStore();
  readonly #totals = new Map<string, { failed: number; banned: number }>();
  readonly #packedRules = new WeakMap<FailureRule, string>();
  #ctx: StoreContext | undefined;
  #subscriber: Redis | Cluster | undefined;
  #degraded = false;
  #reconciled = false;
  #reconcileTimer: NodeJS.Timeout | undefined;
  #probeTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: RedisStoreOptions) {
    const input = checkKeys('createRedisStore options', options, OPTION_KEYS);
    const client = input.client as Client | undefined;
    if (client === undefined || client === null || typeof (client as Redis).defineCommand !== 'function') {
      throw new JailkeeperConfigError(
        'JK_ERR_INVALID_OPTION',
        'client',
        'createRedisStore options.client must be an ioredis Redis or Cluster instance.',
      );
    }
    const prefix = (input.prefix as string | undefined) ?? 'jk:';
    if (typeof prefix !== 'string' || !/^[A-Za-z0-9:_-]{0,64}$/.test(prefix)) {
      throw new JailkeeperConfigError(
        'JK_ERR_INVALID_OPTION',
        'prefix',
        `createRedisStore options.prefix must be up to 64 letters, digits, ":", "_" or "-"; received ${JSON.stringify(prefix)}.`,
      );
    }
    const policy = input.onStoreError ?? 'local';
    if (policy !== 'local' && policy !== 'allow' && policy !== 'deny') {
      throw new JailkeeperConfigError(
        'JK_ERR_INVALID_OPTION',
        'onStoreError',
        `createRedisStore options.onStoreError must be "local", "allow" or "deny"; received ${JSON.stringify(policy)}.`,
      );
    }
    this.#client = client;
    this.#prefix = prefix;
    this.#channel = `${prefix}events`;
    this.#timeoutMs = ms(input.timeout, 'timeout', 100);
    this.#onStoreError = policy;
    this.#reconcileMs = ms(input.reconcileInterval, 'reconcileInterval', 30_000);
    this.#probeMs = ms(input.probeInterval, 'probeInterval', 1000);
    // Registered once per client; ioredis runs them with EVALSHA and reloads them on NOSCRIPT.
    const define = (name: keyof Commands, lua: string, numberOfKeys?: number) => {
      if (typeof (client as unknown as Record<string, unknown>)[name] !== 'function') {
        client.defineCommand(name, numberOfKeys === undefined ? { lua } : { lua, numberOfKeys });
      }
    };
    define('jkRecordFailure', RECORD_FAILURE, 6);
    define('jkRecordPardon', RECORD_PARDON, 1);
    define('jkManualBan', MANUAL_BAN, 3);
    define('jkUnban', UNBAN); // a variable number of keys: the count is the first argument
    define('jkReadBans', READ_BANS, 1);
  }

  /** The pub/sub channel on which bans, unbans and ignore-list edits are announced. */
  get channel(): string {
    return this.#channel;
  }

  /** The jails that have counters or bans in Redis now (one SCAN). */
  async jails(): Promise<string[]> {
    return this.#jailsOf(`${this.#prefix}{*}:[bf]:*`);
  }

  /** The jail names of the failure and ban keys matching a SCAN pattern. */
  async #jailsOf(match: string): Promise<string[]> {
    const keys = await this.#scan(match);
    return [
      ...new Set(keys.map((k) => /}:[bf]:(.+)$/.exec(k)?.[1]).filter((j): j is string => j !== undefined)),
    ];
  }

  /** True while Redis is unreachable and the store works locally (the `Store` contract's `degraded`). */
  get degraded(): boolean {
    return this.#degraded;
  }

  /** True while Redis is unreachable under onStoreError: 'deny'. */
  get refusing(): boolean {
    return this.#degraded && this.#onStoreError === 'deny';
  }

  // ------------------------------------------------------------- keys

  #key(client: string, kind: 'f' | 'b' | 'p', jail: string): string {
    return `${this.#prefix}{${client}}:${kind}:${jail}`;
  }

  #historyKey(client: string): string {
    return `${this.#prefix}{${client}}:h`;
  }

  /** Splits a ban key back into client and jail. */
  #parseBanKey(key: string): { client: string; jail: string } | undefined {
    if (!key.startsWith(`${this.#prefix}{`)) return undefined;
    const close = key.indexOf('}', this.#prefix.length);
    if (close === -1 || key.slice(close, close + 4) !== '}:b:') return undefined;
    return { client: key.slice(this.#prefix.length + 1, close), jail: key.slice(close + 4) };
  }

  // ------------------------------------------------------------- calls with a deadline

  #call<T>(run: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TimeoutError(`Redis did not answer within ${this.#timeoutMs} ms`)),
        this.#timeoutMs,
      );
    });
    return Promise.race([run(), deadline]).finally(() => clearTimeout(timer));
  }

  #down(error: unknown): void {
    if (this.#degraded || this.#closed) return;
    this.#degraded = true;
    const policy = {
      local: ' and counts new failures in this process',
      allow: ' and counts nothing',
      deny: ', counts new failures in this process, and refuses every client not in ignoreIp',
    }[this.#onStoreError];
    this.#ctx?.warn(
      'JK_WRN_STORE_DEGRADED',
      `Redis is unreachable (${(error as Error)?.message ?? error}); jailkeeper goes on with the bans it knows${policy} until Redis answers again.`,
    );
    this.#probeTimer = setInterval(() => void this.#probe(), this.#probeMs);
    this.#probeTimer.unref();
  }

  async #probe(): Promise<void> {
    try {
      await this.#call(() => this.#client.ping());
    } catch {
      return;
    }
    clearInterval(this.#probeTimer);
    this.#probeTimer = undefined;
    this.#degraded = false;
    // Bans made while Redis was away are written back, with the time they have left.
    await this.#writeBack(await this.#local.bans());
    await this.#local.unbanAll();
  }

  async #writeBack(bans: Ban[]): Promise<void> {
    const now = Date.now();
    for (const ban of bans) {
      const left = ban.endMs === Number.POSITIVE_INFINITY ? -1 : ban.endMs - now;
      if (left === 0 || left < -1) continue;
      try {
        await this.#manualBan(ban.jail, ban.client, left, ban.reason, 86_400_000);
      } catch (error) {
        this.#down(error);
        return;
      }
    }
  }

  // ------------------------------------------------------------- lifecycle

  async init(ctx: StoreContext): Promise<void> {
    this.#ctx = ctx;
    this.#local.init({ ...ctx, onBan: () => {}, onUnban: () => {} });
    const subscriber = this.#client.duplicate();
    this.#subscriber = subscriber;
    subscriber.on('error', () => {}); // reconnection is ioredis' job; failures surface on calls
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.#channel) return;
      try {
        const event = JSON.parse(message) as { type: string; ban: Ban; entries?: unknown };
        if (event.type === 'ignore-add' || event.type === 'ignore-remove') {
          const entries = Array.isArray(event.entries)
            ? event.entries.filter((e): e is string => typeof e === 'string')
            : [];
          ctx.onIgnore?.(event.type === 'ignore-add' ? 'add' : 'remove', entries);
          return;
        }
        const ban = fromRedis(event.ban);
        if (event.type === 'ban') ctx.onBan(ban, 'remote');
        else if (event.type === 'unban') ctx.onUnban(ban, 'remote');
      } catch {
        // a malformed message on our channel is not ours to act on
      }
    });
    try {
      await this.#call(() => subscriber.subscribe(this.#channel));
      await this.#reconcile('restored');
    } catch (error) {
      this.#down(error);
    }
    this.#reconcileTimer = setInterval(
      () => void this.#reconcile('remote').catch(() => {}),
      this.#reconcileMs,
    );
    this.#reconcileTimer.unref();
  }

  /**
   * Re-reads the active bans. A sentinel key (with a TTL) tells a Redis that lost its data (a
   * restart, FLUSHALL, eviction) from one that did not: when it is gone, live instances write their
   * bans back; when it is there, a ban this instance holds but Redis does not was lifted or expired
   * elsewhere (a missed message), and is dropped: no zombie bans.
   */
  async #reconcile(origin: 'restored' | 'remote'): Promise<void> {
    if (this.#degraded || this.#closed) return;
    const sentinel = `${this.#prefix}sentinel`;
    const keepMs = Math.max(this.#reconcileMs * 10, 3_600_000);
    const scanStarted = Date.now();
    let present: number;
    try {
      present = await this.#call(() => this.#client.exists(sentinel));
    } catch (error) {
      this.#down(error);
      return;
    }
    if (!present && this.#reconciled) await this.#writeBack([...(this.#ctx?.activeBans?.() ?? [])]);
    try {
      await this.#call(() => this.#client.set(sentinel, '1', 'PX', keepMs));
      if (this.#ctx?.onIgnore) this.#ctx.onIgnore('set', await this.ignoreEntries());
      const bans = await this.bans();
      const inRedis = new Set(bans.map((b) => `${b.jail}\u0000${b.client}`));
      for (const ban of bans) this.#ctx?.onBan(ban, origin);
      if (present && this.#reconciled) {
        for (const ban of this.#ctx?.activeBans?.() ?? []) {
          // A ban made while this scan ran may not be in its result: only older ones are zombies.
          if (ban.startMs < scanStarted - 1000 && !inRedis.has(`${ban.jail}\u0000${ban.client}`)) {
            this.#ctx?.onUnban(ban, 'remote');
          }
        }
      }
      this.#reconciled = true;
    } catch (error) {
      this.#down(error);
    }
  }

  #masters(): Redis[] {
    const client = this.#client as Cluster;
    return typeof client.nodes === 'function' && (client as unknown as { isCluster?: boolean }).isCluster
      ? client.nodes('master')
      : [this.#client as Redis];
  }

  async #scan(match: string): Promise<string[]> {
    const keys: string[] = [];
    for (const node of this.#masters()) {
      let cursor = '0';
      do {
        const [next, batch] = await this.#call(() => node.scan(cursor, 'MATCH', match, 'COUNT', 1000));
        cursor = next;
        keys.push(...batch);
      } while (cursor !== '0');
    }
    return keys;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#reconcileTimer);
    clearInterval(this.#probeTimer);
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    if (subscriber) subscriber.disconnect();
    await this.#local.close();
  }

  // ------------------------------------------------------------- operations

  #totalsOf(jail: string) {
    let totals = this.#totals.get(jail);
    if (!totals) {
      totals = { failed: 0, banned: 0 };
      this.#totals.set(jail, totals);
    }
    return totals;
  }

  async recordFailure(rule: FailureRule, client: string, jitterMs: number): Promise<FailureResult> {
    if (!this.#degraded) {
      try {
        const result = await this.#recordInRedis(rule, client, jitterMs);
        this.#totalsOf(rule.jail).failed++;
        if (result.ban && !result.alreadyBanned) this.#totalsOf(rule.jail).banned++;
        return result;
      } catch (error) {
        this.#down(error);
      }
    }
    if (this.#onStoreError === 'allow') {
      return {
        count: 0,
        maxRetry: rule.maxRetry,
        pardoned: false,
        ban: null,
        alreadyBanned: false,
        wouldBan: null,
        recidive: null,
        recidiveDryRun: false,
      };
    }
    return this.#local.recordFailure(rule, client, jitterMs);
  }

  /** A rule's constant arguments, joined once: each counted failure then sends four arguments. */
  #packed(rule: FailureRule): string {
    let packed = this.#packedRules.get(rule);
    if (packed === undefined) {
      const inc = rule.increment;
      const r = rule.recidive;
      packed = [
        rule.findTimeMs,
        rule.maxRetry,
        rule.pardonMaxRetry === Number.POSITIVE_INFINITY ? 'inf' : rule.pardonMaxRetry,
        rule.banTimeMs === Number.POSITIVE_INFINITY ? -1 : rule.banTimeMs,
        inc ? inc.factor : '',
        inc?.multipliers ? inc.multipliers.join(',') : '',
        inc ? (inc.maxTimeMs === Number.POSITIVE_INFINITY ? Number.MAX_SAFE_INTEGER : inc.maxTimeMs) : 0,
        inc?.overallJails ? 1 : 0,
        '', // jitterMs: per call, ARGV[3]
        rule.dryRun ? 1 : 0,
        rule.historyTimeMs,
        r ? 1 : 0,
        r?.findTimeMs ?? 0,
        r?.maxRetry ?? 0,
        r ? (r.banTimeMs === Number.POSITIVE_INFINITY ? -1 : r.banTimeMs) : 0,
        r?.dryRun ? 1 : 0,
        rule.reason.replace(/\|/g, '/'), // '|' separates the fields
        this.#channel,
        r?.jail ?? 'recidive',
        MAX_KEPT,
      ].join('|');
      this.#packedRules.set(rule, packed);
    }
    return packed;
  }

  async #recordInRedis(rule: FailureRule, client: string, jitterMs: number): Promise<FailureResult> {
    const r = rule.recidive;
    const text = await this.#call(() =>
      this.#client.jkRecordFailure(
        this.#key(client, 'f', rule.jail),
        this.#key(client, 'b', rule.jail),
        this.#historyKey(client),
        this.#key(client, 'p', rule.jail),
        this.#key(client, 'f', r?.jail ?? 'recidive'),
        this.#key(client, 'b', r?.jail ?? 'recidive'),
        rule.jail,
        client,
        jitterMs,
        this.#packed(rule),
      ),
    );
    const out = JSON.parse(text) as {
      count: number;
      maxRetry: number;
      pardoned?: boolean;
      alreadyBanned?: boolean;
      ban?: Ban;
      wouldBan?: Ban;
      recidive?: Ban;
      recidiveDryRun?: boolean;
    };
    return {
      count: out.count,
      maxRetry: out.maxRetry === null ? Number.POSITIVE_INFINITY : out.maxRetry,
      pardoned: out.pardoned === true,
      ban: out.ban ? fromRedis(out.ban) : null,
      alreadyBanned: out.alreadyBanned === true,
      wouldBan: out.wouldBan ? fromRedis(out.wouldBan) : null,
      recidive: out.recidive ? fromRedis(out.recidive) : null,
      recidiveDryRun: out.recidiveDryRun === true,
    };
  }

  async recordPardon(jail: string, client: string, forMs: number): Promise<void> {
    if (!this.#degraded) {
      try {
        await this.#call(() => this.#client.jkRecordPardon(this.#key(client, 'p', jail), forMs));
        return;
      } catch (error) {
        this.#down(error);
      }
    }
    await this.#local.recordPardon(jail, client, forMs);
  }

  /** The manual-ban script: `durationMs` -1 for permanent. Returns the ban as Redis wrote it. */
  async #manualBan(
    jail: string,
    client: string,
    durationMs: number,
    reason: string,
    historyTimeMs: number,
  ): Promise<Ban> {
    const text = await this.#call(() =>
      this.#client.jkManualBan(
        this.#key(client, 'b', jail),
        this.#historyKey(client),
        this.#key(client, 'f', jail),
        jail,
        client,
        durationMs,
        reason,
        historyTimeMs,
        this.#channel,
      ),
    );
    return fromRedis(JSON.parse(text) as Ban);
  }

  async ban(input: ManualBanInput): Promise<Ban> {
    if (this.#degraded) return this.#local.ban(input);
    const durationMs = input.durationMs === Number.POSITIVE_INFINITY ? -1 : input.durationMs;
    const ban = await this.#manualBan(
      input.jail,
      input.client,
      durationMs,
      input.reason,
      input.historyTimeMs,
    );
    this.#totalsOf(input.jail).banned++;
    return ban;
  }

  async #unbanPairs(client: string, jails: string[]): Promise<Ban[]> {
    if (jails.length === 0) return [];
    const keys = jails.flatMap((jail) => [this.#key(client, 'b', jail), this.#key(client, 'f', jail)]);
    const text = await this.#call(() =>
      this.#client.jkUnban(keys.length, ...keys, client, this.#channel, ...jails),
    );
    return (JSON.parse(text) as Ban[]).map(fromRedis);
  }

  async unban(client: string, jail?: string): Promise<Ban[]> {
    const local = await this.#local.unban(client, jail);
    if (this.#degraded) return local;
    let jails: string[];
    if (jail !== undefined) jails = [jail];
    else {
      // The jails this client has keys in: one SCAN of its own hash tag.
      jails = await this.#jailsOf(`${this.#prefix}{${client.replace(/[*?[\]\\]/g, '\\$&')}}:*`);
    }
    return [...local, ...(await this.#unbanPairs(client, jails))];
  }

  async unbanAll(jail?: string): Promise<Ban[]> {
    const lifted = await this.#local.unbanAll(jail);
    if (this.#degraded) return lifted;
    for (const ban of await this.bans(jail)) lifted.push(...(await this.#unbanPairs(ban.client, [ban.jail])));
    return lifted;
  }

  async bans(jail?: string): Promise<Ban[]> {
    const local = await this.#local.bans(jail);
    if (this.#degraded) return local;
    const keys = await this.#scan(`${this.#prefix}{*}:b:${jail === undefined ? '*' : jail}`);
    const out: Ban[] = [...local];
    // One key per call: keys of different clients live in different Cluster slots.
    const results = await Promise.all(
      keys.map((key) => {
        const parsed = this.#parseBanKey(key);
        if (!parsed) return Promise.resolve('[]');
        return this.#call(() => this.#client.jkReadBans(key, parsed.jail, parsed.client));
      }),
    );
    for (const text of results) out.push(...(JSON.parse(text) as Ban[]).map(fromRedis));
    return out;
  }

  async status(jails: readonly string[]): Promise<Record<string, StoreJailStatus>> {
    const out: Record<string, StoreJailStatus> = {};
    const bans = await this.bans();
    let failedKeys: string[] = [];
    if (!this.#degraded) failedKeys = await this.#scan(`${this.#prefix}{*}:f:*`);
    for (const jail of jails) {
      const totals = this.#totals.get(jail);
      out[jail] = {
        currentlyFailed: failedKeys.filter((k) => k.endsWith(`}:f:${jail}`)).length,
        totalFailed: totals?.failed ?? 0,
        currentlyBanned: bans.filter((b) => b.jail === jail).length,
        totalBanned: totals?.banned ?? 0,
      };
    }
    return out;
  }

  // ------------------------------------------------------------- the shared ignore list

  /**
   * One set, `<prefix>ignore`. Like a permanent ban, it has no expiry: an operator's
   * `ignore add` lasts until `ignore remove`. Every change is published to the other instances.
   */
  async #editIgnore(op: 'add' | 'remove', entries: readonly string[]): Promise<void> {
    if (entries.length === 0) return;
    const key = `${this.#prefix}ignore`;
    await this.#call(() =>
      op === 'add' ? this.#client.sadd(key, ...entries) : this.#client.srem(key, ...entries),
    );
    await this.#call(() =>
      this.#client.publish(this.#channel, JSON.stringify({ type: `ignore-${op}`, entries })),
    );
  }

  addIgnore(entries: readonly string[]): Promise<void> {
    return this.#editIgnore('add', entries);
  }

  removeIgnore(entries: readonly string[]): Promise<void> {
    return this.#editIgnore('remove', entries);
  }

  async ignoreEntries(): Promise<string[]> {
    return (await this.#call(() => this.#client.smembers(`${this.#prefix}ignore`))).sort();
  }

  async sweep(): Promise<Ban[]> {
    // Redis expires its own keys; only the local fallback needs sweeping.
    return this.#local.sweep();
  }
}

/**
 * Creates the Redis store: counters and bans shared by every instance, bans read locally. Each
 * counted failure is one script call; a clean request never touches Redis.
 * @example
 * const keeper = createJailkeeper({ jails, store: createRedisStore({ client: new Redis(process.env.REDIS_URL) }) });
 */
export function createRedisStore(options: RedisStoreOptions): RedisStore {
  return new RedisStore(options);
}
