import { RESERVED_JAILS } from '../config/defaults.js';
import { formatDuration } from '../config/duration.js';
import type { PathMatcher } from '../paths/path-pattern.js';
import type { FailureRule, RecidiveInput } from '../store/store.js';
import type { ResponseEvent } from './events.js';
import type { ResolvedJail, ResolvedOptions } from './options.js';

/** Each jail's failure rule, built once: a store call then carries only the client. */
export function buildRules(options: ResolvedOptions): ReadonlyMap<string, FailureRule> {
  const recidive: RecidiveInput | null = options.recidive && {
    jail: RESERVED_JAILS.recidive,
    findTimeMs: options.recidive.findTimeMs,
    maxRetry: options.recidive.maxRetry,
    banTimeMs: options.recidive.banTimeMs,
    dryRun: options.recidive.dryRun,
  };
  const rules = new Map<string, FailureRule>();
  for (const jail of options.jails) {
    rules.set(
      jail.name,
      ruleOf(jail, options, {
        maxRetry: jail.maxRetry,
        pardonMaxRetry: jail.pardon?.maxRetry ?? jail.maxRetry,
        recidive: jail.feedsRecidive ? recidive : null,
        reason: `maxRetry (${jail.maxRetry}) failures within ${formatDuration(jail.findTimeMs)}`,
      }),
    );
  }
  return rules;
}

/** A jail's failure rule, frozen: its window, ban time and escalation, with the thresholds given. */
export function ruleOf(
  jail: ResolvedJail,
  options: ResolvedOptions,
  own: Pick<FailureRule, 'maxRetry' | 'pardonMaxRetry' | 'recidive' | 'reason'>,
): FailureRule {
  return Object.freeze({
    jail: jail.name,
    findTimeMs: jail.findTimeMs,
    banTimeMs: jail.banTimeMs,
    increment: jail.increment,
    dryRun: jail.dryRun,
    historyTimeMs: options.historyTimeMs,
    ...own,
  });
}

/** A jail that targets routes: it names paths or methods. Its attempts take slots before the handler. */
export function targetsRoutes(jail: ResolvedJail): boolean {
  return !jail.dryRun && (!jail.paths.isEmpty || jail.methods !== null);
}

/**
 * Where a request is, for matching path rules: the route pattern the router matched (and whether
 * that router ignores case), or, without one, the request path.
 */
export interface Where {
  /** The pattern; `null` when the router matched no route; `undefined` when there is no router (log replay). */
  readonly route?: string | null;
  readonly path: string;
  readonly caseInsensitive?: boolean;
}

/** True when the rules name this route (or, without router information, this path). */
function matchesWhere(rules: PathMatcher, where: Where): boolean {
  if (typeof where.route === 'string') return rules.matchesRoute(where.route, where.caseInsensitive === true);
  return rules.matchesPath(where.path, where.caseInsensitive === true);
}

/** The method a request is counted and judged under: HEAD runs the GET route, so it counts as GET. */
export function countedMethod(method: string): string {
  return method === 'HEAD' ? 'GET' : method;
}

/** True when the jail counts a request with this method there (its methods and paths). */
export function jailWatches(jail: ResolvedJail, method: string, where: Where): boolean {
  if (jail.methods !== null && !jail.methods.has(countedMethod(method.toUpperCase()))) return false;
  return jail.paths.isEmpty || matchesWhere(jail.paths, where);
}

/** Exemptions name routes: a request the router matched to no route is never exempt. */
export function isExempt(jail: ResolvedJail, where: Where): boolean {
  if (jail.exempt.isEmpty || where.route === null) return false;
  return matchesWhere(jail.exempt, where);
}

/**
 * True when a response is a success that pardons the client in this jail: a pardon status, with
 * one of the pardon's methods (as sent: HEAD and OPTIONS only when named), on a route of the
 * pardon's paths that the jail does not exempt. A request the router matched to no route (an
 * OPTIONS answered by Express itself, a 404) never pardons.
 */
export function pardons(jail: ResolvedJail, method: string, status: number, where: Where): boolean {
  const pardon = jail.pardon;
  if (pardon === null || !pardon.statuses.has(status) || where.route === null) return false;
  if (!pardon.methods.has(method.toUpperCase())) return false;
  return matchesWhere(pardon.paths, where) && !isExempt(jail, where);
}

/**
 * True when a response proves a login to the account it named, in a jail with owners: a login
 * status, with a login method, on a route of the owners' paths that the jail does not exempt.
 */
export function logsIn(jail: ResolvedJail, method: string, status: number, where: Where): boolean {
  const owners = jail.owners;
  if (owners === null || !owners.statuses.has(status) || where.route === null) return false;
  if (!owners.methods.has(method.toUpperCase())) return false;
  return (owners.paths.isEmpty || matchesWhere(owners.paths, where)) && !isExempt(jail, where);
}

/** Whether a response fails in this jail: its status (or `fail()`), method, route and user agent. */
export function fails(jail: ResolvedJail, event: ResponseEvent): boolean {
  if (jail.statuses !== null && !jail.statuses.has(event.status) && !markedFailed(jail, event)) return false;
  if (jail.methods !== null && !jail.methods.has(countedMethod(event.method.toUpperCase()))) return false;
  if (!jail.paths.isEmpty && !matchesWhere(jail.paths, event)) return false;
  if (jail.userAgent !== undefined && !jail.userAgent(event.userAgent ?? '')) return false;
  return true;
}

/** The app marked the request failed in this jail (`fail()`). */
function markedFailed(jail: ResolvedJail, event: ResponseEvent): boolean {
  const failed = event.failed;
  return failed !== undefined && (failed === true || failed.has(jail.name));
}
