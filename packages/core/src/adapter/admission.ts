import { type Jailkeeper, kResponses } from '../engine/keeper.js';
import { JailkeeperConfigError } from '../errors.js';
import { expressTrustMissing } from '../identity/client-ip.js';
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

/** What an adapter supplies beyond request facts. */
export interface AdapterAbilities {
  /**
   * The adapter passes the Express app's compiled `trust proxy` function to `keeper.resolve()`,
   * as `trustedProxies: 'express'` needs.
   */
  readonly expressTrust?: boolean;
}

/**
 * Throws JK_ERR_INVALID_OPTION unless `value` is a keeper from createJailkeeper(), and
 * JK_ERR_EXPRESS_TRUST when the keeper's `trustedProxies: 'express'` needs a trust function this
 * adapter does not supply: at setup, not at the first request.
 */
export function requireKeeper(value: unknown, where: string, abilities: AdapterAbilities = {}): Jailkeeper {
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
  const keeper = value as Jailkeeper;
  if (keeper.options?.clientIp?.trust.kind === 'express' && abilities.expressTrust !== true) {
    throw expressTrustMissing(`this adapter (${where})`);
  }
  return keeper;
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
