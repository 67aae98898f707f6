import { internalsOf } from '../engine/internals.js';
import type { Jailkeeper } from '../engine/keeper.js';
import { JailkeeperConfigError } from '../errors.js';
import { expressTrustMissing } from '../identity/client-ip.js';

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
    typeof (value as Jailkeeper).observe !== 'function' ||
    internalsOf(value) === undefined
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
