import type { Server, ServerResponse } from 'node:http';
import { type Duration, formatDuration, toDurationMs } from '../config/duration.js';
import { checkKeys } from '../config/validate.js';
import type { Admission, Admitter, Targets } from '../engine/admission.js';
import type { Banned } from '../engine/ban-index.js';
import type { GuardOptions } from '../engine/connections.js';
import type { InFlight } from '../engine/in-flight.js';
import { internalsOf, type KeeperInternals } from '../engine/internals.js';
import type { Jailkeeper } from '../engine/keeper.js';
import type { ResolvedJail } from '../engine/options.js';
import type { Slots } from '../engine/slots.js';
import { invalid } from '../errors.js';
import { accountKey } from '../identity/account.js';
import type { ClientIdentity } from '../identity/identity.js';
import { pathOf } from '../paths/normalize-path.js';
import { type AdapterAbilities, requireKeeper } from './admission.js';
import { Attempt } from './attempt.js';
import { countResponse } from './counting.js';
import {
  type RefusalInfo,
  type RefusalWriter,
  type ResolvedRefusal,
  refusalInfo,
  resolveRefusal,
  upgradeAnswer,
  writeRefusal,
} from './refusal.js';
import { compileRouteConfig, NO_JAILS, type RouteJails } from './route-config.js';

/** The options every adapter takes (see {@link AdapterOptions}); an adapter may add its own keys. */
const ADAPTER_KEYS = {
  block: true,
  response: true,
  retryAfter: true,
  onRefused: true,
  skip: true,
  readyTimeout: true,
} as const;
/** How long requests are held at most while the keeper's store loads. */
const READY_TIMEOUT_MS = 10_000;
const NO_TARGETS: Targets = Object.freeze([]);

/**
 * What an adapter gets from {@link createAdapterKit}: everything that is not framework glue,
 * validated and compiled once. An adapter makes one {@link Attempt} per request (`begin()`),
 * which owns what the request holds; the kit is what attempts share.
 */
export class AdapterKit<T = unknown> {
  readonly keeper: Jailkeeper;
  readonly refusal: ResolvedRefusal;
  /** The adapter's options as validated (its own keys included). */
  readonly input: Readonly<Record<string, unknown>>;
  /** True when some jail bans with scope 'jail': `check()` then needs the request's method and path. */
  readonly jailScope: boolean;
  /** The jails keyed by a function: an attempt asks them for its keys (empty: none, the common case). */
  readonly keyJails: readonly ResolvedJail[];
  /** True when some jail shows the RateLimit header fields (`headers: 'ratelimit'`). */
  readonly headers: boolean;
  /** True when the store reserves slots (attempts on targeted routes are admitted one by one). */
  readonly reserves: boolean;
  readonly #jailNames: readonly string[];
  readonly #admitter: Admitter;
  readonly #flight: InFlight;
  readonly #writer: RefusalWriter<T>;
  readonly #onRefused: ((target: T, info: RefusalInfo) => void) | undefined;
  readonly #normalizeAccount: ((name: string) => unknown) | undefined;
  readonly #readyTimeoutMs: number;
  /** While the store loads: the one promise every held request waits on. */
  #loading: Promise<void> | undefined;
  /** True once the wait timed out: requests go on (the warning was given). */
  #gaveUp = false;

  constructor(
    keeper: Jailkeeper,
    input: Record<string, unknown>,
    writer: RefusalWriter<T>,
    onRefused: ((target: T, info: RefusalInfo) => void) | undefined,
  ) {
    const internals = internalsOf(keeper) as KeeperInternals;
    this.keeper = keeper;
    this.#admitter = internals.admitter;
    this.#flight = internals.flight;
    this.#writer = writer;
    this.input = input;
    this.refusal = resolveRefusal('', input);
    this.jailScope = keeper.hasJailScope;
    this.keyJails = keeper.options.jails.filter((jail) => jail.key === 'function');
    this.headers = keeper.options.jails.some((jail) => jail.headers);
    this.reserves = this.#admitter.enabled;
    this.#jailNames = [...keeper.options.jailsByName.keys()];
    this.#onRefused = onRefused;
    this.#normalizeAccount = keeper.options.normalizeAccount;
    this.#readyTimeoutMs =
      input.readyTimeout === undefined
        ? READY_TIMEOUT_MS
        : toDurationMs('readyTimeout', input.readyTimeout as Duration, { allowZero: true });
  }

