import { EventEmitter } from 'node:events';
import type { Server } from 'node:http';
import type { Server as NetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import { BanIndex, type Banned, type IndexedBan, NOT_BANNED, type Verdict } from './ban-index.js';
import { ClientResolver, type Headers } from './client-ip.js';
import { type Clock, systemClock } from './clock.js';
import { type Duration, formatDuration, toBanTimeMs } from './duration.js';
import { JailkeeperError, Warner, type WarningCode } from './errors.js';
import { ConnectionTracker, type GuardOptions, guardServer } from './guard.js';
import { type ClientIdentity, identify, requireClient } from './identity.js';
import { formatCidr, parseCidr, parseIp } from './ip.js';
import { canonicalNetworks, IpSet } from './ip-set.js';
import { createMemoryStore } from './memory-store.js';
import {
  type JailkeeperOptions,
  RESERVED_JAILS,
  type ResolvedJail,
  type ResolvedOptions,
  resolveOptions,
} from './options.js';
import { pathOf } from './refusal.js';
import type { Ban, FailureResult, FailureRule, RecidiveInput, Store, StoreJailStatus } from './store.js';
import { CrawlerVerifier } from './verified-crawlers.js'; // [issue 21: verified crawlers]

/** One finished response, as the framework adapters (or `replay`) report it. */
export interface ResponseEvent {
  /** The resolved client, or an address as text. */
  readonly client: ClientIdentity | string;
  readonly method: string;
  /**
   * The route pattern the router matched (`'/users/:id'`); `null` when the router matched no route
   * (a 404 scan); `undefined` when there is no router information (log replay): then `path` is used.
   */
  readonly route?: string | null;
  /** The request path, without the query string. */
  readonly path: string;
  readonly status: number;
  readonly userAgent?: string;
  /** Only these jails may count this response (a per-route setting, compiled at setup). @default every jail */
  readonly jails?: ReadonlySet<string>;
}

/** What `check()` may use to decide jail-scope bans. */
export interface RequestInfo {
  readonly method: string;
  readonly route?: string | null;
  readonly path: string;
}

/** What `observe()` did in one jail. */
export interface JailOutcome {
  readonly jail: string;
  readonly action:
    | 'counted'
    | 'banned'
    | 'wouldBan'
    | 'alreadyBanned'
    | 'exempt'
    | 'ignored'
    | 'pardoned'
    | 'error';
  /** Failures in the window after this one. */
  readonly count?: number;
  readonly maxRetry?: number;
  readonly ban?: Ban;
}

/** What `observe()` did with a response. */
export interface ObserveResult {
  /** Why nothing was counted for the whole response, or null. */
  readonly ignored: null | 'ignoreIp' | 'invalidClient' | 'closed';
  readonly jails: readonly JailOutcome[];
}

/** An active ban as operators see it. */
export interface BanInfo extends Ban {
  /** Milliseconds left; Infinity for a permanent ban. */
  readonly timeLeftMs: number;
  readonly scope: 'app' | 'jail';
}

export interface JailStatus extends StoreJailStatus {
  readonly dryRun: boolean;
  /** Requests refused by this process because of this jail's bans. */
  readonly blocked: number;
  /** Dry-run bans this process would have made. */
  readonly wouldBan: number;
  readonly bannedClients: string[];
}

export interface KeeperStatus {
  readonly store: string;
  readonly jails: Record<string, JailStatus>;
  readonly ignoreIp: string[];
}

export interface BanEvent extends Ban {
  readonly durationMs: number;
  readonly scope: 'app' | 'jail';
  /** The address that made the last failure, when known (for IPv6, `client` is its prefix). */
  readonly ip?: string;
  /** `local`: made here; `remote`: learned from another instance; `restored`: from a snapshot. */
  readonly origin: 'local' | 'remote' | 'restored';
}

export interface UnbanEvent extends Ban {
  readonly cause: 'manual' | 'expired';
  readonly origin: 'local' | 'remote';
}

export interface FailureEvent {
  readonly jail: string;
  readonly client: string;
  readonly ip: string;
  readonly count: number;
  readonly maxRetry: number;
  readonly pardoned: boolean;
  readonly method: string;
  readonly route: string | null | undefined;
  readonly path: string;
  readonly status: number;
  readonly dryRun: boolean;
}

export interface PardonEvent {
  readonly jail: string;
  readonly client: string;
  readonly ip: string;
  readonly untilMs: number;
  readonly maxRetry: number;
}

export interface BlockedEvent {
  readonly jail: string;
  readonly client: string;
  readonly untilMs: number;
}

/** The events a keeper emits, with their data. */
export interface KeeperEvents {
  failure: [FailureEvent];
  ban: [BanEvent];
  wouldBan: [BanEvent];
  unban: [UnbanEvent];
  pardon: [PardonEvent];
  blocked: [BlockedEvent];
  warning: [{ code: WarningCode; message: string }];
  storeError: [{ operation: string; error: unknown }];
}

const NONE: ObserveResult = Object.freeze({ ignored: null, jails: Object.freeze([]) });
const NONE_PROMISE = Promise.resolve(NONE);
const CLOSED: ObserveResult = Object.freeze({ ignored: 'closed', jails: Object.freeze([]) });
const INVALID_CLIENT: ObserveResult = Object.freeze({ ignored: 'invalidClient', jails: Object.freeze([]) });
const DEFAULT_MANUAL_BAN_MS = 24 * 3600_000;

/**
 * Runtime edits of the ignore list. With a shared store (Redis), an edit also reaches every other
 * instance: `add` and `remove` write it in the background (a failure is a `storeError` event);
 * `addShared` and `removeShared` resolve once the store has it.
 */
export interface IgnoreList {
  /** Adds an address, CIDR or named range; returns the networks added here. Throws JK_ERR_INVALID_CIDR. */
  add(entry: string): string[];
  /** Removes an entry as added; returns the networks removed here. */
  remove(entry: string): string[];
  /** Like `add`, resolving once a shared store holds the entry (at once without one). */
  addShared(entry: string): Promise<string[]>;
  /** Like `remove`, resolving once a shared store has dropped the entry. */
  removeShared(entry: string): Promise<string[]>;
  list(): string[];
  /** True when the address (or IPv6 client key) is ignored. */
  has(address: string): boolean;
}

/**
 * The jail engine. Create it with {@link createJailkeeper}; the framework adapters feed it
 * responses with `observe()` and ask `check()` before any handler runs.
 */
export class Jailkeeper extends EventEmitter<KeeperEvents> {
  readonly options: ResolvedOptions;
  readonly store: Store;
  readonly clock: Clock;
  readonly ignore: IgnoreList;
  /** Resolves once the store has loaded (restored bans are enforced from then; the memory store loads at once). */
  readonly ready: Promise<void>;
  readonly #index = new BanIndex();
  readonly #ignoreSet: IpSet;
  readonly #warner: Warner;
  readonly #resolver: ClientResolver;
  readonly #jails: readonly ResolvedJail[];
  /** True when some jail bans with scope 'jail': adapters then pass request details to check(). */
  readonly hasJailScope: boolean;
  /** Statuses that any jail counts or pardons: anything else skips the jails at once. */
  readonly #relevantStatuses: ReadonlySet<number>;
  /** True when some jail counts any status (paths or user agents only). */
  readonly #hasAnyStatusJail: boolean;
  /** Each jail's failure rule, built once: the store call then carries only the client. */
  readonly #rules = new Map<string, FailureRule>();
  readonly #blocked = new Map<string, number>();
  readonly #wouldBan = new Map<string, number>();
  readonly #sweepTimer: NodeJS.Timeout;
  readonly #connections = new ConnectionTracker();
  #sweeping: Promise<void> | undefined;
  #closed = false;
  /**
   * Failures being recorded, by client key: the latest store call of each client. A request of a
   * client with a failure in flight waits for it (see settling()), so that a remote store's round
   * trip cannot let a fast attacker's next attempt in before its ban lands.
   */
  readonly #recording = new Map<string, Promise<unknown>>();
  /** The entries this process knows to be in the store's shared ignore list. */
  #sharedIgnore = new Set<string>();
  /** [issue 21: verified crawlers] undefined unless the option is on. */
  readonly #crawlers: CrawlerVerifier | undefined;

  constructor(input: JailkeeperOptions) {
    super();
    const options = resolveOptions(input);
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.#jails = options.jails;
    this.#warner = new Warner(options.logger, (code, message) => {
      if (this.listenerCount('warning') > 0) this.#emit('warning', { code, message });
    });
    this.#resolver = new ClientResolver(options.clientIp, options.ipv6Subnet, this.#warner);
    this.#ignoreSet = new IpSet(options.ignoreIp);
    this.ignore = this.#ignoreApi();
    // [issue 21: verified crawlers]
    this.#crawlers = options.verifiedCrawlers
      ? new CrawlerVerifier(options.verifiedCrawlers, this.clock, this.#warner)
      : undefined;
    const relevant = new Set<number>();
    let anyStatus = false;
    for (const jail of this.#jails) {
      if (jail.statuses === null) anyStatus = true;
      else for (const s of jail.statuses) relevant.add(s);
      if (jail.pardon) for (const s of jail.pardon.statuses) relevant.add(s);
    }
    this.#relevantStatuses = relevant;
    this.hasJailScope = this.#jails.some((j) => j.scope === 'jail');
    this.#hasAnyStatusJail = anyStatus;
    const recidive: RecidiveInput | null = options.recidive && {
      jail: RESERVED_JAILS.recidive,
      findTimeMs: options.recidive.findTimeMs,
      maxRetry: options.recidive.maxRetry,
      banTimeMs: options.recidive.banTimeMs,
      dryRun: options.recidive.dryRun,
    };
    for (const jail of this.#jails) {
      this.#rules.set(
        jail.name,
        Object.freeze({
          jail: jail.name,
          findTimeMs: jail.findTimeMs,
          maxRetry: jail.maxRetry,
          pardonMaxRetry: jail.pardon?.maxRetry ?? jail.maxRetry,
          banTimeMs: jail.banTimeMs,
          increment: jail.increment,
          dryRun: jail.dryRun,
          historyTimeMs: options.historyTimeMs,
          recidive: jail.feedsRecidive ? recidive : null,
          reason: `maxRetry (${jail.maxRetry}) failures within ${formatDuration(jail.findTimeMs)}`,
        }),
      );
    }
    this.store =
      options.store ??
      createMemoryStore({ maxTrackedClients: options.maxTrackedClients, persist: options.persist });
    const init = this.store.init({
      clock: this.clock,
      onBan: (ban, origin) => this.#applyBan(ban, origin),
      onUnban: (ban, origin) => this.#applyUnban(ban, 'manual', origin),
      isIgnored: (client) => this.#isIgnoredKey(client),
      warn: (code, message, details) => this.#warner.warn(code, message, details),
      activeBans: () => this.activeBans(),
      onIgnore: (op, entries) => {
        if (op === 'set') this.#syncIgnore(entries);
        else this.#editShared(op, entries);
      },
    });
    this.ready = Promise.resolve(init).catch((error) => {
      this.#storeError('init', error);
    });
    this.#sweepTimer = setInterval(() => void this.sweep(), options.sweepIntervalMs);
    this.#sweepTimer.unref();
  }

  /**
   * Emits without letting a listener's exception reach the engine: a throwing listener must not
   * turn a recorded ban into a rejected observe(), nor crash a response handler. It is reported once.
   */
  #emit<K extends keyof KeeperEvents>(name: K, ...args: KeeperEvents[K]): void {
    try {
      (this.emit as (n: K, ...a: KeeperEvents[K]) => boolean)(name, ...args);
    } catch (error) {
      this.options.logger?.error(
        { event: 'listenerError', listener: name, err: error },
        'jailkeeper: an event listener threw',
      );
      this.#warner.warn(
        'JK_WRN_LISTENER_ERROR',
        `A "${String(name)}" listener threw: ${(error as Error)?.message}. jailkeeper went on.`,
      );
    }
  }

  /** One-time warning through the logger (or process warnings), also emitted as `warning`. */
  warn(code: WarningCode, message: string, details?: object): void {
    this.#warner.warn(code, message, details);
  }

  /**
   * The client of a request: the socket peer, or behind a trusted proxy the address its header
   * names (walked from the right). Headers from any other peer are ignored. `request` is handed to
   * a configured `getClientIp`. `undefined` only when there is no usable peer address.
   */
  resolve(peer: string | undefined, headers: Headers, request?: unknown): ClientIdentity | undefined {
    return this.#resolver.resolve(peer, headers, request);
  }

  /**
   * Registers a connection of a client, so that a ban closes it (with closeConnectionsOnBan).
   * Keep-alive sockets from a trusted proxy are skipped; `upgraded` sockets (WebSockets) are tracked
   * even behind a proxy, which opens one per client. Cheap to call on every request.
   */
  trackConnection(socket: Duplex, identity: ClientIdentity, upgraded = false): void {
    if (this.options.closeConnectionsOnBan) this.#connections.track(socket, identity, upgraded);
  }

  /**
   * Guards a server below the framework: destroys a banned direct peer's connection at
   * `connection`, before HTTP parsing, and refuses banned clients' upgrade (WebSocket) requests,
   * which bypass Express middleware. Returns a function that removes the guard.
   * @example
   * const server = app.listen(3000);
   * keeper.guard(server);
   */
  guard(server: Server | NetServer, options?: GuardOptions): () => void {
    return guardServer(this, server, options);
  }

  /** The canonical identity of an address written as text, or undefined. */
  identify(address: string): ClientIdentity | undefined {
    return identify(address, this.options.ipv6Subnet);
  }

  // ---------------------------------------------------------------- enforcement (hot path)

  /**
   * Whether the client is banned now, synchronously and without I/O. For a jail-scope ban, pass the
   * request: it is refused only on the routes that jail watches. Ignored clients are never refused.
   */
  check(client: ClientIdentity | string, request?: RequestInfo): Verdict {
    const key = typeof client === 'string' ? this.identify(client)?.key : client.key;
    if (key === undefined) return NOT_BANNED;
    const entries = this.#index.get(key);
    if (entries === undefined)
      return this.store.refusing === true ? this.#refuseWhileDown(client, key) : NOT_BANNED;
    return this.#checkBanned(client, key, entries, request);
  }

  /**
   * A promise when a failure of this client is still being recorded (a remote store's round trip),
   * else `undefined` (at once, and always with the memory store). Adapters await it before
   * `check()`, so a client's next request is judged after its last failure counted: an attacker
   * cannot slip attempts past `maxRetry` in the round trip. Clean clients never wait.
   */
  settling(client: ClientIdentity): Promise<unknown> | undefined {
    if (this.#recording.size === 0) return undefined;
    return this.#recording.get(client.key);
  }

  /** The store is down and fails closed: every client but the ignored ones is refused for now. */
  #refuseWhileDown(client: ClientIdentity | string, key: string): Verdict {
    const ip = typeof client === 'string' ? client : client.ip;
    if (this.#isIgnoredClient(ip, key)) return NOT_BANNED;
    const now = this.clock.now();
    const ban: Ban = {
      jail: RESERVED_JAILS.storeDown,
      client: key,
      startMs: now,
      endMs: now + 5000,
      banCount: 0,
      reason: 'the ban store is unreachable and onStoreError is deny',
      manual: false,
    };
    return { banned: true, jail: ban.jail, client: key, untilMs: ban.endMs, ban };
  }

  #checkBanned(
    client: ClientIdentity | string,
    key: string,
    entries: readonly IndexedBan[],
    request: RequestInfo | undefined,
  ): Verdict {
    const now = this.clock.now();
    let found: Banned | undefined;
    for (const entry of entries) {
      if (entry.ban.endMs <= now) continue;
      if (!entry.appScope && (request === undefined || !this.#watches(entry.ban.jail, request))) continue;
      if (found === undefined || entry.ban.endMs > found.untilMs) found = entry.verdict;
    }
    if (found === undefined) return NOT_BANNED;
    const ip = typeof client === 'string' ? client : client.ip;
    if (this.#isIgnoredClient(ip, key)) return NOT_BANNED;
    this.#blocked.set(found.jail, (this.#blocked.get(found.jail) ?? 0) + 1);
    if (this.listenerCount('blocked') > 0) {
      this.#emit('blocked', { jail: found.jail, client: key, untilMs: found.untilMs });
    }
    return found;
  }

  #watches(jailName: string, request: RequestInfo): boolean {
    const jail = this.options.jailsByName.get(jailName);
    if (jail === undefined) return true;
    const method = request.method.toUpperCase();
    if (jail.methods !== null && !jail.methods.has(method === 'HEAD' ? 'GET' : method)) return false;
    if (jail.paths.isEmpty) return true;
    if (typeof request.route === 'string') return jail.paths.matches(request.route);
    // Before routing (Express), the route is unknown: match the raw path and every spelling a
    // router may take for it. Matching too much only refuses a banned client on a few more URLs;
    // matching too little would let it reach the jail's routes.
    const path = pathOf(request.path);
    return jail.paths.matches(path) || jail.paths.matches(normalizePath(path));
  }

  // ---------------------------------------------------------------- counting

  /**
   * False when no jail counts or pardons a response with this status, whatever its route: an
   * adapter then skips building the event at all. Precomputed at setup.
   */
  watchesStatus(status: number): boolean {
    return this.#hasAnyStatusJail || this.#relevantStatuses.has(status);
  }

  /**
   * Records one finished response: counts it in every jail it fails, pardons where it succeeds,
   * bans at the threshold. Never rejects: store trouble is reported as an `error` outcome.
   */
  observe(event: ResponseEvent): Promise<ObserveResult> {
    if (this.#closed) return Promise.resolve(CLOSED);
    if (!this.#hasAnyStatusJail && !this.#relevantStatuses.has(event.status)) return NONE_PROMISE;
    // [issue 21: verified crawlers] A claimed crawler that a covered jail would count is verified
    // first (after the response, never for other clients); a real one goes on without those jails.
    if (this.#crawlers !== undefined && typeof event.method === 'string') {
      const screened = this.#crawlers.screen(
        event,
        this.#jails,
        (jail) => this.#fails(jail as ResolvedJail, event),
        (only) =>
          this.#closed
            ? Promise.resolve(CLOSED)
            : this.#observe(only === event.jails ? event : { ...event, jails: only }),
      );
      if (screened !== undefined) return screened;
    }
    return this.#observe(event);
  }

  #observe(event: ResponseEvent): Promise<ObserveResult> {
    let failures: ResolvedJail[] | undefined;
    let exempt: ResolvedJail[] | undefined;
    let pardons: ResolvedJail[] | undefined;
    const only = event.jails;
    for (const jail of this.#jails) {
      if (only !== undefined && !only.has(jail.name)) continue;
      if (this.#fails(jail, event)) {
        if (this.#isExempt(jail, event)) {
          exempt ??= [];
          exempt.push(jail);
        } else {
          failures ??= [];
          failures.push(jail);
        }
      } else if (jail.pardon !== null && this.#succeeds(jail, event)) {
        pardons ??= [];
        pardons.push(jail);
      }
    }
    if (failures === undefined && pardons === undefined && exempt === undefined) return NONE_PROMISE;
    if (failures?.length === 1 && pardons === undefined && exempt === undefined) {
      // The common case, one failing jail, with one promise from the store and one from then().
      const id = typeof event.client === 'string' ? this.identify(event.client) : event.client;
      if (id === undefined) return Promise.resolve(INVALID_CLIENT);
      const jail = failures[0] as ResolvedJail;
      if (this.#isIgnored(id)) {
        return Promise.resolve({ ignored: 'ignoreIp', jails: [{ jail: jail.name, action: 'ignored' }] });
      }
      return this.#fail(jail, id, event, true);
    }
    return this.#record(event, failures ?? [], exempt ?? [], pardons ?? []);
  }

  #target(event: { route?: string | null; path: string }): string {
    return typeof event.route === 'string' ? event.route : event.path;
  }

  #fails(jail: ResolvedJail, event: ResponseEvent): boolean {
    if (jail.statuses !== null && !jail.statuses.has(event.status)) return false;
    if (jail.methods !== null && !jail.methods.has(event.method.toUpperCase())) return false;
    if (!jail.paths.isEmpty && !jail.paths.matches(this.#target(event))) return false;
    if (jail.userAgent !== undefined && !jail.userAgent(event.userAgent ?? '')) return false;
    return true;
  }

  /** Exemptions name routes: a request the router matched to no route is never exempt. */
  #isExempt(jail: ResolvedJail, event: ResponseEvent): boolean {
    if (jail.exempt.isEmpty || event.route === null) return false;
    return jail.exempt.matches(this.#target(event));
  }

  #succeeds(jail: ResolvedJail, event: ResponseEvent): boolean {
    const pardon = jail.pardon;
    if (pardon === null || !pardon.statuses.has(event.status)) return false;
    if (pardon.methods !== null && !pardon.methods.has(event.method.toUpperCase())) return false;
    return pardon.paths.matches(this.#target(event));
  }

  async #record(
    event: ResponseEvent,
    failures: ResolvedJail[],
    exempt: ResolvedJail[],
    pardons: ResolvedJail[],
  ): Promise<ObserveResult> {
    const id = typeof event.client === 'string' ? this.identify(event.client) : event.client;
    if (id === undefined) return INVALID_CLIENT;
    const outcomes: JailOutcome[] = exempt.map((jail) => ({ jail: jail.name, action: 'exempt' as const }));
    if (this.#isIgnored(id)) {
      for (const jail of [...failures, ...pardons]) outcomes.push({ jail: jail.name, action: 'ignored' });
      return { ignored: 'ignoreIp', jails: outcomes };
    }
    for (const jail of failures) outcomes.push(await this.#fail(jail, id, event, false));
    for (const jail of pardons) outcomes.push(await this.#pardon(jail, id));
    return { ignored: null, jails: outcomes };
  }

  #fail(jail: ResolvedJail, id: ClientIdentity, event: ResponseEvent, alone: true): Promise<ObserveResult>;
  #fail(jail: ResolvedJail, id: ClientIdentity, event: ResponseEvent, alone: false): Promise<JailOutcome>;
  /** Records a failure in one jail. `alone`: the response failed only here, so resolve the whole result. */
  #fail(
    jail: ResolvedJail,
    id: ClientIdentity,
    event: ResponseEvent,
    alone: boolean,
  ): Promise<JailOutcome | ObserveResult> {
    const rule = this.#rules.get(jail.name) as FailureRule;
    const jitterMs =
      jail.increment && jail.increment.jitterMs > 0 ? Math.floor(Math.random() * jail.increment.jitterMs) : 0;
    let pending: Promise<FailureResult>;
    try {
      pending = this.store.recordFailure(rule, id.key, jitterMs);
    } catch (error) {
      pending = Promise.reject(error);
    }
    const key = id.key;
    const settled: Promise<unknown> = pending.then(
      () => {
        if (this.#recording.get(key) === settled) this.#recording.delete(key);
      },
      () => {
        if (this.#recording.get(key) === settled) this.#recording.delete(key);
      },
    );
    this.#recording.set(key, settled);
    return pending.then(
      (result) => {
        const outcome = this.#afterFailure(jail, id, event, result);
        return alone ? { ignored: null, jails: [outcome] } : outcome;
      },
      (error) => {
        this.#storeError('recordFailure', error);
        const outcome: JailOutcome = { jail: jail.name, action: 'error' };
        return alone ? { ignored: null, jails: [outcome] } : outcome;
      },
    );
  }

  #afterFailure(
    jail: ResolvedJail,
    id: ClientIdentity,
    event: ResponseEvent,
    result: FailureResult,
  ): JailOutcome {
    if (result.alreadyBanned) {
      if (result.ban) this.#applyBan(result.ban, 'local', id.ip, true);
      return { jail: jail.name, action: 'alreadyBanned', ...(result.ban ? { ban: result.ban } : {}) };
    }
    if (this.listenerCount('failure') > 0) {
      this.#emit('failure', {
        jail: jail.name,
        client: id.key,
        ip: id.ip,
        count: result.count,
        maxRetry: result.maxRetry,
        pardoned: result.pardoned,
        method: event.method,
        route: event.route,
        path: event.path,
        status: event.status,
        dryRun: jail.dryRun,
      });
    }
    if (result.recidive) {
      if (result.recidiveDryRun) this.#announceWouldBan(result.recidive, id.ip);
      else this.#applyBan(result.recidive, 'local', id.ip);
    }
    if (result.wouldBan) {
      this.#announceWouldBan(result.wouldBan, id.ip);
      return {
        jail: jail.name,
        action: 'wouldBan',
        count: result.count,
        maxRetry: result.maxRetry,
        ban: result.wouldBan,
      };
    }
    if (result.ban) {
      this.#applyBan(result.ban, 'local', id.ip);
      return {
        jail: jail.name,
        action: 'banned',
        count: result.count,
        maxRetry: result.maxRetry,
        ban: result.ban,
      };
    }
    return { jail: jail.name, action: 'counted', count: result.count, maxRetry: result.maxRetry };
  }

  async #pardon(jail: ResolvedJail, id: ClientIdentity): Promise<JailOutcome> {
    const pardon = jail.pardon as NonNullable<ResolvedJail['pardon']>;
    try {
      await this.store.recordPardon(jail.name, id.key, pardon.forMs);
    } catch (error) {
      this.#storeError('recordPardon', error);
      return { jail: jail.name, action: 'error' };
    }
    if (this.listenerCount('pardon') > 0) {
      this.#emit('pardon', {
        jail: jail.name,
        client: id.key,
        ip: id.ip,
        untilMs: this.clock.now() + pardon.forMs,
        maxRetry: pardon.maxRetry,
      });
    }
    return { jail: jail.name, action: 'pardoned', maxRetry: pardon.maxRetry };
  }

  #scopeOf(jailName: string): 'app' | 'jail' {
    return this.options.jailsByName.get(jailName)?.scope ?? 'app';
  }

  #banEvent(ban: Ban, origin: BanEvent['origin'], ip?: string): BanEvent {
    return {
      ...ban,
      durationMs: ban.endMs - ban.startMs,
      scope: this.#scopeOf(ban.jail),
      origin,
      ...(ip === undefined ? {} : { ip }),
    };
  }

  #announceWouldBan(ban: Ban, ip: string): void {
    this.#wouldBan.set(ban.jail, (this.#wouldBan.get(ban.jail) ?? 0) + 1);
    this.options.logger?.info(
      { event: 'wouldBan', jail: ban.jail, client: ban.client, durationMs: ban.endMs - ban.startMs },
      `jailkeeper: dry run: would ban ${ban.client} in ${ban.jail} for ${formatDuration(ban.endMs - ban.startMs)}`,
    );
    this.#emit('wouldBan', this.#banEvent(ban, 'local', ip));
  }

  /** Adds a ban to the local index and announces it, unless the index already holds this very ban. */
  #applyBan(ban: Ban, origin: BanEvent['origin'], ip?: string, quiet = false): void {
    if (ban.endMs <= this.clock.now()) return;
    const held = this.#index.get(ban.client)?.find((e) => e.ban.jail === ban.jail);
    if (held && held.ban.startMs === ban.startMs && held.ban.endMs === ban.endMs) return;
    const appScope = this.#scopeOf(ban.jail) === 'app';
    this.#index.add(ban, appScope);
    // A jail-scope ban refuses only some routes: the client's other traffic may go on.
    if (appScope && this.options.closeConnectionsOnBan) this.#connections.close(ban.client);
    if (quiet) return;
    if (origin === 'local') {
      this.options.logger?.info(
        {
          event: 'ban',
          jail: ban.jail,
          client: ban.client,
          endMs: ban.endMs,
          banCount: ban.banCount,
          reason: ban.reason,
        },
        `jailkeeper: banned ${ban.client} in ${ban.jail} for ${formatDuration(ban.endMs - ban.startMs)} (${ban.reason})`,
      );
    }
    this.#emit('ban', this.#banEvent(ban, origin, ip));
  }

  #applyUnban(ban: Ban, cause: UnbanEvent['cause'], origin: UnbanEvent['origin']): void {
    const removed = this.#index.remove(ban.client, ban.jail);
    if (removed === undefined) return;
    this.options.logger?.info(
      { event: 'unban', jail: ban.jail, client: ban.client, cause },
      `jailkeeper: unbanned ${ban.client} in ${ban.jail} (${cause})`,
    );
    this.#emit('unban', { ...removed.ban, cause, origin });
  }

  #storeError(operation: string, error: unknown): void {
    this.options.logger?.error(
      { event: 'storeError', operation, err: error },
      `jailkeeper: store ${operation} failed`,
    );
    if (this.listenerCount('storeError') > 0) this.#emit('storeError', { operation, error });
  }

  // ---------------------------------------------------------------- ignore list

  #isIgnored(id: ClientIdentity): boolean {
    return this.#isIgnoredClient(id.ip, id.key);
  }

  /** The one ignore test: the client's own address, or (IPv6) its whole prefix. IPv4's key is its address. */
  #isIgnoredClient(ip: string, key: string): boolean {
    if (this.#ignoreSet.size === 0) return false;
    return this.#ignoreSet.hasText(ip) || (ip !== key && this.#isIgnoredKey(key));
  }

  /** A client key is ignored when the ignore list covers all of it (an IPv6 prefix needs a covering network). */
  #isIgnoredKey(key: string): boolean {
    if (this.#ignoreSet.size === 0) return false;
    const cidr = parseCidr(key);
    return typeof cidr !== 'string' && this.#ignoreSet.covers(cidr);
  }

  #parseIgnore(entry: string): string[] {
    const networks = typeof entry === 'string' ? canonicalNetworks(entry.trim()) : 'not a string';
    if (typeof networks === 'string') {
      throw new JailkeeperError(
        'JK_ERR_INVALID_CIDR',
        `ignore entry must be an IP address, a CIDR or a named range; received ${JSON.stringify(String(entry).slice(0, 80))} (${networks}).`,
      );
    }
    return networks;
  }

  /** Applies entries to this process's ignore list; returns those that changed it. */
  #applyIgnore(op: 'add' | 'remove', networks: readonly string[]): string[] {
    const set = this.#ignoreSet;
    return networks.filter((text) => {
      const cidr = parseCidr(text);
      if (typeof cidr === 'string') return false;
      return op === 'add' ? set.add(cidr) : set.remove(cidr);
    });
  }

  /** An edit of the shared list, made here or learned from the store: applied, and remembered as shared. */
  #editShared(op: 'add' | 'remove', networks: readonly string[]): string[] {
    for (const n of networks) {
      if (op === 'add') this.#sharedIgnore.add(n);
      else this.#sharedIgnore.delete(n);
    }
    return this.#applyIgnore(op, networks);
  }

  /** The shared list was (re)loaded: entries it no longer holds are dropped, unless configured. */
  #syncIgnore(entries: readonly string[]): void {
    const next = new Set(entries);
    const configured = new Set(this.options.ignoreIp.map((c) => formatCidr(c)));
    const stale = [...this.#sharedIgnore].filter((e) => !next.has(e) && !configured.has(e));
    this.#applyIgnore('remove', stale);
    this.#applyIgnore('add', entries);
    this.#sharedIgnore = next;
  }

  #ignoreApi(): IgnoreList {
    const edit = (op: 'add' | 'remove', entry: string) => {
      const networks = this.#parseIgnore(entry);
      const write = op === 'add' ? this.store.addIgnore : this.store.removeIgnore;
      if (write === undefined) return { changed: this.#applyIgnore(op, networks), shared: Promise.resolve() };
      return { changed: this.#editShared(op, networks), shared: write.call(this.store, networks) };
    };
    const background = (op: 'add' | 'remove') => (entry: string) => {
      const { changed, shared } = edit(op, entry);
      shared.catch((error: unknown) => this.#storeError(`${op}Ignore`, error));
      return changed;
    };
    const awaited = (op: 'add' | 'remove') => async (entry: string) => {
      const { changed, shared } = edit(op, entry);
      await shared;
      return changed;
    };
    return Object.freeze({
      add: background('add'),
      remove: background('remove'),
      addShared: awaited('add'),
      removeShared: awaited('remove'),
      list: () => this.#ignoreSet.list(),
      has: (address: string) => {
        const ip = parseIp(address.trim());
        if (ip !== undefined) return this.#ignoreSet.has(ip);
        return this.#isIgnoredKey(address.trim());
      },
    });
  }

  // ---------------------------------------------------------------- operators

  #requireJail(jail: string | undefined, fallback: string): string {
    const name = jail ?? fallback;
    if (name === RESERVED_JAILS.manual || this.options.jailsByName.has(name)) return name;
    if (name === RESERVED_JAILS.recidive && this.options.recidive) return name;
    throw new JailkeeperError(
      'JK_ERR_UNKNOWN_JAIL',
      `There is no jail ${JSON.stringify(name)}; the jails are ${[...this.options.jailsByName.keys(), RESERVED_JAILS.manual].join(', ')}.`,
    );
  }

  #requireClient(address: string): ClientIdentity {
    return requireClient(address, this.options.ipv6Subnet);
  }

  /**
   * Bans a client by hand, with its own duration (default: the jail's banTime; 1d in the `manual` jail).
   * Throws JK_ERR_INVALID_IP, JK_ERR_UNKNOWN_JAIL, JK_ERR_IGNORED_CLIENT.
   */
  async ban(
    address: string,
    options: { jail?: string; duration?: Duration; reason?: string } = {},
  ): Promise<BanInfo> {
    this.#assertOpen();
    const id = this.#requireClient(address);
    const jail = this.#requireJail(options.jail, RESERVED_JAILS.manual);
    if (this.#isIgnored(id)) {
      throw new JailkeeperError(
        'JK_ERR_IGNORED_CLIENT',
        `${id.ip} is in the ignore list, which is never banned; remove it from ignoreIp first.`,
      );
    }
    const jailBanMs =
      jail === RESERVED_JAILS.recidive
        ? (this.options.recidive?.banTimeMs ?? DEFAULT_MANUAL_BAN_MS)
        : (this.options.jailsByName.get(jail)?.banTimeMs ?? DEFAULT_MANUAL_BAN_MS);
    const durationMs = options.duration === undefined ? jailBanMs : toBanTimeMs('duration', options.duration);
    const ban = await this.store.ban({
      jail,
      client: id.key,
      durationMs,
      reason: options.reason ?? 'manual ban',
      historyTimeMs: this.options.historyTimeMs,
    });
    this.#applyBan(ban, 'local', id.ip);
    return this.#info(ban, this.clock.now());
  }

  /** Lifts a client's bans (in one jail, or every jail) and clears its failure counters there. */
  async unban(address: string, options: { jail?: string } = {}): Promise<Ban[]> {
    this.#assertOpen();
    const id = this.#requireClient(address);
    if (options.jail !== undefined) this.#requireJail(options.jail, RESERVED_JAILS.manual);
    const lifted = await this.store.unban(id.key, options.jail);
    // The index may hold bans the store no longer has (expired, or lifted elsewhere): drop them too.
    for (const entry of [...(this.#index.get(id.key) ?? [])]) {
      if (options.jail === undefined || entry.ban.jail === options.jail)
        this.#applyUnban(entry.ban, 'manual', 'local');
    }
    return lifted;
  }

  /** Lifts every ban (in one jail, or all). */
  async unbanAll(options: { jail?: string } = {}): Promise<Ban[]> {
    this.#assertOpen();
    if (options.jail !== undefined) this.#requireJail(options.jail, RESERVED_JAILS.manual);
    const lifted = await this.store.unbanAll(options.jail);
    for (const entry of [...this.#index.values()]) {
      if (options.jail === undefined || entry.ban.jail === options.jail)
        this.#applyUnban(entry.ban, 'manual', 'local');
    }
    return lifted;
  }

  #info(ban: Ban, now: number): BanInfo {
    return { ...ban, timeLeftMs: Math.max(0, ban.endMs - now), scope: this.#scopeOf(ban.jail) };
  }

  /** The active bans with their time left, soonest to end first. */
  async bans(options: { jail?: string } = {}): Promise<BanInfo[]> {
    const now = this.clock.now();
    const list = await this.store.bans(options.jail);
    return list.map((ban) => this.#info(ban, now)).sort((a, b) => a.endMs - b.endMs);
  }

  /** Per jail: currently failed, total failed, currently banned, total banned, like fail2ban-client status. */
  async status(): Promise<KeeperStatus> {
    const names = this.#jails.map((j) => j.name);
    if (this.options.recidive) names.push(RESERVED_JAILS.recidive);
    names.push(RESERVED_JAILS.manual);
    const counts = await this.store.status(names);
    const bans = await this.store.bans();
    const jails: Record<string, JailStatus> = {};
    for (const name of names) {
      jails[name] = {
        ...(counts[name] as StoreJailStatus),
        dryRun:
          this.options.jailsByName.get(name)?.dryRun ??
          (name === RESERVED_JAILS.recidive && !!this.options.recidive?.dryRun),
        blocked: this.#blocked.get(name) ?? 0,
        wouldBan: this.#wouldBan.get(name) ?? 0,
        bannedClients: bans.filter((b) => b.jail === name).map((b) => b.client),
      };
    }
    return { store: this.store.name, jails, ignoreIp: this.ignore.list() };
  }

  /** The bans this process enforces now, read from its local index (no store call). */
  activeBans(): Ban[] {
    const now = this.clock.now();
    return [...this.#index.values()].map((e) => e.ban).filter((b) => b.endMs > now);
  }

  /**
   * This process's counters, read without a store call: requests refused and dry-run bans, per
   * jail. For metrics; `status()` has the store's counts too.
   */
  counters(): { blocked: Record<string, number>; wouldBan: Record<string, number> } {
    return { blocked: Object.fromEntries(this.#blocked), wouldBan: Object.fromEntries(this.#wouldBan) };
  }

  /** Announces and drops expired bans. Runs on a timer; callable by tests with a manual clock. */
  sweep(): Promise<void> {
    this.#sweeping ??= (async () => {
      try {
        for (const entry of this.#index.expire(this.clock.now())) {
          this.options.logger?.info(
            { event: 'unban', jail: entry.ban.jail, client: entry.ban.client, cause: 'expired' },
            `jailkeeper: unbanned ${entry.ban.client} in ${entry.ban.jail} (expired)`,
          );
          this.#emit('unban', { ...entry.ban, cause: 'expired', origin: 'local' });
        }
        await this.store.sweep();
      } catch (error) {
        this.#storeError('sweep', error);
      } finally {
        this.#sweeping = undefined;
      }
    })();
    return this.#sweeping;
  }

  #assertOpen(): void {
    if (this.#closed) throw new JailkeeperError('JK_ERR_CLOSED', 'This jailkeeper has been closed.');
  }

  /** Stops timers and closes the store (writing the snapshot, with `persist`). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweepTimer);
    await this.#sweeping;
    await this.ready;
    await this.store.close();
  }
}

/**
 * A path as routers may read it: percent-decoded, lower case, slashes collapsed, dot segments
 * resolved, `;params` and the trailing slash removed.
 */
export function normalizePath(path: string): string {
  let text = path;
  try {
    text = decodeURIComponent(path);
  } catch {
    // a malformed escape: keep the raw text
  }
  const out: string[] = [];
  for (const raw of text.toLowerCase().replace(/\\/g, '/').split('/')) {
    const segment = raw.split(';')[0] as string;
    if (segment === '' || segment === '.') continue;
    if (segment === '..') out.pop();
    else out.push(segment);
  }
  return `/${out.join('/')}`;
}

/**
 * Creates the jail engine. Configuration is validated here, once: a mistake throws a
 * {@link JailkeeperConfigError} naming the option.
 * @example
 * const keeper = createJailkeeper({
 *   jails: { login: { statuses: [401], paths: ['/login'], maxRetry: 5, findTime: '10m', banTime: '1h' } },
 *   ignoreIp: ['127.0.0.1/8'],
 * });
 */
export function createJailkeeper(options: JailkeeperOptions): Jailkeeper {
  return new Jailkeeper(options);
}
