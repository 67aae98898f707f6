import { userInfo } from 'node:os';
import {
  type Ban,
  DEFAULTS,
  IgnoreList,
  isJailName,
  JailkeeperError,
  parseIgnoreEntry,
  requireClient,
  toBanTimeMs,
} from '@jailkeeper/core';
import { type BanJson, banJson, type ExportFormat, exportBans } from '@jailkeeper/ops';
import { createRedisStore, type RedisStore } from '@jailkeeper/redis';
import { Redis } from 'ioredis';
import { CliError, EXIT } from './errors.js';

/** A ban as the CLI prints it: the admin API's JSON, with its time left. */
export interface BanRow extends BanJson {
  readonly timeLeftMs: number | null;
}

interface JailRow {
  currentlyFailed: number;
  totalFailed: number | null;
  currentlyBanned: number;
  totalBanned: number | null;
  bannedClients: string[];
}

export interface StatusReport {
  store: string;
  jails: Record<string, JailRow>;
  ignoreIp: string[];
}

/** What every command needs from where the bans live: a Redis, or a running app's admin API. */
export interface Backend {
  readonly where: string;
  status(): Promise<StatusReport>;
  bans(jail?: string): Promise<BanRow[]>;
  ban(address: string, options: { jail?: string; duration?: string; reason?: string }): Promise<BanRow>;
  unban(address: string, jail?: string): Promise<BanRow[]>;
  unbanAll(jail?: string): Promise<BanRow[]>;
  ignoreList(): Promise<string[]>;
  ignoreAdd(entry: string): Promise<string[]>;
  ignoreRemove(entry: string): Promise<string[]>;
  exportText(format: ExportFormat, options: { name?: string; jail?: string }): Promise<string>;
  /** Calls back when bans may have changed (Redis pub/sub); returns a stop function. */
  watch?(onChange: () => void): Promise<() => void>;
  close(): Promise<void>;
}

