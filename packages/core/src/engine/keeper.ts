import { EventEmitter } from 'node:events';
import type { Server } from 'node:http';
import type { Server as NetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Clock } from '../clock.js';
import { JailkeeperError, type Logger, type WarningCode } from '../errors.js';
import { isAccountKey } from '../identity/account.js';
import {
  type ClientResolver,
  expressTrustMissing,
  type Headers,
  type ProxyTrust,
} from '../identity/client-ip.js';
import { type ClientIdentity, identify } from '../identity/identity.js';
import { type UncoveredPattern, uncoveredMessage, uncoveredPatterns } from '../paths/route-coverage.js';
import type { Ban, Store } from '../store/store.js';
import type { Admitter, AttemptsStatus } from './admission.js';
import { assemble } from './assemble.js';
import type { BanBook } from './ban-book.js';
import type { Verdict } from './ban-index.js';
import { type ConnectionTracker, type GuardOptions, guardServer } from './connections.js';
import type { Enforcer } from './enforcement.js';
import type {
  Announcer,
  BanInfo,
  BrokenLink,
  KeeperEvents,
  KeeperStatus,
  ObserveResult,
  RequestInfo,
  ResponseEvent,
} from './events.js';
import type { IgnoreList } from './ignore-list.js';
import type { InFlight } from './in-flight.js';
import { registerInternals } from './internals.js';
import { type BanInfoPage, type ManualBanOptions, type Operations, pageLimit } from './operations.js';
import type { JailkeeperOptions, ResolvedOptions } from './options.js';
import type { Recorder } from './recording.js';
import { resolveOptions } from './resolve-options.js';
import type { Sweeper } from './sweeper.js';

/**
 * The jail engine. Create it with {@link createJailkeeper}; the framework adapters feed it
 * responses with `observe()` and ask `check()` before any handler runs. This class is a facade:
 * enforcement, recording, the ban book, the ignore list and the operators' calls each live in
 * their own module (see docs/architecture.md).
 */
export class Jailkeeper extends EventEmitter<KeeperEvents> {
  /** The validated, frozen options. */
  readonly options: ResolvedOptions;
  readonly store: Store;
  /** The app's clock: failure windows, pardons, the memory store's times. */
  readonly clock: Clock;
  /**
   * The clock bans are judged by: the store's (`Store.clock`, e.g. Redis time for the Redis store),
   * else `clock`. `check()`, expiry and `Retry-After` use it, so a skewed app clock changes nothing.
   */
  readonly banClock: Clock;
  /** The ignore list: configured entries and runtime edits (shared through the store). */
  readonly ignore: IgnoreList;
  /** Resolves once the store has loaded (restored bans are enforced from then; the memory store loads at once). */
  readonly ready: Promise<void>;
  /** True when some jail bans with scope 'jail': adapters then pass request details to check(). */
  readonly hasJailScope: boolean;
  readonly #announcer: Announcer;
  readonly #resolver: ClientResolver;
  readonly #connections: ConnectionTracker;
  readonly #book: BanBook;
  readonly #enforcer: Enforcer;
  readonly #recorder: Recorder;
  readonly #flight: InFlight;
  readonly #admitter: Admitter;
  readonly #operations: Operations;
  readonly #sweeper: Sweeper;
  #closing: Promise<void> | undefined;
  #dropped: number | undefined;
  #isReady = false;
  /** Rules already reported by `checkRoutes()`. */
  readonly #reportedPatterns = new Set<string>();

  constructor(input: JailkeeperOptions) {
    super();
    const parts = assemble(this, resolveOptions(input), (ready) => {
      this.#isReady = ready;
    });
    this.options = parts.options;
    this.clock = parts.clock;
    this.banClock = parts.banClock;
    this.store = parts.store;
    this.ignore = parts.ignore;
    this.ready = parts.ready;
    this.hasJailScope = parts.options.jails.some((j) => j.scope === 'jail');
    this.#announcer = parts.announcer;
    this.#resolver = parts.resolver;
    this.#connections = parts.connections;
    this.#book = parts.book;
    this.#enforcer = parts.enforcer;
    this.#recorder = parts.recorder;
    this.#flight = parts.flight;
    this.#admitter = parts.admitter;
    registerInternals(this, { admitter: parts.admitter, flight: parts.flight });
    this.#operations = parts.operations;
    this.#sweeper = parts.sweeper;
  }

