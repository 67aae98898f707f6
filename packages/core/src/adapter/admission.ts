import { type Jailkeeper, kResponses } from '../engine/keeper.js';
import { JailkeeperConfigError } from '../errors.js';
import type { ClientIdentity } from '../identity/identity.js';

/**
 * Runs `decide` once the client has no failure still being recorded: at once (the common case,
 * and always with the memory store), or when the store's reply lands. The arguments are passed
 * through, so the fast path allocates no closure.
 */
export function afterSettling<A, B, C>(
  keeper: Jailkeeper,
  identity: ClientIdentity,
  decide: (a: A, b: B, c: C, identity: ClientIdentity) => void,
  a: A,
  b: B,
  c: C,
): void {
  const settling = keeper.settling(identity);
  if (settling === undefined) decide(a, b, c, identity);
  else settling.then(() => decide(a, b, c, identity));
}

/** Throws JK_ERR_INVALID_OPTION unless `value` is a keeper from createJailkeeper(). */
export function requireKeeper(value: unknown, where: string): Jailkeeper {
  if (
    value === null ||
    typeof value !== 'object' ||
    typeof (value as Jailkeeper).check !== 'function' ||
    typeof (value as Jailkeeper).observe !== 'function'
  ) {
    throw new JailkeeperConfigError(
      'JK_ERR_INVALID_OPTION',
      where,
      `${where} must be a keeper from createJailkeeper(); received ${value === null ? 'null' : typeof value}.`,
    );
  }
  return value as Jailkeeper;
}

/**
 * Marks a response the adapter will count when it closes: `keeper.idle()` waits for it. Call
 * {@link responseCounted} once when it closes, after counting it.
 */
export function responseOpened(keeper: Jailkeeper): void {
  keeper[kResponses](1);
}

/** The response marked by {@link responseOpened} has closed and been counted. */
export function responseCounted(keeper: Jailkeeper): void {
  keeper[kResponses](-1);
}
