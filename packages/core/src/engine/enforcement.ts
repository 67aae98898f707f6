import type { Clock } from '../clock.js';
import { RESERVED_JAILS } from '../config/defaults.js';
import { JailkeeperError } from '../errors.js';
import type { ClientIdentity } from '../identity/identity.js';
import { normalizePath, pathOf } from '../paths/normalize-path.js';
import type { Ban, Store } from '../store/store.js';
import type { BanBook } from './ban-book.js';
import { NO_SLOT, NOT_BANNED, type Verdict } from './ban-index.js';
import type { Announcer, RequestInfo } from './events.js';
import type { IgnoreList } from './ignore-list.js';
import type { ResolvedOptions } from './options.js';
import { rangeKeyOf } from './range-bans.js';

/** How long a fail-closed refusal says it lasts while the store is down. */
const STORE_DOWN_RETRY_MS = 5000;

/**
 * The hot path: whether a client is refused now, synchronously and without I/O. A client that is
 * not banned costs one Map lookup.
 */
export class Enforcer {
  readonly #options: ResolvedOptions;
  readonly #book: BanBook;
  readonly #ignore: IgnoreList;
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #announcer: Announcer;
  readonly #identify: (address: string) => ClientIdentity | undefined;
  /** Requests refused by this process, per jail. */
  readonly blocked = new Map<string, number>();

  constructor(
    options: ResolvedOptions,
    book: BanBook,
    ignore: IgnoreList,
    store: Store,
    clock: Clock,
    announcer: Announcer,
    identify: (address: string) => ClientIdentity | undefined,
  ) {
    this.#options = options;
    this.#book = book;
    this.#ignore = ignore;
    this.#store = store;
    this.#clock = clock;
    this.#announcer = announcer;
    this.#identify = identify;
  }

  check(client: ClientIdentity | string, request?: RequestInfo): Verdict {
    if (
      typeof client !== 'string' &&
      (typeof client !== 'object' || client === null || typeof client.key !== 'string')
    ) {
      throw new JailkeeperError(
        'JK_ERR_INVALID_ARGUMENT',
        `check() takes an address or the { ip, key } keeper.resolve() returned; received ${client === null ? 'null' : typeof client}.`,
      );
    }
    const key = typeof client === 'string' ? this.#identify(client)?.key : client.key;
    if (key === undefined) return NOT_BANNED;
    let slot = this.#book.index.head(key);
    if (slot === NO_SLOT && this.#book.rangeBans > 0) slot = this.#rangeSlot(client);
    if (slot === NO_SLOT)
      return this.#store.refusing === true ? this.#refuseWhileDown(client, key) : NOT_BANNED;
    return this.#checkBanned(client, key, slot, request);
  }

  /** While a range ban is active: the bans of an IPv6 client's network (`ipv6RangeBan`). */
  #rangeSlot(client: ClientIdentity | string): number {
    const range = this.#options.ipv6RangeBan;
    if (range === null) return NO_SLOT;
    const network = rangeKeyOf(typeof client === 'string' ? client : client.ip, range.prefix);
    return network === undefined ? NO_SLOT : this.#book.index.head(network);
  }

  /** The store is down and fails closed: every client but the ignored ones is refused for now. */
  #refuseWhileDown(client: ClientIdentity | string, key: string): Verdict {
    const ip = typeof client === 'string' ? client : client.ip;
    if (this.#ignore.hasClient(ip, key)) return NOT_BANNED;
    const now = this.#clock.now();
    const ban: Ban = {
      jail: RESERVED_JAILS.storeDown,
      client: key,
      startMs: now,
      endMs: now + STORE_DOWN_RETRY_MS,
      banCount: 0,
      reason: 'the ban store is unreachable and onStoreError is deny',
      manual: false,
    };
    return { banned: true, jail: ban.jail, client: key, untilMs: ban.endMs, ban };
  }

  #checkBanned(
    client: ClientIdentity | string,
    key: string,
    first: number,
    request: RequestInfo | undefined,
  ): Verdict {
    // The clock is the store's: a ban ends when the store's time says so, whatever the app's clock.
    const now = this.#clock.now();
    const index = this.#book.index;
    let best = NO_SLOT;
    for (let slot = first; slot !== NO_SLOT; slot = index.next(slot)) {
      const endMs = index.endMs(slot);
      if (endMs <= now) continue;
      if (!index.appScope(slot) && (request === undefined || !this.watches(index.jail(slot), request)))
        continue;
      if (best === NO_SLOT || endMs > index.endMs(best)) best = slot;
    }
    if (best === NO_SLOT) return NOT_BANNED;
    const ip = typeof client === 'string' ? client : client.ip;
    if (this.#ignore.hasClient(ip, key)) return NOT_BANNED;
    const found = index.verdict(best);
    this.blocked.set(found.jail, (this.blocked.get(found.jail) ?? 0) + 1);
    if (this.#announcer.listens('blocked')) {
      this.#announcer.emit('blocked', { jail: found.jail, client: key, untilMs: found.untilMs });
    }
    return found;
  }

  /** True when the jail's ban applies to this request (its methods and paths). */
  watches(jailName: string, request: RequestInfo): boolean {
    const jail = this.#options.jailsByName.get(jailName);
    if (jail === undefined) return true;
    const method = request.method.toUpperCase();
    if (jail.methods !== null && !jail.methods.has(method === 'HEAD' ? 'GET' : method)) return false;
    if (jail.paths.isEmpty) return true;
    if (typeof request.route === 'string') {
      return jail.paths.matchesRoute(request.route, request.caseInsensitive === true);
    }
    const path = pathOf(request.path);
    // No route (yet): the path as the router reads it, and no other spelling, which may be
    // another route's (Express judges the route it chose again when it gets there).
    if (request.route === null) return jail.paths.matchesPath(path, request.caseInsensitive === true);
    // No router information: every spelling a router may take for the path. Matching too much
    // only refuses a banned client on a few more URLs; too little would let it reach the jail's.
    return jail.paths.matchesPath(path, true) || jail.paths.matchesPath(normalizePath(path), true);
  }
}
