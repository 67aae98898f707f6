import type { Clock } from '../clock.js';
import { DEFAULTS, RESERVED_JAILS } from '../config/defaults.js';
import { type BanDuration, toBanTimeMs } from '../config/duration.js';
import { JailkeeperError } from '../errors.js';
import { type ClientIdentity, requireClient } from '../identity/identity.js';
import type { Ban, BanPage, Store, StoreJailStatus } from '../store/store.js';
import type { BanBook } from './ban-book.js';
import type { Enforcer } from './enforcement.js';
import { type BanInfo, type JailStatus, type KeeperStatus, STATUS_LISTED } from './events.js';
import type { IgnoreList } from './ignore-list.js';
import type { ResolvedOptions } from './options.js';
import { allBans, sortInSlices, storePage } from './paging.js';

/** Options of `keeper.ban()`. */
export interface ManualBanOptions {
  /** The jail. @default 'manual' */
  jail?: string;
  /** How long. @default the jail's banTime; 1d in the `manual` jail */
  duration?: BanDuration;
  /** Written on the ban. @default 'manual ban' */
  reason?: string;
}

/** A page of `keeper.bansPage()`: the bans with their time left, and the cursor of the next page. */
export interface BanInfoPage {
  readonly bans: BanInfo[];
  /** Pass as `after` for the next page; absent on the last page. */
  readonly next?: string;
}

/** The most bans one page may hold: a page is built and sent in a few milliseconds. */
const MAX_PAGE = 5000;

/** A page's `limit`, checked: an integer from 1 to MAX_PAGE (default 1000). */
export function pageLimit(call: string, value: number | undefined): number {
  const limit = value ?? 1000;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw new JailkeeperError(
      'JK_ERR_INVALID_ARGUMENT',
      `${call}() options.limit must be an integer from 1 to ${MAX_PAGE}; received ${String(limit)}.`,
    );
  }
  return limit;
}

/** Every jail name a keeper answers to: its jails, recidive when configured, and `manual`. */
export function jailNames(options: ResolvedOptions): string[] {
  const names = options.jails.map((j) => j.name);
  if (options.recidive) names.push(RESERVED_JAILS.recidive);
  names.push(RESERVED_JAILS.manual);
  return names;
}

/** The ban time of a jail, for a manual ban without a duration. */
function defaultBanTimeMs(options: ResolvedOptions, jail: string): number {
  if (jail === RESERVED_JAILS.recidive) return options.recidive?.banTimeMs ?? DEFAULTS.manualBanMs;
  return options.jailsByName.get(jail)?.banTimeMs ?? DEFAULTS.manualBanMs;
}

/**
 * What operators do (fail2ban-client's `status`, `banip`, `unbanip`): the calls behind the admin
 * API and the CLI. Every call checks its input and throws a coded error.
 */
export class Operations {
  readonly #options: ResolvedOptions;
  readonly #store: Store;
  readonly #book: BanBook;
  readonly #ignore: IgnoreList;
  readonly #enforcer: Enforcer;
  readonly #clock: Clock;

  constructor(
    options: ResolvedOptions,
    store: Store,
    book: BanBook,
    ignore: IgnoreList,
    enforcer: Enforcer,
    clock: Clock,
  ) {
    this.#options = options;
    this.#store = store;
    this.#book = book;
    this.#ignore = ignore;
    this.#enforcer = enforcer;
    this.#clock = clock;
  }

