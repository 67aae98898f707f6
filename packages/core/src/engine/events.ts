import type { EventEmitter } from 'node:events';
import { formatDuration } from '../config/duration.js';
import type { Logger, Warner, WarningCode } from '../errors.js';
import type { ClientIdentity } from '../identity/identity.js';
import type { Ban, StoreDownInfo, StoreJailStatus } from '../store/store.js';
import type { Slots } from './slots.js';

/** A path that many networks fail on: a broken link or a missing asset of the site. */
export interface BrokenLink {
  readonly jail: string;
  readonly path: string;
  /** Different networks (/24, /48) that failed on it within the jail's sharedPaths.findTime. */
  readonly networks: number;
  /** When it became shared. */
  readonly sinceMs: number;
  /** The last failure on it. */
  readonly lastMs: number;
}

/** One finished response, as the framework adapters (or `replay`) report it. */
export interface ResponseEvent {
  /** The resolved client, or an address as text. */
  readonly client: ClientIdentity | string;
  /** As sent: a jail's `methods` count HEAD as GET; a pardon is earned by HEAD only when it names HEAD. */
  readonly method: string;
  /**
   * The route pattern the router matched (`'/users/:id'`); `null` when the router matched no route
   * (a 404 scan); `undefined` when there is no router information (log replay): then `path` is used.
   */
  readonly route?: string | null;
  /** The request path, without the query string. */
  readonly path: string;
  /**
   * The query string as received, without the `?` (`'token=abc'`); absent when there is none or
   * it is unknown. Jails with `distinct` count a 404 on a route the app serves once per path and
   * query, so guessing in the query costs as much as guessing in the path.
   */
  readonly query?: string;
  /** True when the router matches paths case-insensitively: route rules then ignore case. */
  readonly caseInsensitive?: boolean;
  readonly status: number;
  readonly userAgent?: string;
  /** Only these jails may count this response (a per-route setting, compiled at setup). @default every jail */
  readonly jails?: ReadonlySet<string>;
  /** The slots `keeper.admit()` reserved for this request: settled here, once. */
  readonly slots?: Slots | null;
  /** True when the client left before the answer was sent: on a targeted route, a failure (nginx's 499). */
  readonly abandoned?: boolean;
  /**
   * The app marked the request failed (`fail()`), whatever its status: it counts in every jail
   * whose methods, paths and user agents apply (`true`), or only in those named.
   */
  readonly failed?: true | ReadonlySet<string>;
  /** The account the app named for this request (`account()`), as `accountKey()` wrote it: jails keyed by account count under it. */
  readonly account?: string;
  /**
   * The keys the jails keyed by a function gave this request (jail name → key, as `functionKey()`
   * wrote it): such a jail counts a request only under the key it gave.
   */
  readonly keys?: ReadonlyMap<string, string>;
}

/** What `check()` may use to decide jail-scope bans. */
export interface RequestInfo {
  readonly method: string;
  /**
   * The route pattern the router chose; `null`: none (or not yet): the path is judged as the
   * router reads it; `undefined`: no router information: every spelling of the path is judged.
   */
  readonly route?: string | null;
  readonly path: string;
  /** True when the router matches paths case-insensitively (Express's default; Fastify's `caseSensitive: false`). */
  readonly caseInsensitive?: boolean;
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
    | 'released'
    | 'repeated'
    | 'shared'
    | 'error';
  /** Failures in the window after this one. */
  readonly count?: number;
  readonly maxRetry?: number;
  readonly ban?: Ban;
  /** True when the failure was on a probe path (the jail's `probes`): judged at the probe's weight. */
  readonly probe?: boolean;
}

/** What `observe()` did with a response. */
export interface ObserveResult {
  /** Why nothing was counted for the whole response, or null. */
  readonly ignored: null | 'ignoreIp' | 'invalidClient' | 'invalidEvent' | 'closed';
  readonly jails: readonly JailOutcome[];
}

/** An active ban as operators see it. */
export interface BanInfo extends Ban {
  /** Milliseconds left; Infinity for a permanent ban. */
  readonly timeLeftMs: number;
  readonly scope: 'app' | 'jail';
}

/** One jail in `status()`: the store's counts and this process's own. */
export interface JailStatus extends StoreJailStatus {
  readonly dryRun: boolean;
  /** Requests refused by this process because of this jail's bans. */
  readonly blocked: number;
  /** Dry-run bans this process would have made. */
  readonly wouldBan: number;
  /**
   * Some of the jail's banned clients: at most 100 (`currentlyBanned` is the
   * count). `status()` costs the same at ten bans and at a million; the whole list is
   * `bansPage()`, or the admin API's `GET /bans/stream`.
   */
  readonly bannedClients: string[];
  /**
   * Slots held now by this process's attempts in this jail: attempts admitted whose answer is not
   * decided yet. `unban` of a client frees its own.
   */
  readonly heldSlots?: number;
}

/** The most banned clients `status()` lists per jail. */
export const STATUS_LISTED = 100;

/** What `keeper.status()` resolves to, like `fail2ban-client status`. */
export interface KeeperStatus {
  readonly store: string;
  readonly jails: Record<string, JailStatus>;
  readonly ignoreIp: string[];
}

/** The `ban` (and `wouldBan`) event: a ban, with how long it lasts, its scope and where it was made. */
export interface BanEvent extends Ban {
  readonly durationMs: number;
  readonly scope: 'app' | 'jail';
  /** The address that made the last failure, when known (for IPv6, `client` is its prefix). */
  readonly ip?: string;
  /** `local`: made here; `remote`: learned from another instance; `restored`: from a snapshot. */
  readonly origin: 'local' | 'remote' | 'restored';
}