/** A ban as the admin API writes it, so both backends print the same rows. */
function row(ban: Ban, now: number): BanRow {
  const json = banJson({ ...ban, timeLeftMs: Math.max(0, ban.endMs - now) });
  return { ...json, timeLeftMs: json.timeLeftMs ?? null };
}

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
      const bans = await this.#store.bans();
      const names = [
        ...new Set([...this.#configured.jails, ...(await this.#store.jails()), DEFAULTS.manualJail]),
      ];
      const counts = await this.#store.status(names);
      const jails: Record<string, JailRow> = {};
      for (const name of names.sort()) {
        const c = counts[name];
        jails[name] = {
          currentlyFailed: c?.currentlyFailed ?? 0,
          totalFailed: null, // totals are per instance: see the app's metrics
          currentlyBanned: c?.currentlyBanned ?? 0,
          totalBanned: null,
          bannedClients: bans.filter((b) => b.jail === name).map((b) => b.client),
        };
      }
      return { store: 'redis', jails, ignoreIp: await this.ignoreList() };
    });
  }

  async bans(jail?: string): Promise<BanRow[]> {
    const now = Date.now();
    const list = await this.#run(() => this.#store.bans(jail));
    return list.map((b) => row(b, now)).sort((a, b) => (a.endMs ?? Infinity) - (b.endMs ?? Infinity));
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

function actor(): string {
  try {
    return `${userInfo().username} (cli)`;
  } catch {
    return 'cli';
  }
}

/** Talks to a running app's admin API. */
export class HttpBackend implements Backend {
  readonly where: string;
  readonly #base: string;
  readonly #token: string;

  constructor(url: string, token: string) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new CliError(
        EXIT.usage,
        `--url must be the admin API's URL, such as http://127.0.0.1:3000/_jailkeeper; received ${JSON.stringify(url)}.`,
      );
    }
    this.#base = parsed.href.replace(/\/+$/, '');
    this.#token = token;
    this.where = `the admin API at ${this.#base}`;
  }

  /** One admin API call: the parsed JSON, or with `raw` the body as text (an export). */
  async #request(method: string, path: string, body?: unknown, raw = false): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(`${this.#base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.#token}`,
          // Who made a change, for the app's audit log.
          'x-jailkeeper-actor': actor(),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      throw new CliError(
        EXIT.unreachable,
        `Cannot reach ${this.where} (${cause}). Is the app running, and is the admin API mounted at this path?`,
      );
    }
    const text = await response.text();
    let data: unknown;
    try {
      data = text === '' ? undefined : JSON.parse(text);
    } catch {
      data = text;
    }
    if (response.ok) return raw ? text : data;
    const error = (data as { error?: { code?: string; message?: string } } | undefined)?.error;
    if (response.status === 401) {
      throw new CliError(
        EXIT.refused,
        `${this.where} refused the token. Pass the app's admin token with --token or JAILKEEPER_TOKEN.`,
      );
    }
    if (response.status === 403 || response.status === 429) {
      throw new CliError(EXIT.refused, `${this.where} refused this caller: ${error?.message ?? 'forbidden'}`);
    }
    if (response.status === 404 && error === undefined) {
      throw new CliError(
        EXIT.unreachable,
        `${this.where} answered 404: is the admin API mounted at this path?`,
      );
    }
    if (error?.code?.startsWith('JK_ERR_'))
      throw new CliError(EXIT.rejected, error.message ?? error.code, error.code);
    throw new CliError(
      EXIT.unreachable,
      `${this.where} answered ${response.status}: ${typeof data === 'string' ? data.slice(0, 200) : JSON.stringify(data)}`,
    );
  }

  async status(): Promise<StatusReport> {
    const s = (await this.#request('GET', '/status')) as StatusReport;
    return s;
  }

  /** Every page of `GET /bans`. */
  async bans(jail?: string): Promise<BanRow[]> {
    const out: BanRow[] = [];
    let after: string | undefined;
    do {
      const query = new URLSearchParams({ limit: '10000' });
      if (jail !== undefined) query.set('jail', jail);
      if (after !== undefined) query.set('after', after);
      const page = (await this.#request('GET', `/bans?${query}`)) as { bans: BanRow[]; next?: string };
      out.push(...page.bans);
      after = page.next;
    } while (after !== undefined);
    return out;
  }

  async ban(
    address: string,
    options: { jail?: string; duration?: string; reason?: string },
  ): Promise<BanRow> {
    return ((await this.#request('POST', '/bans', { address, ...options })) as { ban: BanRow }).ban;
  }

  async unban(address: string, jail?: string): Promise<BanRow[]> {
    const q = `?address=${encodeURIComponent(address)}${jail === undefined ? '' : `&jail=${encodeURIComponent(jail)}`}`;
    return ((await this.#request('DELETE', `/bans${q}`)) as { lifted: BanRow[] }).lifted;
  }

  async unbanAll(jail?: string): Promise<BanRow[]> {
    const q = `?all=true${jail === undefined ? '' : `&jail=${encodeURIComponent(jail)}`}`;
    return ((await this.#request('DELETE', `/bans${q}`)) as { lifted: BanRow[] }).lifted;
  }

  async ignoreList(): Promise<string[]> {
    return ((await this.#request('GET', '/ignore')) as { entries: string[] }).entries;
  }

  async ignoreAdd(entry: string): Promise<string[]> {
    return ((await this.#request('POST', '/ignore', { entry })) as { added: string[] }).added;
  }

  async ignoreRemove(entry: string): Promise<string[]> {
    return (
      (await this.#request('DELETE', `/ignore?entry=${encodeURIComponent(entry)}`)) as { removed: string[] }
    ).removed;
  }

  async exportText(format: ExportFormat, options: { name?: string; jail?: string }): Promise<string> {
    const query = new URLSearchParams({ format });
    if (options.name !== undefined) query.set('name', options.name);
    if (options.jail !== undefined) query.set('jail', options.jail);
    return (await this.#request('GET', `/export?${query}`, undefined, true)) as string;
  }

  async close(): Promise<void> {}
}
