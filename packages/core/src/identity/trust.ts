import { describe, invalid, JailkeeperConfigError } from '../errors.js';
import { type Cidr, formatCidr } from './ip.js';
import { IpSet, networkList } from './ip-set.js';

/**
 * A trust function as Express compiles `trust proxy` (proxy-addr's `trust(address, hop)`): hop 0 is
 * the socket peer, then the forwarding header's entries from the right. A truthy result trusts the
 * address, as in proxy-addr.
 */
export type ProxyTrust = (address: string, hop: number) => unknown;

/** Which peers may speak for the client: networks, named ranges, or a predicate. */
export type TrustedProxies = string[] | ProxyTrust;

/** `trustedProxies` compiled once at setup. */
export type Trust =
  | { readonly kind: 'none' }
  | { readonly kind: 'networks'; readonly set: IpSet }
  | { readonly kind: 'predicate'; readonly fn: ProxyTrust }
  | { readonly kind: 'hops'; readonly hops: number }
  | { readonly kind: 'express' };

/** The trustedProxies value that hands trust to the Express app's own `trust proxy` setting. */
const EXPRESS_TRUST = 'express';

/** Words for "every address", refused without the opt-in. */
const WIDE = new Set(['*', '0.0.0.0/0', '::/0', 'all']);

/**
 * Compiles `trustedProxies` once: a list (or an Express-style comma-separated string) of addresses,
 * CIDRs, IPv4 netmasks and named ranges; a predicate; `'express'`; or, with the opt-in,
 * trust-everything values. Throws JK_ERR_UNSAFE_TRUST for those without the opt-in.
 */
export function compileTrust(trusted: unknown, dangerous: boolean, header: string): Trust {
  const unsafe = (what: string): never => {
    throw new JailkeeperConfigError(
      'JK_ERR_UNSAFE_TRUST',
      'trustedProxies',
      `trustedProxies ${what} would believe a forwarding header from any client, so any client could choose its own address, dodge its bans and get others banned. List your proxies' addresses instead, or set dangerouslyTrustAllProxies: true if every request passes a proxy that overwrites ${header}.`,
    );
  };
  if (trusted === undefined || trusted === false) return { kind: 'none' };
  if (trusted === true) {
    if (!dangerous) unsafe('true');
    return { kind: 'hops', hops: Number.POSITIVE_INFINITY };
  }
  if (typeof trusted === 'number') {
    if (!dangerous) unsafe(`${trusted} (a hop count)`);
    if (!Number.isInteger(trusted) || trusted < 1) invalid('trustedProxies', 'a positive hop count', trusted);
    // hop 0 is the socket peer: n hops trusts the peer and the n-1 entries nearest to it.
    return { kind: 'hops', hops: trusted };
  }
  if (typeof trusted === 'function') return { kind: 'predicate', fn: trusted as ProxyTrust };
  if (trusted === EXPRESS_TRUST) {
    if (header !== 'x-forwarded-for') {
      invalid(
        'clientIpHeader',
        `'x-forwarded-for' with trustedProxies: 'express' (Express reads only X-Forwarded-For)`,
        header,
      );
    }
    return { kind: 'express' };
  }
  // A string is a comma-separated list, as Express's `trust proxy` reads one.
  const list = typeof trusted === 'string' ? trusted.split(',').map((entry) => entry.trim()) : trusted;
  if (!Array.isArray(list)) {
    invalid(
      'trustedProxies',
      "an array of addresses, CIDRs or named ranges, a predicate, or 'express'",
      trusted,
    );
  }
  list.forEach((entry: unknown, i) => {
    if (typeof entry === 'string' && WIDE.has(entry.trim())) {
      if (!dangerous) unsafe(JSON.stringify(entry));
    } else if (typeof entry === 'string' && /^\s*\d+\s*$/.test(entry)) {
      invalid(
        `trustedProxies[${i}]`,
        'an address, a CIDR or a named range (a hop count is not an address)',
        entry,
      );
    }
  });
  const widened = list.flatMap((entry) =>
    typeof entry === 'string' && WIDE.has(entry.trim()) ? ['0.0.0.0/0', '::/0'] : [entry],
  );
  const networks = networkList('trustedProxies', widened);
  if (!dangerous) {
    // Judged on the networks, not their spelling: `0.0.0.0/0.0.0.0`, `::ffff:0:0/96` or two /1
    // halves trust every address as surely as `0.0.0.0/0`.
    for (const family of [4, 6] as const) {
      if (coversFamily(networks, family)) {
        const shown = networks.filter((n) => n.family === family).map((n) => formatCidr(n));
        unsafe(`${describe(shown.join(', '))} (every IPv${family} address)`);
      }
    }
  }
  const set = new IpSet(networks);
  return set.size === 0 ? { kind: 'none' } : { kind: 'networks', set };
}

/** True when the networks of one family together hold every address of that family. */
function coversFamily(networks: readonly Cidr[], family: 4 | 6): boolean {
  const bits = family === 4 ? 32n : 128n;
  const ranges: Array<[bigint, bigint]> = [];
  for (const cidr of networks) {
    if (cidr.family !== family) continue;
    let start = 0n;
    if (cidr.family === 4) start = BigInt(cidr.value);
    else for (const word of cidr.words) start = (start << 16n) | BigInt(word);
    ranges.push([start, start + (1n << (bits - BigInt(cidr.prefix)))]);
  }
  ranges.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  let reached = 0n;
  for (const [start, end] of ranges) {
    if (start > reached) return false;
    if (end > reached) reached = end;
  }
  return reached === 1n << bits;
}
