import type { Server } from 'node:http';
import { type Duration, formatDuration, toDurationMs } from '../config/duration.js';
import { checkKeys } from '../config/validate.js';
import type { Admission, Admitter, Targets } from '../engine/admission.js';
import type { Banned } from '../engine/ban-index.js';
import type { GuardOptions } from '../engine/connections.js';
import { type Jailkeeper, kAdmission } from '../engine/keeper.js';
import type { Slots } from '../engine/slots.js';
import { invalid } from '../errors.js';
import { accountKey } from '../identity/account.js';
import type { ClientIdentity } from '../identity/identity.js';
import {
  type AdapterAbilities,
  afterSettling,
  requireKeeper,
  responseCounted,
  responseOpened,
} from './admission.js';
import { countResponse, type ResponseFacts } from './counting.js';
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
 * validated and compiled once. Its methods are the request path: no option merging, no closures.
 */
export class AdapterKit {
  readonly keeper: Jailkeeper;
  readonly refusal: ResolvedRefusal;
  /** The adapter's options as validated (its own keys included). */
  readonly input: Readonly<Record<string, unknown>>;
  /** True when some jail bans with scope 'jail': `check()` then needs the request's method and path. */
  readonly jailScope: boolean;
  readonly #jailNames: readonly string[];
  readonly #admission: Admitter;
  readonly #onRefused: ((target: never, info: RefusalInfo) => void) | undefined;
  readonly #readyTimeoutMs: number;
  /** While the store loads: the one promise every held request waits on. */
  #loading: Promise<void> | undefined;
  /** True once the wait timed out: requests go on (the warning was given). */
  #gaveUp = false;

  constructor(
    keeper: Jailkeeper,
    input: Record<string, unknown>,
    onRefused: ((target: never, info: RefusalInfo) => void) | undefined,
  ) {
    this.keeper = keeper;
    this.#admission = keeper[kAdmission];
    this.input = input;
    this.refusal = resolveRefusal('', input);
    this.jailScope = keeper.hasJailScope;
    this.#jailNames = [...keeper.options.jailsByName.keys()];
    this.#onRefused = onRefused;
    this.#readyTimeoutMs =
      input.readyTimeout === undefined
        ? READY_TIMEOUT_MS
        : toDurationMs('readyTimeout', input.readyTimeout as Duration, { allowZero: true });
  }

  /**
   * The app named the request's account (`account()`): the jails keyed by account judge it now.
   * Resolves the account key and the slots it took, or `null` when the request was refused (the
   * refusal is written through `writer`). A missing or empty name changes nothing.
   */
  async account<T>(
    writer: RefusalWriter<T>,
    target: T,
    identity: ClientIdentity,
    name: unknown,
    request: { method: string; route: string | null | undefined; path: string; caseInsensitive: boolean },
  ): Promise<{ account: string | undefined; slots: Slots | null } | null> {
    const account = accountKey(name);
    if (account === undefined) return { account: undefined, slots: null };
    const targets = this.#admission.accountTargets(
      request.method,
      request.route,
      request.caseInsensitive,
      request.path,
    );
    const admission = await this.#admission.admitAccount(identity, account, targets);
    if (admission.admitted) return { account, slots: admission.slots };
    this.refuse(writer, target, admission.verdict, identity);
    return null;
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