  /**
   * Logs through `logger` from now on when the keeper was created without one: adapters hand it
   * their framework's logger (Fastify's `app.log`). A configured logger is kept.
   */
  adoptLogger(logger: Logger): void {
    this.#announcer.adopt(logger);
  }

  /** True once the store has loaded (`ready` resolved): adapters hold requests until then. */
  get isReady(): boolean {
    return this.#isReady;
  }

  /** One-time warning through the logger (or process warnings), also emitted as `warning`. */
  warn(code: WarningCode, message: string, details?: object): void {
    this.#announcer.warn(code, message, details);
  }

  /**
   * The client of a request: the socket peer, or behind a trusted proxy the address its header
   * names (walked from the right). Headers from any other peer are ignored. `request` is handed to
   * a configured `getClientIp`. `trust` is the Express app's compiled `trust proxy` function, which
   * `@jailkeeper/express` passes with `trustedProxies: 'express'` (required then, ignored
   * otherwise). `undefined` only when there is no usable peer address.
   */
  resolve(
    peer: string | undefined,
    headers: Headers,
    request?: unknown,
    trust?: ProxyTrust,
  ): ClientIdentity | undefined {
    return this.#resolver.resolve(peer, headers, request, trust);
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
    if (this.options.clientIp.trust.kind === 'express' && typeof options?.trust !== 'function') {
      throw expressTrustMissing('keeper.guard(server) without { trust }');
    }
    return guardServer(this, server, options);
  }

  /**
   * Checks the jails' `exempt` and `paths` rules against the app's declared routes (adapters call
   * it at startup): a rule that matches no route while longer routes start with it (`'/ws'` beside
   * `'/ws/:room'`) is reported once (JK_WRN_PATTERN_MISSES_ROUTES) with the rule that would cover
   * them. With `mount` (the path the app is mounted at, when the middleware runs only in a
   * mounted app, whose routes it reads without it), a rule that names a route with the mount
   * (`'/api/login'` for the app's `'/login'`) is reported the same way, with the rule to write.
   * Returns what it found.
   */
  checkRoutes(routes: readonly string[], ignoreCase = false, mount = ''): UncoveredPattern[] {
    const found = uncoveredPatterns(this.options.jails, routes, ignoreCase, mount);
    for (const u of found) {
      const key = `${u.jail}\u0000${u.option}\u0000${u.pattern}`;
      if (this.#reportedPatterns.has(key)) continue;
      this.#reportedPatterns.add(key);
      this.warn('JK_WRN_PATTERN_MISSES_ROUTES', uncoveredMessage(u), {
        option: `jails.${u.jail}.${u.option}`,
        pattern: u.pattern,
        cover: u.cover,
      });
    }
    return found;
  }

  /** The canonical identity of an address written as text, or undefined. */
  identify(address: string): ClientIdentity | undefined {
    return identify(address, this.options.ipv6Subnet);
  }

  /**
   * Whether the client is banned now, synchronously and without I/O. For a jail-scope ban, pass the
   * request: it is refused only on the routes that jail watches. Ignored clients are never refused.
   */
  check(client: ClientIdentity | string, request?: RequestInfo): Verdict {
    return this.#enforcer.check(client, request);
  }

  /**
   * A promise when a failure of this client is still being recorded (a remote store's round trip),
   * else `undefined` (at once, and always with the memory store). Adapters await it before
   * `check()`, so a client's next request is judged after its last failure counted. Clean clients
   * never wait.
   */
  settling(client: ClientIdentity): Promise<unknown> | undefined {
    return this.#flight.settling(client.key);
  }

  /**
   * Resolves when nothing is still under way: no failure or pardon being recorded, and no request
   * admitted by an adapter whose response has not yet been counted. Tests await it after a request
   * instead of sleeping; on a busy server it may wait as long as the slowest open response.
   */
  idle(): Promise<void> {
    return this.#flight.idle();
  }

  /**
   * This process's attempts on targeted routes now: how many wait for admission, and the slots
   * held per jail (an attempt holds its slot from admission until its answer is decided).
   */
  attempts(): AttemptsStatus {
    return { admitting: this.#admitter.admitting, held: Object.fromEntries(this.#admitter.heldByJail()) };
  }

  /**
   * False when no jail counts or pardons a response with this status, whatever its route: an
   * adapter then skips building the event at all. Precomputed at setup.
   */
  watchesStatus(status: number): boolean {
    return this.#recorder.watchesStatus(status);
  }

  /**
   * Records one finished response: counts it in every jail it fails, pardons where it succeeds,
   * bans at the threshold. Returns a promise that never rejects: store trouble is reported as an
   * `error` outcome and a `storeError` event.
   */
  observe(event: ResponseEvent): Promise<ObserveResult> {
    return this.#recorder.observe(event);
  }

  /**
   * Bans a client by hand, with its own duration (default: the jail's banTime; 1d in the `manual`
   * jail). Returns a promise of the ban. Throws JK_ERR_INVALID_IP, JK_ERR_UNKNOWN_JAIL,
   * JK_ERR_IGNORED_CLIENT.
   */
  ban(address: string, options?: ManualBanOptions): Promise<BanInfo> {
    return this.#open(() => this.#operations.ban(address, options));
  }

  /** Lifts a client's bans (in one jail, or every jail) and clears its failure counters there. Returns a promise of what was lifted. */
  unban(address: string, options?: { jail?: string }): Promise<Ban[]> {
    return this.#open(async () => {
      const lifted = await this.#operations.unban(address, options);
      // An account's held slots go too (and those of its pairs): nothing that refuses stays.
      const key = isAccountKey(address) ? address : identify(address, this.options.ipv6Subnet)?.key;
      if (key !== undefined) await this.#admitter.free(key);
      return lifted;
    });
  }

