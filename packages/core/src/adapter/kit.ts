import type { Server } from 'node:http';
import { checkKeys } from '../config/validate.js';
import type { Targets } from '../engine/admission.js';
import type { Banned } from '../engine/ban-index.js';
import type { GuardOptions } from '../engine/connections.js';
import type { Jailkeeper } from '../engine/keeper.js';
import type { Slots } from '../engine/slots.js';
import type { ClientIdentity } from '../identity/identity.js';
import {
  type AdapterAbilities,
  afterSettling,
  requireKeeper,
  responseCounted,
  responseOpened,
} from './admission.js';
import { countResponse } from './counting.js';
import { type RefusalWriter, type ResolvedRefusal, resolveRefusal, writeRefusal } from './refusal.js';
import { compileRouteConfig, NO_JAILS, type RouteJails } from './route-config.js';

/** The options every adapter takes (see {@link RefusalOptions}); an adapter may add its own keys. */
const REFUSAL_KEYS = { block: true, response: true, retryAfter: true } as const;
const NO_TARGETS: Targets = Object.freeze([]);
const BUSY_BODY = JSON.stringify({ error: 'Too Many Requests' });

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

  constructor(keeper: Jailkeeper, input: Record<string, unknown>) {
    this.keeper = keeper;
    this.input = input;
    this.refusal = resolveRefusal('', input);
    this.jailScope = keeper.hasJailScope;
    this.#jailNames = [...keeper.options.jailsByName.keys()];
  }

  /** Compiles a route's config once, when the route is declared (the same errors on every adapter). */
  compileRoute(config: unknown): RouteJails {
    return compileRouteConfig(this.#jailNames, 'jailkeeper route config', config);
  }

  /** Runs `decide` once the client has no failure still being recorded (see `afterSettling`). */
  admit<A, B, C>(
    identity: ClientIdentity,
    decide: (a: A, b: B, c: C, identity: ClientIdentity) => void,
    a: A,
    b: B,
    c: C,
  ): void {
    afterSettling(this.keeper, identity, decide, a, b, c);
  }

  /** Writes the refusal of a banned client through the adapter's writer. */
  refuse<T>(writer: RefusalWriter<T>, target: T, verdict: Banned, identity: ClientIdentity): void {
    writeRefusal(writer, target, this.refusal, verdict, identity, this.keeper.clock.now());
  }

  /** A response the adapter will count when it closes (`keeper.idle()` waits for it). */
  opened(): void {
    responseOpened(this.keeper);
  }

  /** False when no jail counts a response with this status (and it holds no slots): then build nothing. */
  watches(status: number, slots: Slots | null): boolean {
    return slots !== null || this.keeper.watchesStatus(status);
  }

  /**
   * Reports a closed response (call only when `watches(status, slots)`); see `countResponse`.
   * `abandoned`: the client left before the answer was sent.
   */
  count(
    identity: ClientIdentity,
    method: string,
    route: string | null | undefined,
    caseInsensitive: boolean,
    url: string | undefined,
    status: number,
    userAgent: string | undefined,
    jails: RouteJails,
    slots: Slots | null,
    abandoned: boolean,
  ): void {
    countResponse(
      this.keeper,
      identity,
      method,
      route,
      caseInsensitive,
      url,
      status,
      userAgent,
      jails,
      slots,
      abandoned,
    );
  }

  /**
   * The jails whose slots a request takes on the route the router chose; none for a route whose
   * config is `false`. See `keeper.targets()`.
   */
  targets(method: string, route: string, caseInsensitive: boolean, jails: RouteJails): Targets {
    if (jails === NO_JAILS) return NO_TARGETS;
    return this.keeper.targets(method, route, caseInsensitive, jails);
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
    if (!this.keeper.mustAdmit(identity, targets, withSuspects)) {
      go(a, b, c, identity, null);
      return;
    }
    this.keeper.admit(identity, targets, withSuspects).then((admission) => {
      if (admission.admitted) go(a, b, c, identity, admission.slots);
      else stop(a, b, c, identity, admission.verdict);
    });
  }

  /**
   * Refuses an attempt that found no slot within `attempts.wait`: 429 Too Many Requests with
   * `Retry-After: 1`. Not a ban: the client's earlier attempts are still being answered.
   */
  refuseBusy<T>(writer: RefusalWriter<T>, target: T): void {
    writer.status(target, 429);
    writer.header(target, 'content-type', 'application/json; charset=utf-8');
    writer.header(target, 'retry-after', '1');
    writer.send(target, BUSY_BODY);
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
}

/**
 * Validates an adapter's arguments once, at setup: the keeper (JK_ERR_INVALID_OPTION), the
 * refusal options and the adapter's own keys (JK_ERR_UNKNOWN_OPTION lists the valid ones).
 * @example
 * const kit = createAdapterKit({ keeper, keeperAt: 'jailkeeper(keeper)', options, optionsAt: 'jailkeeper options' });
 */
export function createAdapterKit(input: AdapterKitInput): AdapterKit {
  const keeper = requireKeeper(input.keeper, input.keeperAt, input.abilities);
  const options = checkKeys(input.optionsAt, input.options ?? {}, { ...REFUSAL_KEYS, ...input.extraKeys });
  return new AdapterKit(keeper, options);
}