  /**
   * Runs `decide` once the keeper's store has loaded (a request that arrives before `ready` is
   * held, at most `readyTimeout`, so that a banned client is never judged against no bans) and
   * the client has no failure still being recorded (see `afterSettling`).
   */
  admit<A, B, C>(
    identity: ClientIdentity,
    decide: (a: A, b: B, c: C, identity: ClientIdentity) => void,
    a: A,
    b: B,
    c: C,
  ): void {
    if (this.keeper.isReady || this.#gaveUp) afterSettling(this.keeper, identity, decide, a, b, c);
    else this.#whenReady().then(() => afterSettling(this.keeper, identity, decide, a, b, c));
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
  refuse<T>(writer: RefusalWriter<T>, target: T, verdict: Banned | null, identity: ClientIdentity): void {
    // Retry-After in the bans' own clock (the store's): a skewed app clock cannot stretch it.
    const info = refusalInfo(this.refusal, verdict, identity, this.keeper.banClock.now());
    if (
      this.#onRefused !== undefined &&
      !(info.reason === 'banned' && this.refusal.drop && identity.viaProxy !== true)
    ) {
      try {
        (this.#onRefused as (target: T, info: RefusalInfo) => void)(target, info);
        return;
      } catch (error) {
        this.keeper.warn(
          'JK_WRN_LISTENER_ERROR',
          `onRefused threw: ${(error as Error)?.message}; the default refusal was sent.`,
        );
      }
    }
    writeRefusal(writer, target, this.refusal, info);
  }

  /** A response the adapter will count when it closes (`keeper.idle()` waits for it). */
  opened(): void {
    responseOpened(this.keeper);
  }

  /**
   * False when no jail counts a response with this status, it holds no slots and the app did not
   * mark it failed: then build nothing.
   */
  watches(status: number, slots: Slots | null, failed: unknown): boolean {
    return slots !== null || failed !== undefined || this.keeper.watchesStatus(status);
  }

  /** Reports a closed response (call only when `watches()`); see `countResponse`. */
  count(facts: ResponseFacts): void {
    countResponse(this.keeper, facts);
  }

  /**
   * The jails whose slots a request takes on the route the router chose; none for a route whose
   * config is `false`: the jails that target routes (they name `paths` or `methods`), watch this
   * method and route, and do not exempt it. `jails` is the route's own config. Computed once per
   * pair; empty when the store cannot reserve.
   */
  targets(method: string, route: string, caseInsensitive: boolean, jails: RouteJails): Targets {
    if (jails === NO_JAILS) return NO_TARGETS;
    return this.#admission.targets(method, route, caseInsensitive, jails);
  }

  /**
   * Admits a request on targeted routes (or of a client with failures in an app-wide jail)
   * before its handler: `go(a, b, c, identity, slots)` at once when nothing needs reserving,
   * else once its slots are reserved; `stop(a, b, c, identity, verdict)` when it is refused (a
   * ban, or `null`: its attempts in flight held the budget past `attempts.wait`).
   */
  admitThen<A, B, C>(
    identity: ClientIdentity,
    targets: Targets,
    go: (a: A, b: B, c: C, identity: ClientIdentity, slots: Slots | null) => void,
    stop: (a: A, b: B, c: C, identity: ClientIdentity, verdict: Banned | null) => void,
    a: A,
    b: B,
    c: C,
    withSuspects = true,
  ): void {
    if (!this.#admission.needed(identity, targets, withSuspects)) {
      go(a, b, c, identity, null);
      return;
    }
    this.#admission.admit(identity, targets, withSuspects).then((admission) => {
      if (admission.admitted) go(a, b, c, identity, admission.slots);
      else stop(a, b, c, identity, admission.verdict);
    });
  }

  /**
   * `admit()` for middleware that is itself async (Hono): a promise to await before judging the
   * request when a failure of this client is still being recorded (a remote store's round trip),
   * else undefined (at once, and always with the memory store). Clean clients never wait.
   */
  settling(identity: ClientIdentity): Promise<unknown> | undefined {
    return this.keeper.settling(identity);
  }

  /**
   * `admitThen()` for async middleware: undefined when nothing needs reserving (admit at once,
   * holding no slots), else a promise of the admission: `{ admitted: true, slots }`, or
   * `{ admitted: false, verdict }` to hand to `refuse()`. Never rejects.
   */
  admission(identity: ClientIdentity, targets: Targets, withSuspects = true): Promise<Admission> | undefined {
    if (!this.#admission.needed(identity, targets, withSuspects)) return undefined;
    return this.#admission.admit(identity, targets, withSuspects);
  }

  /** The response marked by `opened()` has closed (after `count`, when it counted). */
  closed(): void {
    responseCounted(this.keeper);
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
export interface AdapterKitInput {
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
  /**
   * The app's `onRefused`, adapted to take the adapter's response (`target`): Express passes
   * `(res, info) => onRefused(res.req, res, info)`.
   */
  readonly onRefused?: (target: never, info: RefusalInfo) => void;
}

/**
 * Validates an adapter's arguments once, at setup: the keeper (JK_ERR_INVALID_OPTION), the
 * refusal options and the adapter's own keys (JK_ERR_UNKNOWN_OPTION lists the valid ones).
 * @example
 * const kit = createAdapterKit({ keeper, keeperAt: 'jailkeeper(keeper)', options, optionsAt: 'jailkeeper options' });
 */
export function createAdapterKit(input: AdapterKitInput): AdapterKit {
  const keeper = requireKeeper(input.keeper, input.keeperAt, input.abilities);
  const options = checkKeys(input.optionsAt, input.options ?? {}, { ...ADAPTER_KEYS, ...input.extraKeys });
  for (const name of ['onRefused', 'skip'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function') {
      invalid(`${input.optionsAt}.${name}`, 'a function', options[name]);
    }
  }
  return new AdapterKit(keeper, options, options.onRefused === undefined ? undefined : input.onRefused);
}

/** Adds a `fail()` call to what a request is marked with: every jail (`true`) wins over a list. */
export function mergeFailed(
  current: true | Set<string> | undefined,
  jails: ReadonlySet<string> | undefined,
): true | Set<string> {
  if (jails === undefined || current === true) return true;
  const out = current ?? new Set<string>();
  for (const jail of jails) out.add(jail);
  return out;
}
