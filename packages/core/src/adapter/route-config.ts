import { JailkeeperError } from '../errors.js';

/**
 * Per-route setting, the same on every adapter: `false` counts nothing on the route (its 4xx are
 * normal, like /ws); `{ jails: ['login'] }` counts only in those jails.
 */
export type RouteConfig = false | { jails: string[] };

/**
 * A route config compiled once, when the route is declared: `NO_JAILS` counts nothing, a Set
 * counts only in those jails, `undefined` counts in every jail.
 */
export type RouteJails = ReadonlySet<string> | undefined;

/** The compiled form of `false`: compare by identity. */
export const NO_JAILS: ReadonlySet<string> = Object.freeze(new Set<string>());

const EXAMPLE = 'false (count nothing here) or { jails: ["login"] } (count only in those jails)';

function badConfig(where: string, detail: string): never {
  throw new JailkeeperError('JK_ERR_INVALID_ROUTE_CONFIG', `${where} must be ${EXAMPLE}; ${detail}.`);
}

/**
 * Validates and compiles a route config once, at setup. Every adapter calls this one function, so
 * a mistake reads the same everywhere: JK_ERR_INVALID_ROUTE_CONFIG for the shape,
 * JK_ERR_UNKNOWN_JAIL for a jail that is not configured. `where` names the route in the message.
 */
export function compileRouteConfig(jailNames: Iterable<string>, where: string, config: unknown): RouteJails {
  if (config === undefined) return undefined;
  if (config === false) return NO_JAILS;
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    badConfig(
      where,
      `received ${config === null ? 'null' : Array.isArray(config) ? 'an array' : JSON.stringify(config)}`,
    );
  }
  const keys = Object.keys(config);
  const extra = keys.filter((k) => k !== 'jails');
  if (extra.length > 0) badConfig(where, `received an unknown key ${JSON.stringify(extra[0])}`);
  const jails = (config as { jails?: unknown }).jails;
  if (jails === undefined) badConfig(where, 'received an object without jails');
  if (!Array.isArray(jails) || jails.length === 0) {
    badConfig(where, `jails must be a non-empty array of jail names; received ${JSON.stringify(jails)}`);
  }
  const known = new Set(jailNames);
  for (const name of jails as unknown[]) {
    if (typeof name !== 'string' || !known.has(name)) {
      throw new JailkeeperError(
        'JK_ERR_UNKNOWN_JAIL',
        `${where} names the jail ${JSON.stringify(name)}, which is not configured; the jails are ${[...known].join(', ')}.`,
      );
    }
  }
  return Object.freeze(new Set(jails as string[]));
}
