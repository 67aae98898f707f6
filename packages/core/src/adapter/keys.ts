import type { Jailkeeper } from '../engine/keeper.js';
import type { KeyFacts, ResolvedJail } from '../engine/options.js';
import { functionKey } from '../identity/account.js';
import type { ClientIdentity } from '../identity/identity.js';
import { pathOf } from '../paths/normalize-path.js';

/** What a key function is given facts from: the attempt, as the router has placed it. */
export interface KeyedRequest {
  readonly identity: ClientIdentity;
  readonly method: string;
  readonly path: string;
  readonly route: string | null | undefined;
  readonly headers: KeyFacts['headers'];
}

/** The facts a key function reads, built once per attempt (only where some jail has one). */
export function keyFacts(request: KeyedRequest): KeyFacts {
  return Object.freeze({
    ip: request.identity.ip,
    method: request.method,
    path: pathOf(request.path),
    route: typeof request.route === 'string' ? request.route : null,
    headers: request.headers,
  });
}

/**
 * The key `jail`'s function gives a request, as the stores keep it (`functionKey()`: normalised,
 * long keys digested); undefined when it gives none. A function that throws or returns anything
 * but a string or undefined is reported once (JK_WRN_KEY_FUNCTION) and the request is not
 * counted in that jail: a bad key function never fails a request.
 */
export function keyOf(keeper: Jailkeeper, jail: ResolvedJail, facts: KeyFacts): string | undefined {
  const fn = jail.keyFn;
  if (fn === null) return undefined;
  let value: unknown;
  try {
    value = fn(facts);
  } catch (error) {
    keeper.warn(
      'JK_WRN_KEY_FUNCTION',
      `jails.${jail.name}.key threw (${(error as Error)?.message}); the request was not counted in that jail. A key function must return a string or undefined, synchronously.`,
    );
    return undefined;
  }
  if (value === undefined) return undefined;
  const key = functionKey(value);
  if (key === null) {
    keeper.warn(
      'JK_WRN_KEY_FUNCTION',
      `jails.${jail.name}.key must return a string or undefined; it returned ${describeValue(value)}, so the request was not counted in that jail. A key function runs synchronously: it cannot await.`,
    );
    return undefined;
  }
  return key;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object' && typeof (value as { then?: unknown }).then === 'function')
    return 'a promise';
  return `a ${typeof value}`;
}
