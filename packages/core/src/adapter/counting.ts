import type { Jailkeeper } from '../engine/keeper.js';
import type { Slots } from '../engine/slots.js';
import type { ClientIdentity } from '../identity/client.js';
import { pathOf } from '../paths/normalize-path.js';
import { NO_JAILS, type RouteJails } from './route-config.js';

/** What is counted of an attempt (see `Attempt`): its request as the router placed it. */
export interface CountedRequest {
  readonly identity: ClientIdentity;
  readonly method: string;
  readonly route: string | null | undefined;
  readonly caseInsensitive: boolean;
  readonly path: string;
  readonly userAgent: string | undefined;
  readonly jails: RouteJails;
  readonly failed: true | ReadonlySet<string> | undefined;
  readonly account: string | undefined;
  readonly keys?: ReadonlyMap<string, string | null> | undefined;
}

export { countedMethod } from '../engine/rules.js';

/**
 * Reports an attempt's answer to the keeper, the same way on every adapter (HEAD counted as GET,
 * the query string dropped), settling `slots`. Called when the status is one a jail watches, the
 * attempt holds slots (they settle whatever the status) or the app marked it failed, so a clean
 * response builds nothing.
 */
export function countResponse(
  keeper: Jailkeeper,
  attempt: CountedRequest,
  status: number,
  slots: Slots | null,
  abandoned: boolean,
): void {
  if (attempt.jails === NO_JAILS && slots === null) return;
  const url = attempt.path;
  const mark = url.indexOf('?');
  // One object literal with every field (absent ones undefined): spreads of conditional objects
  // cost a temporary object each, on every counted response.
  void keeper.observe({
    client: attempt.identity,
    // As sent: jails count HEAD as GET, but only a pardon that names HEAD is earned by one.
    method: attempt.method,
    route: attempt.route,
    caseInsensitive: attempt.caseInsensitive ? true : undefined,
    path: pathOf(url),
    // The query as received: a route's 404s count per resource, so guessing in it is not free.
    query: mark === -1 || mark === url.length - 1 ? undefined : url.slice(mark + 1),
    status,
    userAgent: attempt.userAgent,
    jails: attempt.jails,
    slots: slots ?? undefined,
    abandoned: slots === null ? undefined : abandoned,
    failed: attempt.failed,
    account: attempt.account,
    keys: attempt.keys === undefined ? undefined : givenKeys(attempt.keys),
  });
}

/** The keys jails keyed by a function gave (those that gave none left out). */
function givenKeys(keys: ReadonlyMap<string, string | null>): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  for (const [jail, key] of keys) if (key !== null) out.set(jail, key);
  return out;
}
