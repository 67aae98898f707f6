import { describe, invalid, JailkeeperConfigError } from '../errors.js';
import { type Cidr, formatCidr, maskV4, maskWords, type ParsedIp, parseCidr, parseIp } from './ip.js';

function v6Key(words: readonly number[]): string {
  // Eight 16-bit words as one string key; cheaper than RFC 5952 text and unambiguous.
  return String.fromCharCode(...words);
}

/**
 * A set of networks matched by address, compiled for lookups: one `Set` per distinct prefix
 * length per family, so a lookup costs one Set probe per prefix length in use (at most 33 for
 * IPv4), whatever the number of entries.
 */
export class IpSet {
  readonly #v4 = new Map<number, Set<number>>();
  readonly #v6 = new Map<number, Set<string>>();
  readonly #entries = new Map<string, Cidr>();
  #v4Prefixes: number[] = [];
  #v6Prefixes: number[] = [];

  constructor(entries: Iterable<Cidr> = []) {
    for (const cidr of entries) this.add(cidr);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Adds a network; returns false when it was there already. */
  add(cidr: Cidr): boolean {
    const text = formatCidr(cidr);
    if (this.#entries.has(text)) return false;
    this.#entries.set(text, cidr);
    if (cidr.family === 4) {
      let bucket = this.#v4.get(cidr.prefix);
      if (!bucket) {
        bucket = new Set();
        this.#v4.set(cidr.prefix, bucket);
        this.#v4Prefixes = [...this.#v4.keys()].sort((a, b) => b - a);
      }
      bucket.add(cidr.value);
    } else {
      let bucket = this.#v6.get(cidr.prefix);
      if (!bucket) {
        bucket = new Set();
        this.#v6.set(cidr.prefix, bucket);
        this.#v6Prefixes = [...this.#v6.keys()].sort((a, b) => b - a);
      }
      bucket.add(v6Key(cidr.words));
    }
    return true;
  }

  /** Removes a network exactly as added; returns false when it was not there. */
  remove(cidr: Cidr): boolean {
    const text = formatCidr(cidr);
    if (!this.#entries.delete(text)) return false;
    if (cidr.family === 4) {
      const bucket = this.#v4.get(cidr.prefix);
      bucket?.delete(cidr.value);
      if (bucket?.size === 0) {
        this.#v4.delete(cidr.prefix);
        this.#v4Prefixes = [...this.#v4.keys()].sort((a, b) => b - a);
      }
    } else {
      const bucket = this.#v6.get(cidr.prefix);
      bucket?.delete(v6Key(cidr.words));
      if (bucket?.size === 0) {
        this.#v6.delete(cidr.prefix);
        this.#v6Prefixes = [...this.#v6.keys()].sort((a, b) => b - a);
      }
    }
    return true;
  }

  clear(): void {
    this.#v4.clear();
    this.#v6.clear();
    this.#entries.clear();
    this.#v4Prefixes = [];
    this.#v6Prefixes = [];
  }

  /** The narrowest network holding the address, or undefined. */
  match(ip: ParsedIp): Cidr | undefined {
    if (ip.family === 4) {
      for (const prefix of this.#v4Prefixes) {
        const value = (ip.value & maskV4(prefix)) >>> 0;
        if (this.#v4.get(prefix)?.has(value)) return { family: 4, value, prefix };
      }
      return undefined;
    }
    for (const prefix of this.#v6Prefixes) {
      const words = maskWords(ip.words, prefix);
      if (this.#v6.get(prefix)?.has(v6Key(words))) return { family: 6, words, prefix };
    }
    return undefined;
  }

  has(ip: ParsedIp): boolean {
    return this.match(ip) !== undefined;
  }

  /** True when every address of the network is inside the set (used for IPv6 client prefixes). */
  covers(cidr: Cidr): boolean {
    if (cidr.family === 4) {
      for (const prefix of this.#v4Prefixes) {
        if (prefix > cidr.prefix) continue;
        if (this.#v4.get(prefix)?.has((cidr.value & maskV4(prefix)) >>> 0)) return true;
      }
      return false;
    }
    for (const prefix of this.#v6Prefixes) {
      if (prefix > cidr.prefix) continue;
      if (this.#v6.get(prefix)?.has(v6Key(maskWords(cidr.words, prefix)))) return true;
    }
    return false;
  }

  /** Matches an address given as text; false for text that is not an address. */
  hasText(text: string): boolean {
    const ip = parseIp(text);
    return ip !== undefined && this.has(ip);
  }

  /** The networks, in canonical text, in insertion order. */
  list(): string[] {
    return [...this.#entries.keys()];
  }
}

/**
 * Named ranges accepted wherever networks are listed (trustedProxies, ignoreIp, admin.allowRemote).
 * `loopback`, `linklocal` and `uniquelocal` mean exactly what they mean in Express's `trust proxy`
 * (proxy-addr), IPv4 and IPv6 alike; `private` is jailkeeper's own name for the same networks as
 * `uniquelocal`.
 */
export const NAMED_RANGES: Readonly<Record<string, readonly string[]>> = Object.freeze(
  Object.assign(Object.create(null) as Record<string, readonly string[]>, {
    loopback: Object.freeze(['127.0.0.0/8', '::1/128']),
    linklocal: Object.freeze(['169.254.0.0/16', 'fe80::/10']),
    uniquelocal: Object.freeze(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7']),
    private: Object.freeze(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7']),
  }),
);

/** The names of {@link NAMED_RANGES}, for messages. */
const RANGE_NAMES = Object.keys(NAMED_RANGES).join(', ');

/**
 * Parses one entry (an address, a CIDR, an IPv4 network with a netmask, or a named range) into
 * networks, or a reason.
 */
export function parseNetworkEntry(entry: string): Cidr[] | string {
  // Own names only: `constructor` or `__proto__` are not ranges.
  const named = Object.hasOwn(NAMED_RANGES, entry) ? NAMED_RANGES[entry] : undefined;
  if (named) return named.map((text) => parseCidr(text) as Cidr);
  const cidr = parseCidr(entry);
  return typeof cidr === 'string' ? cidr : [cidr];
}

/** The canonical networks of an entry (`'loopback'` gives two), or why it is not one. */
export function canonicalNetworks(entry: string): string[] | string {
  const parsed = parseNetworkEntry(entry);
  return typeof parsed === 'string' ? parsed : parsed.map((cidr) => formatCidr(cidr));
}

/** Parses a list of addresses, CIDRs (or netmasks) and named ranges. */
export function networkList(path: string, value: unknown): Cidr[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) invalid(path, 'an array of addresses, CIDRs or named ranges', value);
  const out: Cidr[] = [];
  value.forEach((entry: unknown, i) => {
    const parsed = typeof entry === 'string' ? parseNetworkEntry(entry.trim()) : 'not a string';
    if (typeof parsed === 'string') {
      throw new JailkeeperConfigError(
        'JK_ERR_INVALID_CIDR',
        `${path}[${i}]`,
        `${path}[${i}] must be an IP address, a CIDR such as "10.0.0.0/8", or one of ${RANGE_NAMES}; received ${describe(entry)} (${parsed}).`,
      );
    }
    out.push(...parsed);
  });
  return out;
}