  /**
   * What to wait for before judging a request of this client: undefined (at once: the common
   * case, and always with the memory store once loaded), or a promise that resolves once the
   * keeper's store has loaded (a request that arrives before `ready` is held, at most
   * `readyTimeout`, so that a banned client is never judged against no bans) and the client has
   * no failure still being recorded (a remote store's round trip). Never rejects.
   */
  ready(identity: ClientIdentity): Promise<unknown> | undefined {
    if (this.keeper.isReady || this.#gaveUp) return this.keeper.settling(identity);
    return this.#whenReady().then(() => this.keeper.settling(identity));
  }

  /** The attempt of a request that arrived: `res` is Node's response, `target` what refusals write to. */
  begin(
    identity: ClientIdentity,
    target: T,
    res: ServerResponse,
    method: string,
    url: string,
    userAgent: string | undefined,
    caseInsensitive = false,
  ): Attempt<T> {
    return new Attempt(this, identity, target, res, method, url, userAgent, caseInsensitive);
  }

  /** The key jails keyed by account use for `name` (after the keeper's `normalizeAccount`). */
  accountKey(name: unknown): string | undefined {
    if (this.#normalizeAccount === undefined || typeof name !== 'string') return accountKey(name);
    return accountKey(this.#normalizeAccount(name));
  }

  /** Reserves slots under the keys jails keyed by a function gave an attempt (`keys[i]` in `jails[i]`). */
  admitKeys(identity: ClientIdentity, jails: Targets, keys: readonly string[]): Promise<Admission> {
    return this.#admitter.admitKeys(identity, jails, keys);
  }

  /** The jails keyed by account judge an attempt that named `account`; see `Attempt.nameAccount()`. */
  admitAccount(attempt: Attempt<T>, account: string, path: string): Promise<Admission> {
    const targets = this.#admitter.accountTargets(
      attempt.method,
      attempt.route,
      attempt.caseInsensitive,
      path,
    );
    return this.#admitter.admitAccount(attempt.identity, account, targets, attempt);
  }

  /** The jails of a `fail({ jails })` call, checked: JK_ERR_UNKNOWN_JAIL for one not configured. */
  failJails(jails: unknown): ReadonlySet<string> {
    const compiled = compileRouteConfig(this.#jailNames, 'fail() options', { jails });
    return compiled as ReadonlySet<string>;
  }

  /**
   * Compiles a route's config once, when the route is declared (the same errors on every
   * adapter). `where` names it in errors: `'@JailkeeperJails() on LoginController.login'`.
   */
  compileRoute(config: unknown, where = 'jailkeeper route config'): RouteJails {
    return compileRouteConfig(this.#jailNames, where, config);
  }

  /** Resolves when the store has loaded, or after `readyTimeout` (then warns once and stops waiting). */
  #whenReady(): Promise<void> {
    this.#loading ??= new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#gaveUp = true;
        this.keeper.warn(
          'JK_WRN_NOT_READY',
          `The store had not loaded its bans ${formatDuration(this.#readyTimeoutMs)} after the first request; requests go on, judged against the bans known so far. Await keeper.ready before listening, or raise readyTimeout.`,
        );
        resolve();
      }, this.#readyTimeoutMs);
      timer.unref();
      this.keeper.ready.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    return this.#loading;
  }

  /**
   * Refuses a request through the adapter's writer: a ban (`verdict`), or `null` when its attempts
   * in flight held the budget (429). The app's `onRefused` renders it when there is one; if that
   * throws, the default answer is written and the error reported.
   */
  refuse(target: T, verdict: Banned | null, identity: ClientIdentity): void {
    // Retry-After in the bans' own clock (the store's): a skewed app clock cannot stretch it.
    const info = refusalInfo(this.refusal, verdict, identity, this.keeper.banClock.now());
    if (
      this.#onRefused !== undefined &&
      !(info.reason === 'banned' && this.refusal.drop && identity.viaProxy !== true)
    ) {
      try {
        this.#onRefused(target, info);
        return;
      } catch (error) {
        this.keeper.warn(
          'JK_WRN_LISTENER_ERROR',
          `onRefused threw: ${(error as Error)?.message}; the default refusal was sent.`,
        );
      }
    }
    writeRefusal(this.#writer, target, this.refusal, info);
  }

  /**
   * The jails whose slots a request takes on the route the router chose; none for a route whose
   * config is `false`: the jails that target routes (they name `paths` or `methods`), watch this
   * method and route, and do not exempt it. `jails` is the route's own config. Computed once per
   * pair; empty when the store cannot reserve.
   */
  targets(method: string, route: string, caseInsensitive: boolean, jails: RouteJails): Targets {
    if (jails === NO_JAILS) return NO_TARGETS;
    return this.#admitter.targets(method, route, caseInsensitive, jails);
  }

  /**
   * The jails whose slots a request takes where the router gives no pattern text (a RegExp route,
   * a mounted app whose routes are not known): judged by the request's path (`url`, its query
   * dropped), as its response will be. `jails` is the route's own config.
   */
  pathTargets(method: string, url: string, caseInsensitive: boolean, jails: RouteJails): Targets {
    if (jails === NO_JAILS) return NO_TARGETS;
    return this.#admitter.pathTargets(method, pathOf(url), caseInsensitive, jails);
  }

  /** One attempt's slots taken in two steps (at the route, then for its account), held as one. */
  mergeSlots(a: Slots | null, b: Slots): Slots {
    return this.#admitter.merge(a, b);
  }

  /** True when an attempt must reserve slots (see `Attempt.admit()`): synchronous, allocation-free. */
  mustReserve(identity: ClientIdentity, targets: Targets, withSuspects: boolean): boolean {
    return this.#admitter.needed(identity, targets, withSuspects);
  }

  /** Reserves an attempt's slots (see `Attempt.admit()`); never rejects. */
  reserve(identity: ClientIdentity, targets: Targets, withSuspects: boolean): Promise<Admission> {
    return this.#admitter.admit(identity, targets, withSuspects);
  }

  /** Answers an attempt that arrived while the keeper closes: 503, and its connection closed. */
  unavailable(target: T): void {
    this.#answerAndClose(target, 503, '{"error":"Service Unavailable"}', '1');
  }

  /** Answers a request whose body did not arrive within `attempts.wait`: 408, and its connection closed. */
  timedOut(target: T): void {
    this.#answerAndClose(target, 408, '{"error":"Request Timeout"}');
  }

  #answerAndClose(target: T, status: number, body: string, retryAfter?: string): void {
    const writer = this.#writer;
    writer.status(target, status);
    writer.header(target, 'connection', 'close');
    if (retryAfter !== undefined) writer.header(target, 'retry-after', retryAfter);
    writer.header(target, 'content-type', 'application/json');
    writer.send(target, body);
  }

  /** A response an attempt will count when it closes (`keeper.idle()` waits for it). */
  opened(): void {
    this.#flight.begin();
  }

  /** The response marked by `opened()` has closed (after it was counted, when it counted). */
  closed(): void {
    this.#flight.end();
  }

  /** False when no jail counts this status, the attempt holds no slots and the app did not mark it failed. */
  watches(status: number, slots: Slots | null, failed: unknown): boolean {
    return slots !== null || failed !== undefined || this.keeper.watchesStatus(status);
  }

  /** Reports an attempt's answer to the keeper (see `countResponse`), settling `slots`. */
  count(attempt: Attempt<T>, status: number, slots: Slots | null, abandoned: boolean): void {
    countResponse(this.keeper, attempt, status, slots, abandoned);
  }

  /** Guards the server below the framework, refusing upgrades the way the adapter refuses requests. */
  guard(
    server: Server,
    options: { upgrade?: boolean; connection?: boolean; trust?: GuardOptions['trust'] } = {},
  ): () => void {
    const guardOptions: GuardOptions = {
      upgrade: options.upgrade ?? true,
      connection: options.connection ?? false,
      block: this.refusal.drop ? 'drop' : 'forbid',
      answer: (verdict) => upgradeAnswer(this.refusal, verdict, this.keeper.banClock.now()),
      ...(options.trust === undefined ? {} : { trust: options.trust }),
    };
    return this.keeper.guard(server, guardOptions);
  }
}

/** What {@link createAdapterKit} validates. */
export interface AdapterKitInput<T> {
  /** The keeper the user passed, as received. */
  readonly keeper: unknown;
  /** Where the keeper was given, for the error: `'jailkeeper(keeper)'`. */
  readonly keeperAt: string;
  /** The adapter's options, as received. */
  readonly options: unknown;
  /** Their name in errors: `'jailkeeper options'`. */
  readonly optionsAt: string;
  /** The adapter's own option keys, beside the refusal options every adapter takes. */
  readonly extraKeys?: Readonly<Record<string, true>>;
  /** What the adapter supplies beyond request facts (Express: the app's `trust proxy` function). */
  readonly abilities?: AdapterAbilities;
  /** How the adapter writes a refusal to its `target` (its response, reply or context). */
  readonly writer: RefusalWriter<T>;
  /**
   * The app's `onRefused`, adapted to take the adapter's `target`: Express passes
   * `(res, info) => onRefused(res.req, res, info)`.
   */
  readonly onRefused?: (target: T, info: RefusalInfo) => void;
}

/**
 * Validates an adapter's arguments once, at setup: the keeper (JK_ERR_INVALID_OPTION), the
 * refusal options and the adapter's own keys (JK_ERR_UNKNOWN_OPTION lists the valid ones).
 * @example
 * const kit = createAdapterKit({ keeper, keeperAt: 'jailkeeper(keeper)', options, optionsAt: 'jailkeeper options', writer });
 * // per request:
 * const attempt = kit.begin(identity, res, res, req.method, req.url, req.headers['user-agent']);
 * if (attempt.refused()) return;
 */
export function createAdapterKit<T>(input: AdapterKitInput<T>): AdapterKit<T> {
  const keeper = requireKeeper(input.keeper, input.keeperAt, input.abilities);
  const options = checkKeys(input.optionsAt, input.options ?? {}, { ...ADAPTER_KEYS, ...input.extraKeys });
  for (const name of ['onRefused', 'skip'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function') {
      invalid(`${input.optionsAt}.${name}`, 'a function', options[name]);
    }
  }
  return new AdapterKit(
    keeper,
    options,
    input.writer,
    options.onRefused === undefined ? undefined : input.onRefused,
  );
}
