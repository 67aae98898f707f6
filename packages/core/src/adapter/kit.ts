import type { Server } from 'node:http';
import { type Duration, formatDuration, toDurationMs } from '../config/duration.js';
import { checkKeys } from '../config/validate.js';
import type { Banned } from '../engine/ban-index.js';
import type { GuardOptions } from '../engine/connections.js';
import type { Jailkeeper } from '../engine/keeper.js';
import type { ClientIdentity } from '../identity/identity.js';
import { afterSettling, requireKeeper, responseCounted, responseOpened } from './admission.js';
import { countResponse } from './counting.js';
import { type RefusalWriter, type ResolvedRefusal, resolveRefusal, writeRefusal } from './refusal.js';
import { compileRouteConfig, type RouteJails } from './route-config.js';

/** The options every adapter takes (see {@link RefusalOptions} and `readyTimeout`); an adapter may add its own keys. */
const COMMON_KEYS = { block: true, response: true, retryAfter: true, readyTimeout: true } as const;
/** How long requests are held at most while the keeper's store loads. */
const READY_TIMEOUT_MS = 10_000;

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
  readonly #readyTimeoutMs: number;
  /** While the store loads: the one promise every held request waits on. */
  #loading: Promise<void> | undefined;
  /** True once the wait timed out: requests go on (the warning was given). */
  #gaveUp = false;

  constructor(keeper: Jailkeeper, input: Record<string, unknown>) {
    this.keeper = keeper;
    this.input = input;
    this.refusal = resolveRefusal('', input);
    this.jailScope = keeper.hasJailScope;
    this.#jailNames = [...keeper.options.jailsByName.keys()];
    this.#readyTimeoutMs =
      input.readyTimeout === undefined
        ? READY_TIMEOUT_MS
        : toDurationMs('readyTimeout', input.readyTimeout as Duration, { allowZero: true });
  }

  /** Compiles a route's config once, when the route is declared (the same errors on every adapter). */
  compileRoute(config: unknown): RouteJails {
    return compileRouteConfig(this.#jailNames, 'jailkeeper route config', config);
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

  /** Writes the refusal of a banned client through the adapter's writer. */
  refuse<T>(writer: RefusalWriter<T>, target: T, verdict: Banned, identity: ClientIdentity): void {
    // Retry-After in the bans' own clock (the store's): a skewed app clock cannot stretch it.
    writeRefusal(writer, target, this.refusal, verdict, identity, this.keeper.banClock.now());
  }

  /** A response the adapter will count when it closes (`keeper.idle()` waits for it). */
  opened(): void {
    responseOpened(this.keeper);
  }

  /** False when no jail counts a response with this status: then build nothing. */
  watches(status: number): boolean {
    return this.keeper.watchesStatus(status);
  }

  /** Reports a closed response (call only when `watches(status)`); see `countResponse`. */
  count(
    identity: ClientIdentity,
    method: string,
    route: string | null | undefined,
    url: string | undefined,
    status: number,
    userAgent: string | undefined,
    jails: RouteJails,
  ): void {
    countResponse(this.keeper, identity, method, route, url, status, userAgent, jails);
  }

  /** The response marked by `opened()` has closed (after `count`, when it counted). */
  closed(): void {
    responseCounted(this.keeper);
  }

  /** Guards the server below the framework, refusing upgrades the way the adapter refuses requests. */
  guard(server: Server, options: { upgrade?: boolean; connection?: boolean } = {}): () => void {
    const guardOptions: GuardOptions = {
      upgrade: options.upgrade ?? true,
      connection: options.connection ?? false,
      block: this.refusal.drop ? 'drop' : 'forbid',
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
}

/**
 * Validates an adapter's arguments once, at setup: the keeper (JK_ERR_INVALID_OPTION), the
 * refusal options and the adapter's own keys (JK_ERR_UNKNOWN_OPTION lists the valid ones).
 * @example
 * const kit = createAdapterKit({ keeper, keeperAt: 'jailkeeper(keeper)', options, optionsAt: 'jailkeeper options' });
 */
export function createAdapterKit(input: AdapterKitInput): AdapterKit {
  const keeper = requireKeeper(input.keeper, input.keeperAt);
  const options = checkKeys(input.optionsAt, input.options ?? {}, { ...COMMON_KEYS, ...input.extraKeys });
  return new AdapterKit(keeper, options);
}
