import type { Jailkeeper } from '../engine/keeper.js';
import type { Slots } from '../engine/slots.js';
import type { ClientIdentity } from '../identity/identity.js';
import { pathOf } from '../paths/normalize-path.js';
import { NO_JAILS, type RouteJails } from './route-config.js';

export { countedMethod } from '../engine/rules.js';

/** A closed response as an adapter reports it. */
export interface ResponseFacts {
  readonly identity: ClientIdentity;
  readonly method: string;
  /** The pattern the router matched; null: no route matched; undefined: unknown (a RegExp route). */
  readonly route: string | null | undefined;
  /** True when the router matches paths case-insensitively. */
  readonly caseInsensitive: boolean;
  /** The request target as received (its query string is dropped here). */
  readonly url: string | undefined;
  readonly status: number;
  readonly userAgent: string | undefined;
  /** The route's config: NO_JAILS counts nothing, a set only in those jails. */
  readonly jails: RouteJails;
  /** The slots the request holds, settled here. */
  readonly slots: Slots | null;
  /** The client left before the answer was sent. */
  readonly abandoned: boolean;
  /** The app marked the request failed (`fail()`): in every jail that applies, or in these. */
  readonly failed: true | ReadonlySet<string> | undefined;
  /** The account the app named (`account()`), as `accountKey()` wrote it. */
  readonly account?: string | undefined;
}

/**
 * Reports one closed response to the keeper, the same way on every adapter (HEAD counted as GET,
 * the query string dropped). Call it when the status is one a jail watches, the request holds
 * slots (they settle whatever the status) or the app marked it failed, so a clean response builds
 * nothing.
 */
export function countResponse(keeper: Jailkeeper, facts: ResponseFacts): void {
  if (facts.jails === NO_JAILS && facts.slots === null) return;
  void keeper.observe({
    client: facts.identity,
    // As sent: jails count HEAD as GET, but only a pardon that names HEAD is earned by one.
    method: facts.method,
    route: facts.route,
    ...(facts.caseInsensitive ? { caseInsensitive: true } : {}),
    path: pathOf(facts.url),
    status: facts.status,
    userAgent: facts.userAgent,
    ...(facts.jails === undefined ? {} : { jails: facts.jails }),
    ...(facts.slots === null ? {} : { slots: facts.slots, abandoned: facts.abandoned }),
    ...(facts.failed === undefined ? {} : { failed: facts.failed }),
    ...(facts.account === undefined ? {} : { account: facts.account }),
  });
}
