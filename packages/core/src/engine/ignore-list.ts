import { JailkeeperError } from '../errors.js';
import { type Cidr, embeddedIPv4, formatCidr, parseCidr, parseIp } from '../identity/ip.js';
import { canonicalNetworks, IpSet } from '../identity/ip-set.js';
import type { Store } from '../store/store.js';

/**
 * Parses one ignore entry (an address, a CIDR or a named range) into canonical networks.
 * Throws JK_ERR_INVALID_CIDR with what was wrong. The CLI and the admin API use it too.
 */
export function parseIgnoreEntry(entry: unknown): string[] {
  const networks = typeof entry === 'string' ? canonicalNetworks(entry.trim()) : 'not a string';
  if (typeof networks === 'string') {
    throw new JailkeeperError(
      'JK_ERR_INVALID_CIDR',
      `ignore entry must be an IP address, a CIDR or a named range; received ${JSON.stringify(String(entry).slice(0, 80))} (${networks}).`,
    );
  }
  return networks;
}

/**
 * The addresses that are never counted nor banned (fail2ban's `ignoreip`): the configured ones and
 * the runtime edits. With a shared store (Redis), an edit also reaches every other instance: `add`
 * and `remove` write it in the background (a failure is reported through `onStoreError`);
 * `addShared` and `removeShared` resolve once the store has it.
 */
export class IgnoreList {
  readonly #set: IpSet;
  readonly #configured: ReadonlySet<string>;
  readonly #store: Store | undefined;
  readonly #onStoreError: (operation: string, error: unknown) => void;
  /** The entries this process knows to be in the store's shared list. */
  #shared = new Set<string>();

  /** @internal Built by the keeper. */
  constructor(
    configured: readonly Cidr[],
    store?: Store,
    onStoreError: (operation: string, error: unknown) => void = () => {},
  ) {
    this.#set = new IpSet(configured);
    this.#configured = new Set(configured.map((c) => formatCidr(c)));
    this.#store = store;
    this.#onStoreError = onStoreError;
  }

  /** Adds an address, CIDR or named range; returns the networks added here. Throws JK_ERR_INVALID_CIDR. */
  add(entry: string): string[] {
    return this.#background('add', entry);
  }

  /** Removes an entry as added; returns the networks removed here. */
  remove(entry: string): string[] {
    return this.#background('remove', entry);
  }

  /** Like `add`, resolving once a shared store holds the entry (at once without one). */
  async addShared(entry: string): Promise<string[]> {
    const { changed, shared } = this.#edit('add', entry);
    await shared;
    return changed;
  }

  /** Like `remove`, resolving once a shared store has dropped the entry. */
  async removeShared(entry: string): Promise<string[]> {
    const { changed, shared } = this.#edit('remove', entry);
    await shared;
    return changed;
  }

  /** Every entry in force, as canonical networks. */
  list(): string[] {
    return this.#set.list();
  }

  /** True when the address (or IPv6 client key) is ignored. Throws JK_ERR_INVALID_IP for a non-string. */
  has(address: string): boolean {
    if (typeof address !== 'string') {
      throw new JailkeeperError(
        'JK_ERR_INVALID_IP',
        `ignore.has() takes an address as text; received ${address === null ? 'null' : typeof address}.`,
      );
    }
    const ip = parseIp(address.trim());
    if (ip === undefined) return this.coversKey(address.trim());
    if (this.#set.has(ip)) return true;
    // An IPv6 address that carries an IPv4 client (NAT64, Teredo...) is that client, as for hasClient.
    const v4 = ip.family === 6 ? embeddedIPv4(ip.words) : undefined;
    return v4 !== undefined && this.#set.has({ family: 4, value: v4 });
  }

  /** The number of networks in force: 0 lets callers skip the test. */
  get size(): number {
    return this.#set.size;
  }

  /**
   * The one ignore test of a client: its own address, or (IPv6) its whole prefix. IPv4's key is its
   * address. @internal
   */
  hasClient(ip: string, key: string): boolean {
    if (this.#set.size === 0) return false;
    return this.#set.hasText(ip) || (ip !== key && this.coversKey(key));
  }

  /** A client key is ignored when the list covers all of it (an IPv6 prefix needs a covering network). @internal */
  coversKey(key: string): boolean {
    if (this.#set.size === 0) return false;
    const cidr = parseCidr(key);
    return typeof cidr !== 'string' && this.#set.covers(cidr);
  }

  /** An edit of the shared list learned from the store: applied, and remembered as shared. @internal */
  applyShared(op: 'add' | 'remove', networks: readonly string[]): string[] {
    for (const n of networks) {
      if (op === 'add') this.#shared.add(n);
      else this.#shared.delete(n);
    }
    return this.#apply(op, networks);
  }

  /** The shared list was (re)loaded: entries it no longer holds are dropped, unless configured. @internal */
  sync(entries: readonly string[]): void {
    const next = new Set(entries);
    const stale = [...this.#shared].filter((e) => !next.has(e) && !this.#configured.has(e));
    this.#apply('remove', stale);
    this.#apply('add', entries);
    this.#shared = next;
  }

  /** Applies entries to this process's list; returns those that changed it. */
  #apply(op: 'add' | 'remove', networks: readonly string[]): string[] {
    const set = this.#set;
    return networks.filter((text) => {
      const cidr = parseCidr(text);
      if (typeof cidr === 'string') return false;
      return op === 'add' ? set.add(cidr) : set.remove(cidr);
    });
  }

  #edit(op: 'add' | 'remove', entry: string): { changed: string[]; shared: Promise<void> } {
    const networks = parseIgnoreEntry(entry);
    const store = this.#store;
    const write = op === 'add' ? store?.addIgnore : store?.removeIgnore;
    if (write === undefined) return { changed: this.#apply(op, networks), shared: Promise.resolve() };
    return { changed: this.applyShared(op, networks), shared: write.call(store, networks) };
  }

  #background(op: 'add' | 'remove', entry: string): string[] {
    const { changed, shared } = this.#edit(op, entry);
    shared.catch((error: unknown) => this.#onStoreError(`${op}Ignore`, error));
    return changed;
  }
}
