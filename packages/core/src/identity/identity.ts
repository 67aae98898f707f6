import { JailkeeperError } from '../errors.js';
import { identifyAccount, isAccountKey } from './account.js';
import type { ClientIdentity } from './client.js';

export type { ClientIdentity } from './client.js';

import { clientKey, formatIp, type ParsedIp, parseCidr, parseIp, prefixKey } from './ip.js';

/** The identity of a parsed address. */
function identityOf(ip: ParsedIp, ipv6Subnet: number): ClientIdentity {
  return { ip: formatIp(ip), key: clientKey(ip, ipv6Subnet) };
}

/**
 * The identity for an address an operator or a caller wrote: an address in any accepted spelling,
 * or an IPv6 client key such as `2001:db8:1:2::/64` (with the configured prefix length).
 * Returns `undefined` for anything else.
 */
export function identify(text: string, ipv6Subnet: number): ClientIdentity | undefined {
  if (typeof text !== 'string') return undefined;
  const trimmed = text.trim();
  if (isAccountKey(trimmed)) return identifyAccount(trimmed);
  if (trimmed.includes('/')) {
    const cidr = parseCidr(trimmed);
    if (typeof cidr === 'string') return undefined;
    // One address written as a CIDR (/32, /128) is that address; an IPv6 prefix of the grouping length is a client.
    const whole = cidr.prefix === (cidr.family === 4 ? 32 : 128);
    if (!whole && (cidr.family !== 6 || cidr.prefix !== ipv6Subnet)) return undefined;
    const ip: ParsedIp =
      cidr.family === 4 ? { family: 4, value: cidr.value } : { family: 6, words: cidr.words };
    if (whole || ip.family === 4) return identityOf(ip, ipv6Subnet);
    // A client key as written (a key kept from before a change of grouping stays reachable), or
    // the IPv4 client every address of it carries (a 6to4 /64).
    return { ip: formatIp(ip), key: prefixKey(ip.words, cidr.prefix) };
  }
  const ip = parseIp(trimmed);
  return ip === undefined ? undefined : identityOf(ip, ipv6Subnet);
}

/**
 * Like {@link identify}, but throws JK_ERR_INVALID_IP with what was wrong: not an address, or a
 * range wider than one client (which is for the edge or the firewall to block).
 */
export function requireClient(text: string, ipv6Subnet: number): ClientIdentity {
  const id = identify(text, ipv6Subnet);
  if (id !== undefined) return id;
  const shown = JSON.stringify(String(text).slice(0, 80));
  const isRange = String(text).includes('/') && typeof parseCidr(String(text).trim()) !== 'string';
  throw new JailkeeperError(
    'JK_ERR_INVALID_IP',
    isRange
      ? `${shown} is a range wider than one client; jailkeeper bans clients (an address, or an IPv6 /${ipv6Subnet}). Block a wider range at the edge or the firewall.`
      : `${shown} is not an IP address (or an IPv6 /${ipv6Subnet} client key).`,
  );
}