  /** Lifts every ban (in one jail, or all). Returns a promise of what was lifted. */
  unbanAll(options?: { jail?: string }): Promise<Ban[]> {
    return this.#open(() => this.#operations.unbanAll(options));
  }

  /**
   * A promise of the active bans with their time left, soonest to end first. Built a page at a
   * time without blocking the event loop, but whole: for large sets use `bansPage()`.
   */
  bans(options?: { jail?: string }): Promise<BanInfo[]> {
    return this.#operations.bans(options);
  }

  /**
   * One page of the active bans, in the store's order, and the cursor of the next (`next`, absent
   * on the last page). `limit` is the most bans a page holds (default 1000, at most 5,000); a
   * page may hold fewer, even none, and still have a `next`: walk until `next` is absent.
   * @example
   * for (let page = await keeper.bansPage(); ; page = await keeper.bansPage({ after: page.next })) {
   *   send(page.bans);
   *   if (page.next === undefined) break;
   * }
   */
  bansPage(options?: { jail?: string; after?: string; limit?: number }): Promise<BanInfoPage> {
    return this.#operations.bansPage(options);
  }

  /** The active bans this process enforces, per jail, counted without building them (for metrics). */
  banCounts(): Record<string, number> {
    return Object.fromEntries(this.#book.index.counts());
  }

  /** A promise of, per jail: currently failed, total failed, currently banned, total banned (fail2ban-client status). */
  async status(): Promise<KeeperStatus> {
    const status = await this.#operations.status();
    const held = this.#admitter.heldByJail();
    for (const [name, jail] of Object.entries(status.jails)) {
      (jail as { heldSlots: number }).heldSlots = held.get(name) ?? 0;
    }
    return status;
  }

  /**
   * The bans this process enforces now, read from its local index (no store call). Whole, and
   * built in one go: at a million bans that holds the event loop for a while. Operators' tools
   * walk {@link Jailkeeper.activeBansPage} instead.
   */
  activeBans(): Ban[] {
    return [...this.#book.active()];
  }

  /**
   * One page of the bans this process enforces now, read from its local index (no store call):
   * at most `limit` (default 1000, at most 5,000), and the cursor of the next page (`next`,
   * absent on the last). A page may hold fewer, even none, and still have a `next`. Cheap and
   * synchronous: a walk over a million bans, a page per turn of the event loop, never blocks it.
   */
  activeBansPage(options: { jail?: string; after?: string; limit?: number } = {}): {
    bans: Ban[];
    next?: string;
  } {
    const limit = pageLimit('activeBansPage', options.limit);
    const after = options.after === undefined ? undefined : Number(options.after);
    const page = this.#book.page(Number.isInteger(after) ? after : undefined, limit, options.jail);
    return page.next === undefined ? { bans: page.bans } : { bans: page.bans, next: String(page.next) };
  }

  /**
   * The paths this process takes for the site's broken links now (jails with `sharedPaths`): 404s
   * that many networks got within the window, which count for nobody. Each was also logged once
   * (JK_WRN_BROKEN_LINK) when it became shared.
   */
  brokenLinks(): BrokenLink[] {
    return this.#recorder.brokenLinks();
  }

  /**
   * This process's counters, read without a store call: requests refused and dry-run bans, per
   * jail. For metrics; `status()` has the store's counts too.
   */
  counters(): { blocked: Record<string, number>; wouldBan: Record<string, number> } {
    return {
      blocked: Object.fromEntries(this.#enforcer.blocked),
      wouldBan: Object.fromEntries(this.#book.wouldBan),
    };
  }

  /** Announces and drops expired bans. Runs on a timer; callable by tests with a manual clock. */
  sweep(): Promise<void> {
    return this.#sweeper.sweep();
  }

  /** Runs an operator's call on an open keeper; a closing or closed one rejects with JK_ERR_CLOSED. */
  async #open<T>(call: () => Promise<T>): Promise<T> {
    if (this.#closing !== undefined) {
      throw new JailkeeperError('JK_ERR_CLOSED', 'This jailkeeper has been closed.');
    }
    return call();
  }

  /**
   * True from the moment `close()` is called: adapters admit no new attempt then (they answer 503
   * with `Connection: close`), so that nothing starts that close() would have to wait for.
   * Attempts already admitted go on and are counted.
   */
  get isClosing(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Shuts down without losing anything: stops admitting new attempts (`isClosing`), stops the
   * sweep timer, waits for the attempts in flight to finish and be recorded (their failures and
   * the bans they make), then closes the store (writing the snapshot, with `persist`). The wait is
   * bounded by `timeoutMs`; when it ends first, the attempts still open are dropped, counted in
   * `droppedOnClose` and in a JK_WRN_CLOSE_DROPPED warning. Calling it again returns the same
   * promise. Close the HTTP server first (`server.close()`), so no new request arrives;
   * see docs/operations.md for each adapter's SIGTERM handler.
   * @example
   * process.once('SIGTERM', async () => {
   *   server.close();
   *   await keeper.close();
   *   process.exit(0);
   * });
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    let timeoutMs: number;
    try {
      timeoutMs = closeTimeoutMs(options);
    } catch (error) {
      return Promise.reject(error);
    }
    this.#closing = this.#close(timeoutMs);
    return this.#closing;
  }

  /**
   * After `close()`: how many attempts were still in flight when its wait ended (0: nothing was
   * lost). Undefined before close() has finished waiting.
   */
  get droppedOnClose(): number | undefined {
    return this.#dropped;
  }

  async #close(timeoutMs: number): Promise<void> {
    await this.#sweeper.stop();
    await this.ready;
    const idle = await this.#flight.idleWithin(timeoutMs);
    const dropped = idle ? 0 : this.#flight.pending;
    this.#dropped = dropped;
    this.#recorder.closed = true;
    if (dropped > 0) {
      this.warn(
        'JK_WRN_CLOSE_DROPPED',
        `keeper.close() waited ${timeoutMs} ms for the attempts in flight and dropped ${dropped} still open (responses not finished, or store calls not answered): their failures may not be counted. Close the server before the keeper, or raise close({ timeoutMs }).`,
        { dropped, timeoutMs },
      );
    }
    await this.#flight.settled();
    await this.store.close();
  }
}

/** Options of `keeper.close()`. */
export interface CloseOptions {
  /**
   * How long close() waits for the attempts in flight to finish and be recorded, in ms. A
   * process manager's grace period is usually longer (Kubernetes: 30 s, systemd: 90 s).
   * @default 10000
   */
  timeoutMs?: number;
}

/** The default bound of close()'s wait for attempts in flight. */
const CLOSE_TIMEOUT_MS = 10_000;

function closeTimeoutMs(options: CloseOptions): number {
  const value = options.timeoutMs ?? CLOSE_TIMEOUT_MS;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new JailkeeperError(
      'JK_ERR_INVALID_ARGUMENT',
      `close() options.timeoutMs must be a number of milliseconds, 0 or more; received ${String(value)}.`,
    );
  }
  return value;
}

/**
 * Creates the jail engine. Configuration is validated here, once: a mistake throws a
 * {@link JailkeeperConfigError} naming the option.
 * @example
 * const keeper = createJailkeeper({
 *   jails: { login: { statuses: [401], paths: ['/login'], maxRetry: 5, findTime: '10m', banTime: '1h' } },
 *   ignoreIp: ['127.0.0.0/8'],
 * });
 */
export function createJailkeeper(options: JailkeeperOptions): Jailkeeper {
  return new Jailkeeper(options);
}
