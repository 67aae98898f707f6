import { JailkeeperError } from '@jailkeeper/core';
import {
  DEFAULTS,
  IgnoreList,
  isJailName,
  parseIgnoreEntry,
  requireClient,
  toBanTimeMs,
} from '@jailkeeper/core/operator';
import type { Ban } from '@jailkeeper/core/store';
import { type ExportFormat, exportBans } from '@jailkeeper/ops';
import { createRedisStore, type RedisStore } from '@jailkeeper/redis';
import { Redis } from 'ioredis';
import { type Backend, type BanRow, type JailRow, row, type StatusReport } from './backend.js';
import { CliError, EXIT } from './errors.js';

/** The most banned clients `status` lists per jail, as `keeper.status()` does. */
const STATUS_LISTED = 100;

/** Works on the Redis store directly: what it changes reaches every instance through pub/sub. */
export class RedisBackend implements Backend {
  readonly where: string;
  readonly #client: Redis;
  readonly #store: RedisStore;
  readonly #ipv6Subnet: number;
  readonly #configured: { jails: string[]; ignoreIp: string[] };

  private constructor(
    url: string,
    client: Redis,
    store: RedisStore,
    ipv6Subnet: number,
    configured: { jails: string[]; ignoreIp: string[] },
  ) {
    this.where = `Redis at ${url.replace(/\/\/[^@/]*@/, '//***@')}`;
    this.#client = client;
    this.#store = store;
    this.#ipv6Subnet = ipv6Subnet;
    this.#configured = configured;
  }