  requireJail(jail: string | undefined, fallback: string = RESERVED_JAILS.manual): string {
    const name = jail ?? fallback;
    if (typeof name === 'string' && jailNames(this.#options).includes(name)) return name;
    throw new JailkeeperError(
      'JK_ERR_UNKNOWN_JAIL',
      `There is no jail ${JSON.stringify(name)}; the jails are ${jailNames(this.#options).join(', ')}.`,
    );
  }

  #requireClient(address: string): ClientIdentity {
    return requireClient(address, this.#options.ipv6Subnet);
  }

  async ban(address: string, options: ManualBanOptions = {}): Promise<BanInfo> {
    const id = this.#requireClient(address);
    const jail = this.requireJail(options.jail);
    if (this.#ignore.hasClient(id.ip, id.key)) {
      throw new JailkeeperError(
        'JK_ERR_IGNORED_CLIENT',
        `${id.ip} is in the ignore list, which is never banned; remove it from ignoreIp first.`,
      );
    }
    const reason = options.reason ?? 'manual ban';
    if (typeof reason !== 'string') {
      throw new JailkeeperError(
        'JK_ERR_INVALID_ARGUMENT',
        `ban() options.reason must be a string; received ${reason === null ? 'null' : typeof reason}.`,
      );
    }
    const durationMs =
      options.duration === undefined
        ? defaultBanTimeMs(this.#options, jail)
        : toBanTimeMs('duration', options.duration);
    const ban = await this.#store.ban({
      jail,
      client: id.key,
      durationMs,
      reason,
      historyTimeMs: this.#options.historyTimeMs,
    });
    this.#book.apply(ban, 'local', id.ip);
    return this.#book.info(ban, this.#clock.now());
  }

  async unban(address: string, options: { jail?: string } = {}): Promise<Ban[]> {
    const id = this.#requireClient(address);
    if (options.jail !== undefined) this.requireJail(options.jail);
    const lifted = await this.#store.unban(id.key, options.jail);
    // The index may hold bans the store no longer has (expired, or lifted elsewhere): drop them too.
    this.#book.liftClient(id.key, options.jail);
    return lifted;
  }

  async unbanAll(options: { jail?: string } = {}): Promise<Ban[]> {
    if (options.jail !== undefined) this.requireJail(options.jail);
    const lifted = await this.#store.unbanAll(options.jail);
    this.#book.liftAll(options.jail);
    return lifted;
  }

  async bans(options: { jail?: string } = {}): Promise<BanInfo[]> {
    const now = this.#clock.now();
    const infos = await allBans(this.#store, options.jail, (ban) => this.#book.info(ban, now));
    return sortInSlices(infos, (a, b) => a.endMs - b.endMs);
  }

  async bansPage(options: { jail?: string; after?: string; limit?: number } = {}): Promise<BanInfoPage> {
    const limit = pageLimit('bansPage', options.limit);
    if (options.after !== undefined && typeof options.after !== 'string') {
      throw new JailkeeperError(
        'JK_ERR_INVALID_ARGUMENT',
        'bansPage() options.after must be the `next` cursor of a previous page.',
      );
    }
    const page = await storePage(this.#store, { jail: options.jail, after: options.after, limit });
    const now = this.#clock.now();
    const bans = page.bans.map((ban) => this.#book.info(ban, now));
    return page.next === undefined ? { bans } : { bans, next: page.next };
  }

  async status(): Promise<KeeperStatus> {
    const names = jailNames(this.#options);
    const counts = await this.#store.status(names);
    // One bounded page per jail, never the whole list: status() is O(jails), not O(bans).
    const listed = await Promise.all(
      names.map((jail) => storePage(this.#store, { jail, limit: STATUS_LISTED })),
    );
    const jails: Record<string, JailStatus> = {};
    for (const [i, name] of names.entries()) {
      jails[name] = {
        ...(counts[name] as StoreJailStatus),
        dryRun:
          this.#options.jailsByName.get(name)?.dryRun ??
          (name === RESERVED_JAILS.recidive && !!this.#options.recidive?.dryRun),
        blocked: this.#enforcer.blocked.get(name) ?? 0,
        wouldBan: this.#book.wouldBan.get(name) ?? 0,
        bannedClients: (listed[i] as BanPage).bans.slice(0, STATUS_LISTED).map((b) => b.client),
      };
    }
    return { store: this.#store.name, jails, ignoreIp: this.#ignore.list() };
  }
}
