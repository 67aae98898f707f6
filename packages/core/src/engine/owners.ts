import type { Clock } from '../clock.js';
import type { ClientIdentity } from '../identity/client.js';
import { evictOldest } from '../store/ban-history.js';
import { MapSweep } from '../store/map-sweep.js';
import type { ResolvedJail } from './options.js';

/** The most addresses remembered per account: the most recent logins win. */
const ADDRESSES_PER_ACCOUNT = 16;

/**
 * The owners of accounts, for jails keyed by `'account'`: the client keys (addresses, IPv6 by
 * their /64) that logged in to an account, until when. An owner is judged as the pair
 * account+address, with a budget of its own, so that strangers' failures, which lock the account,
 * never refuse it. Bounded: per account the 16 latest addresses, overall `cap` accounts (the
 * oldest tenth evicted at once); expired entries leave a slice at a time on the sweep.
 */
export class OwnerBook {
  readonly #clock: Clock;
  readonly #cap: number;
  /** `jail\0account` → client key → epoch ms the ownership ends. */
  readonly #owners = new Map<string, Map<string, number>>();
  readonly #sweep = new MapSweep(this.#owners);

  constructor(clock: Clock, cap: number) {
    this.#clock = clock;
    this.#cap = cap;
  }

  /** True while `client` is a known owner of `account` in `jail`. */
  isOwner(jail: string, account: string, client: string): boolean {
    if (this.#owners.size === 0) return false;
    const until = this.#owners.get(`${jail}\u0000${account}`)?.get(client);
    return until !== undefined && until > this.#clock.now();
  }

  /**
   * The identity a jail counts and bans an attempt under: the address's; for an account, the
   * account's, or the pair's (`account+address` jails, and the account's known owners); for a
   * jail keyed by a function, the key it gave (`keys`); undefined when a jail keyed by account is
   * given no account, or a jail keyed by a function gave no key.
   */
  keyed(
    jail: ResolvedJail,
    identity: ClientIdentity,
    account: string | undefined,
    keys?: ReadonlyMap<string, string>,
  ): ClientIdentity | undefined {
    if (jail.key === 'address') return identity;
    if (jail.key === 'function') {
      const key = keys?.get(jail.name);
      if (key === undefined) return undefined;
      return { ip: identity.ip, key, ...(identity.viaProxy === true ? { viaProxy: true } : {}) };
    }
    if (account === undefined) return undefined;
    const pair =
      jail.key === 'account+address' ||
      (jail.owners !== null && this.isOwner(jail.name, account, identity.key));
    const key = pair ? `${account}|${identity.key}` : account;
    return { ip: identity.ip, key, ...(identity.viaProxy === true ? { viaProxy: true } : {}) };
  }

  /** `client` logged in to `account`: it owns it for the jail's `owners.for` from now. */
  add(jail: ResolvedJail, account: string, client: string): void {
    const owners = jail.owners;
    if (owners === null) return;
    // Each login looks at a few accounts for expired owners: the table never grows stale unbounded.
    this.sweep(4);
    const key = `${jail.name}\u0000${account}`;
    let clients = this.#owners.get(key);
    if (clients === undefined) {
      if (this.#owners.size >= this.#cap) evictOldest(this.#owners, this.#cap);
      clients = new Map();
    } else this.#owners.delete(key);
    // Last in the table: eviction takes the accounts whose owners logged in longest ago.
    this.#owners.set(key, clients);
    clients.delete(client);
    if (clients.size >= ADDRESSES_PER_ACCOUNT) {
      const oldest = clients.keys().next();
      if (!oldest.done) clients.delete(oldest.value);
    }
    clients.set(client, this.#clock.now() + owners.forMs);
  }

  /** The known owners of an account in a jail, with until when (for operators). */
  of(jail: string, account: string): Array<{ client: string; untilMs: number }> {
    const now = this.#clock.now();
    const out: Array<{ client: string; untilMs: number }> = [];
    for (const [client, untilMs] of this.#owners.get(`${jail}\u0000${account}`) ?? []) {
      if (untilMs > now) out.push({ client, untilMs });
    }
    return out;
  }

  /** How many accounts have known owners (for `status()`). */
  get accounts(): number {
    return this.#owners.size;
  }

  /** Drops expired owners, at most `max` accounts looked at per call. */
  sweep(max: number): void {
    const now = this.#clock.now();
    this.#sweep.run(
      max,
      (clients) => {
        for (const [client, until] of clients) if (until <= now) clients.delete(client);
        return clients.size === 0;
      },
      (key) => this.#owners.delete(key),
    );
  }
}
