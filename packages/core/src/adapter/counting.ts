import type { Jailkeeper } from '../engine/keeper.js';
import type { ClientIdentity } from '../identity/identity.js';
import { pathOf } from '../paths/normalize-path.js';
import { NO_JAILS, type RouteJails } from './route-config.js';

/** The method a request is counted and judged under: HEAD runs the GET route, so it counts as GET. */
export function countedMethod(method: string): string {
  return method === 'HEAD' ? 'GET' : method;
}

/**
 * Reports one finished (or aborted) response to the keeper, the same way on every adapter. Call it
 * only when `keeper.watchesStatus(status)` is true, so that a clean response builds nothing.
 * `route` is the pattern the router matched (null: no route matched; undefined: unknown); `url`
 * is the request target as received (its query string is dropped here).
 */
export function countResponse(
  keeper: Jailkeeper,
  identity: ClientIdentity,
  method: string,
  route: string | null | undefined,
  url: string | undefined,
  status: number,
  userAgent: string | undefined,
  jails: RouteJails,
): void {
  if (jails === NO_JAILS) return;
  void keeper.observe({
    client: identity,
    method: countedMethod(method),
    route,
    path: pathOf(url),
    status,
    userAgent,
    ...(jails === undefined ? {} : { jails }),
  });
}
