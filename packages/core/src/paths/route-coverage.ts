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
  /** The rule to add beside it so that it covers them: `'/ws/**'`. */
  readonly cover: string;
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
): UncoveredPattern[] {
  // Canonical form → the route as declared (what the warning shows).
  const declared = new Map<string, string>();
  for (const route of routes)
    if (!declared.has(canonicalRoute(route))) declared.set(canonicalRoute(route), route);
  const out: UncoveredPattern[] = [];
  for (const jail of jails) {
    for (const option of ['exempt', 'paths'] as const) {
      for (const pattern of jail[option].source) {
        if (!pattern.startsWith('/') || pattern.includes('*')) continue; // RegExps and globs say what they mean
        const rule = compilePaths('', [pattern]);
        const all = jail[option];
        if ([...declared.keys()].some((route) => rule.matchesRoute(route, ignoreCase))) continue;
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

/** The warning for one uncovered rule, as the keeper gives it at startup and check-config lists it. */
export function uncoveredMessage(u: UncoveredPattern): string {
  const routes = u.routes.map((r) => `'${r}'`).join(', ');
  return `jails.${u.jail}.${u.option} names '${u.pattern}', which matches no route of the app, while ${routes} start${u.routes.length === 1 ? 's' : ''} with it: rules match the route the router chose, exactly. Add '${u.cover}' to cover the routes below it.`;
}
