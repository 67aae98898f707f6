import type { Jailkeeper } from '../engine/keeper.js';
import type { Slots } from '../engine/slots.js';
import type { ClientIdentity } from '../identity/identity.js';
import { pathOf } from '../paths/normalize-path.js';
import { NO_JAILS, type RouteJails } from './route-config.js';

export { countedMethod } from '../engine/rules.js';

/**
 * Reports one finished (or aborted) response to the keeper, the same way on every adapter. Call it
 * when `keeper.watchesStatus(status)` is true or the request holds slots (they must be settled,
 * whatever the status), so that a clean response builds nothing.
 * `route` is the pattern the router matched (null: no route matched; undefined: unknown); `url`
 * is the request target as received (its query string is dropped here).
 */
export function countResponse(
  keeper: Jailkeeper,
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
  if (jails === NO_JAILS && slots === null) return;
  void keeper.observe({
    client: identity,
    // As sent: jails count HEAD as GET, but only a pardon that names HEAD is earned by one.
    method,
    route,
    ...(caseInsensitive ? { caseInsensitive } : {}),
    path: pathOf(url),
    status,
    userAgent,
    ...(jails === undefined ? {} : { jails }),
    ...(slots === null ? {} : { slots, abandoned }),
  });
}