  static async open(
    url: string,
    prefix: string,
    options: {
      ipv6Subnet?: number;
      jails?: string[];
      ignoreIp?: string[];
      /** Bans and unbans the store learns of from the instances (the console's live feed). */
      onBan?: (ban: Ban) => void;
      onUnban?: (ban: Ban) => void;
    } = {},
  ): Promise<RedisBackend> {
    const client = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      connectTimeout: 3000,
      retryStrategy: () => null,
    });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.ping();
    } catch (error) {
      client.disconnect();
      throw new CliError(
        EXIT.unreachable,
        `Cannot reach Redis at ${url} (${(error as Error).message}). Is it running, and is --redis (or REDIS_URL) right?`,
      );
    }
    // A one-shot command needs no copy of the fleet's bans; the console follows them for its feed.
    const follow = options.onBan !== undefined || options.onUnban !== undefined;
    const store = createRedisStore({ client, prefix, timeout: 3000, loadBans: follow });
    await store.init({
      clock: { now: () => Date.now() },
      onBan: (ban) => options.onBan?.(ban),
      onUnban: (ban) => options.onUnban?.(ban),
      isIgnored: () => false,
      warn: () => {},
    });
    const backend = new RedisBackend(url, client, store, options.ipv6Subnet ?? DEFAULTS.ipv6Subnet, {
      jails: options.jails ?? [],
      ignoreIp: options.ignoreIp ?? [],
    });
    backend.#assertUp();
    return backend;
  }

  /** True while Redis does not answer (the store works locally meanwhile). */
  get degraded(): boolean {
    return this.#store.degraded;
  }

  /** Every jail name known: configured, seen in the store, and manual. */
  async jailNames(): Promise<string[]> {
    return this.#run(async () =>
      [...new Set([...this.#configured.jails, ...(await this.#store.jails()), DEFAULTS.manualJail])].sort(),
    );
  }

  /** The store's counts per jail, without listing bans. */
  jailCounts(names: readonly string[]): ReturnType<RedisStore['status']> {
    return this.#run(() => this.#store.status(names));
  }

  /** The active bans as the store has them (Infinity for permanent), unsorted. */
  rawBans(): Promise<Ban[]> {
    return this.#run(() => this.#store.bans());
  }

  /**
   * A jail the apps answer to, as the admin API requires: the names in --config, those the
   * running instances registered in Redis, and `manual`. Anything else is refused (exit 5), so a
   * typo never writes a ban no app enforces as meant.
   */
  async #requireJail(jail: string): Promise<string> {
    if (!isJailName(jail)) {
      throw new JailkeeperError('JK_ERR_UNKNOWN_JAIL', `${JSON.stringify(jail)} is not a jail name.`);
    }
    const known = new Set([
      ...this.#configured.jails,
      ...(await this.#run(() => this.#store.jails())),
      DEFAULTS.manualJail,
    ]);
    if (known.has(jail)) return jail;
    throw new JailkeeperError(
      'JK_ERR_UNKNOWN_JAIL',
      `There is no jail ${JSON.stringify(jail)}; the jails are ${[...known].sort().join(', ')} (from --config and the apps running on this Redis).`,
    );
  }

  #assertUp(): void {
    if (this.#store.degraded) {
      throw new CliError(EXIT.unreachable, `${this.where} stopped answering; nothing was changed.`);
    }
  }

  async #run<T>(operation: () => Promise<T>): Promise<T> {
    this.#assertUp();
    const result = await operation();
    this.#assertUp(); // the store falls back to local work when Redis fails: that is no answer here
    return result;
  }

  async status(): Promise<StatusReport> {
    return this.#run(async () => {
      const names = [
        ...new Set([...this.#configured.jails, ...(await this.#store.jails()), DEFAULTS.manualJail]),
      ];
      const counts = await this.#store.status(names);
      const jails: Record<string, JailRow> = {};
      for (const name of names.sort()) {
        const c = counts[name];
        // A bounded page per jail, as keeper.status() lists: never every ban of a million.
        const listed = this.#store.bansPage
          ? (await this.#store.bansPage({ jail: name, limit: STATUS_LISTED })).bans
          : [];
        jails[name] = {
          currentlyFailed: c?.currentlyFailed ?? 0,
          totalFailed: null, // totals are per instance: see the app's metrics
          currentlyBanned: c?.currentlyBanned ?? 0,
          totalBanned: null,
          bannedClients: listed.slice(0, STATUS_LISTED).map((b) => b.client),
        };
      }
      return { store: 'redis', jails, ignoreIp: await this.ignoreList() };
    });
  }

  async bans(jail?: string): Promise<BanRow[]> {
    const now = Date.now();
    const list = await this.#run(() => this.#store.bans(jail));
    return list.map((b) => row(b, now)); // `bans` sorts them (sortBans), whichever backend answers
  }

  async ban(
    address: string,
    options: { jail?: string; duration?: string; reason?: string },
  ): Promise<BanRow> {
    const id = requireClient(address, this.#ipv6Subnet);
    const jail = await this.#requireJail(options.jail ?? DEFAULTS.manualJail);
    const durationMs =
      options.duration === undefined ? DEFAULTS.manualBanMs : toBanTimeMs('--for', options.duration);
    // The engine's own ignore test, over the configured and the shared entries.
    const ignored = new IgnoreList([]);
    for (const entry of [...this.#configured.ignoreIp, ...(await this.ignoreList())]) ignored.add(entry);
    if (ignored.hasClient(id.ip, id.key)) {
      throw new JailkeeperError(
        'JK_ERR_IGNORED_CLIENT',
        `${address} is in the ignore list, which is never banned; remove it first (jailkeeper ignore remove).`,
      );
    }
    const ban = await this.#run(() =>
      this.#store.ban({
        jail,
        client: id.key,
        durationMs,
        reason: options.reason ?? 'manual ban',
        historyTimeMs: DEFAULTS.historyTimeMs,
      }),
    );
    return row(ban, Date.now());
  }

  async unban(address: string, jail?: string): Promise<BanRow[]> {
    const client = requireClient(address, this.#ipv6Subnet).key;
    if (jail !== undefined) await this.#requireJail(jail);
    const now = Date.now();
    return (await this.#run(() => this.#store.unban(client, jail))).map((b) => row(b, now));
  }

  async unbanAll(jail?: string): Promise<BanRow[]> {
    const now = Date.now();
    return (await this.#run(() => this.#store.unbanAll(jail))).map((b) => row(b, now));
  }

  ignoreList(): Promise<string[]> {
    return this.#run(() => this.#store.ignoreEntries());
  }

  async ignoreAdd(entry: string): Promise<string[]> {
    const networks = parseIgnoreEntry(entry);
    const before = new Set(await this.ignoreList());
    await this.#run(() => this.#store.addIgnore(networks));
    return networks.filter((n) => !before.has(n));
  }

  async ignoreRemove(entry: string): Promise<string[]> {
    const networks = parseIgnoreEntry(entry);
    const before = new Set(await this.ignoreList());
    await this.#run(() => this.#store.removeIgnore(networks));
    return networks.filter((n) => before.has(n));
  }

  async exportText(format: ExportFormat, options: { name?: string; jail?: string }): Promise<string> {
    const bans = await this.#run(() => this.#store.bans(options.jail));
    return exportBans(bans, format, { name: options.name });
  }

  async watch(onChange: () => void): Promise<() => void> {
    const subscriber = this.#client.duplicate({ retryStrategy: (n: number) => Math.min(n * 200, 2000) });
    subscriber.on('error', () => {});
    subscriber.on('message', () => onChange());
    await subscriber.subscribe(this.#store.channel);
    return () => subscriber.disconnect();
  }

  async close(): Promise<void> {
    await this.#store.close();
    this.#client.disconnect();
  }
}