/** The `unban` event: a ban lifted by an operator (`manual`) or ended by time (`expired`). */
export interface UnbanEvent extends Ban {
  readonly cause: 'manual' | 'expired';
  readonly origin: 'local' | 'remote';
}

/** The `failure` event: one counted failure, with the count in the window after it and the threshold. */
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
  /** True when the path is a probe signature (the jail's `probes`): the threshold was ⌈maxRetry ÷ weight⌉. */
  readonly probe: boolean;
}

/** The `pardon` event: a success earned the client a higher threshold until `untilMs`. */
export interface PardonEvent {
  readonly jail: string;
  readonly client: string;
  readonly ip: string;
  readonly untilMs: number;
  readonly maxRetry: number;
}

/** The `blocked` event: a request refused because of a ban. */
export interface BlockedEvent {
  readonly jail: string;
  readonly client: string;
  readonly untilMs: number;
}

/** The `storeDown` event: a shared store became unreachable (once at the start of every outage). */
export interface StoreDownEvent {
  /** What happened: "connection refused", "did not answer within 100 ms", "connection reset"... */
  readonly reason: string;
  readonly error: unknown;
}

/** The `storeRecovered` event: a shared store answers again. */
export interface StoreRecoveredEvent {
  /** How long the outage lasted. */
  readonly durationMs: number;
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
  storeDown: [StoreDownEvent];
  storeRecovered: [StoreRecoveredEvent];
  /** A 404 path became shared by many networks (a jail's `sharedPaths`): it stops counting. */
  brokenLink: [BrokenLink];
}

/**
 * How the engine's modules speak: events on the keeper (a throwing listener is reported, never
 * allowed to reach the engine), log lines through the logger, and warnings once.
 */
export class Announcer {
  readonly #emitter: EventEmitter<KeeperEvents>;
  logger: Logger | undefined;
  readonly warner: Warner;

  constructor(emitter: EventEmitter<KeeperEvents>, logger: Logger | undefined, warner: Warner) {
    this.#emitter = emitter;
    this.logger = logger;
    this.warner = warner;
  }

  /** True when someone listens: callers skip building an event nobody reads. */
  listens(name: keyof KeeperEvents): boolean {
    return this.#emitter.listenerCount(name) > 0;
  }

  /**
   * Emits without letting a listener's exception reach the engine: a throwing listener must not
   * turn a recorded ban into a rejected observe(), nor crash a response handler. It is reported once.
   */
  emit<K extends keyof KeeperEvents>(name: K, ...args: KeeperEvents[K]): void {
    try {
      (this.#emitter.emit as (n: K, ...a: KeeperEvents[K]) => boolean).call(this.#emitter, name, ...args);
    } catch (error) {
      this.logger?.error(
        { event: 'listenerError', listener: name, err: error },
        'jailkeeper: an event listener threw',
      );
      this.warner.warn(
        'JK_WRN_LISTENER_ERROR',
        `A "${String(name)}" listener threw: ${(error as Error)?.message}. jailkeeper went on.`,
      );
    }
  }

  warn(code: WarningCode, message: string, details?: object): void {
    this.warner.warn(code, message, details);
  }

  /** Logs through `logger` from now on, unless a logger was configured. */
  adopt(logger: Logger): void {
    this.logger ??= logger;
    this.warner.adopt(logger);
  }

  /**
   * A shared store went down: a warning at the start of every outage (not once per process, as
   * other warnings), the `warning` and `storeDown` events.
   */
  storeDown(info: StoreDownInfo): void {
    this.warner.repeat(
      'JK_WRN_STORE_DEGRADED',
      `The shared store is unreachable (${info.reason}); jailkeeper goes on with the bans it knows${info.meanwhile} until it answers again.`,
      { event: 'storeDown', reason: info.reason },
    );
    this.emit('storeDown', { reason: info.reason, error: info.error });
  }

  /** A shared store answers again: one info line with the outage's length, and `storeRecovered`. */
  storeUp(info: { durationMs: number }): void {
    this.logger?.info(
      { event: 'storeRecovered', durationMs: info.durationMs },
      `jailkeeper: the shared store answers again after ${formatDuration(Math.max(1, info.durationMs))}; bans are in sync`,
    );
    this.emit('storeRecovered', { durationMs: info.durationMs });
  }

  /** A store call failed and the store went on without it: counted (`storeError`), logged at debug. */
  storeFailed(operation: string, error: unknown): void {
    this.logger?.debug?.(
      { event: 'storeError', operation, err: error },
      `jailkeeper: store ${operation} failed`,
    );
    if (this.listens('storeError')) this.emit('storeError', { operation, error });
  }

  storeError(operation: string, error: unknown): void {
    this.logger?.error(
      { event: 'storeError', operation, err: error },
      `jailkeeper: store ${operation} failed`,
    );
    if (this.listens('storeError')) this.emit('storeError', { operation, error });
  }
}

/** What is wrong with an event an adapter (or the app) passed to observe(), or undefined. */
export function eventProblem(event: ResponseEvent): string | undefined {
  if (typeof event !== 'object' || event === null) return 'the event is not an object';
  const client = event.client as unknown;
  if (typeof client !== 'string') {
    const id = client as { key?: unknown; ip?: unknown } | null;
    if (typeof id !== 'object' || id === null || typeof id.key !== 'string' || typeof id.ip !== 'string') {
      return 'client must be an address or the { ip, key } keeper.resolve() returned';
    }
  }
  if (typeof event.method !== 'string') return 'method must be a string';
  if (typeof event.path !== 'string') return 'path must be a string';
  if (event.query !== undefined && typeof event.query !== 'string')
    return 'query must be a string when given';
  if (typeof event.status !== 'number' || !Number.isInteger(event.status)) return 'status must be an integer';
  return undefined;
}
