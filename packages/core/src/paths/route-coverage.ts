import type { ResolvedJail } from '../engine/options.js';
import { canonicalRoute, compilePaths } from './path-pattern.js';

/** A jail's path rule that names no declared route, while routes below it exist. */
export interface UncoveredPattern {
  readonly jail: string;
  /** `'exempt'` or `'paths'`. */
  readonly option: 'exempt' | 'paths';
  readonly pattern: string;
  /** Declared routes that start with the pattern (at most 3). */
  readonly routes: readonly string[];
  /** The rule to add beside it so that it covers them: `'/ws/**'`; with `mount`, the rule to write instead. */
  readonly cover: string;
  /**
   * The path the app is mounted at in another app (`parent.use('/api', app)`), when the middleware
   * runs only in the mounted app: its routes are read without it, and the rule names the full
   * path (`'/api/login'` for the app's `'/login'`).
   */
  readonly mount?: string;
}

/**
 * The jails' `exempt` and `paths` rules that match none of the app's declared routes while some
 * longer route starts with them: `exempt: ['/ws']` beside `app.get('/ws/:room')` exempts nothing
 * the router serves, and the room handshakes' refusals count (the seed incident). Rules match the
 * route the router chose, exactly: such a rule is almost always meant for the routes below it.
 */
export function uncoveredPatterns(
  jails: readonly ResolvedJail[],
  routes: readonly string[],
  ignoreCase: boolean,
  mount = '',
): UncoveredPattern[] {
  // Canonical form → the route as declared (what the warning shows).
  const declared = new Map<string, string>();
  for (const route of routes)
    if (!declared.has(canonicalRoute(route))) declared.set(canonicalRoute(route), route);
  const out: UncoveredPattern[] = [];
  for (const jail of jails) {
    for (const option of ['exempt', 'paths'] as const) {
      for (const pattern of jail[option].source) {
        if (!pattern.startsWith('/')) continue; // RegExps say what they mean
        const rule = compilePaths('', [pattern]);
        const all = jail[option];
        if ([...declared.keys()].some((route) => rule.matchesRoute(route, ignoreCase))) continue;
        const inMount = mount === '' ? undefined : mountedRule(pattern, mount, declared, all, ignoreCase);
        if (inMount !== undefined) {
          out.push({ jail: jail.name, option, pattern, routes: inMount.routes, cover: inMount.rule, mount });
          continue;
        }
        if (pattern.includes('*')) continue; // globs say what they mean
        const base = canonicalRoute(pattern);
        const prefix = base === '/' ? '/' : `${base}/`;
        const fold = (s: string) => (ignoreCase ? s.toLowerCase() : s);
        // The routes below it that no rule of the list covers (a '/ws/**' beside '/ws' does).
        const below = [...declared]
          .filter(([route]) => fold(route).startsWith(fold(prefix)) && !all.matchesRoute(route, ignoreCase))
          .map(([, written]) => written);
        if (below.length === 0) continue;
        out.push({ jail: jail.name, option, pattern, routes: below.slice(0, 3), cover: `${prefix}**` });
      }
    }
  }
  return out;
}

/**
 * A rule under the app's mount (`'/api/login'` in an app mounted at `'/api'`) that, without the
 * mount, matches some of the app's routes no rule of its list covers (`'/login'` beside it does):
 * the rule as the app's routes read, and those routes.
 */
function mountedRule(
  pattern: string,
  mount: string,
  declared: ReadonlyMap<string, string>,
  all: ReturnType<typeof compilePaths>,
  ignoreCase: boolean,
): { rule: string; routes: string[] } | undefined {
  const fold = (s: string) => (ignoreCase ? s.toLowerCase() : s);
  if (!fold(pattern).startsWith(`${fold(mount)}/`)) return undefined;
  const rule = pattern.slice(mount.length);
  const inner = compilePaths('', [rule]);
  const routes = [...declared]
    .filter(([route]) => inner.matchesRoute(route, ignoreCase) && !all.matchesRoute(route, ignoreCase))
    .map(([, written]) => written);
  return routes.length === 0 ? undefined : { rule, routes: routes.slice(0, 3) };
}

/** The warning for one uncovered rule, as the keeper gives it at startup and check-config lists it. */
export function uncoveredMessage(u: UncoveredPattern): string {
  const routes = u.routes.map((r) => `'${r}'`).join(', ');
  if (u.mount !== undefined)
    return `jails.${u.jail}.${u.option} names '${u.pattern}', which matches no route of the app: the middleware runs only in an app mounted at '${u.mount}', and reads that app's routes as it declares them (${routes}), without '${u.mount}'. Write '${u.cover}', or mount the middleware on the root app.`;
  return `jails.${u.jail}.${u.option} names '${u.pattern}', which matches no route of the app, while ${routes} start${u.routes.length === 1 ? 's' : ''} with it: rules match the route the router chose, exactly. Add '${u.cover}' to cover the routes below it.`;
}
