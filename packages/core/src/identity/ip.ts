import { formatIPv6, parseIPv6 } from './ipv6.js';

/**
 * A parsed address. IPv4 is a uint32; IPv6 is eight 16-bit words. An IPv4-mapped IPv6 address
 * (`::ffff:1.2.3.4`, `::ffff:102:304`, any case) is IPv4: it is the same client.
 */
export type ParsedIp =
  | { readonly family: 4; readonly value: number }
  | { readonly family: 6; readonly words: number[] };

const MAX_ADDRESS_LENGTH = 64;
const ZONE_ID = /^[0-9A-Za-z_.~-]{1,32}$/;

/**
 * Strict dotted-quad IPv4: four decimal parts 0..255, no leading zeros. The forms some parsers
 * accept (`010.1.1.1` as octal, `0x7f.1`, `2130706433`, `127.1`) are ambiguous between
 * implementations, so they are rejected: an ambiguous address never becomes a key.
 */
export function parseIPv4(text: string): number | undefined {
  const length = text.length;
  if (length < 7 || length > 15) return undefined;
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || dots === 3) return undefined;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return undefined; // leading zero
      part = part * 10 + (c - 48);
      if (part > 255) return undefined;
      digits++;
    } else {
      return undefined;
    }
  }
  if (dots !== 3 || digits === 0) return undefined;
  return value * 256 + part;
}

/** Formats a uint32 as dotted quad. */
function formatIPv4(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

function isMapped(words: readonly number[]): boolean {
  return (
    words[0] === 0 &&
    words[1] === 0 &&
    words[2] === 0 &&
    words[3] === 0 &&
    words[4] === 0 &&
    words[5] === 0xffff
  );
}

/**
 * Parses an address the way a socket or a forwarding header writes it, without brackets or port.
 * A zone id (`fe80::1%eth0`) is dropped: it names this host's interface, not the client.
 * Returns `undefined` for anything that is not exactly one address.
 */
export function parseIp(text: string): ParsedIp | undefined {
  if (text.length === 0 || text.length > MAX_ADDRESS_LENGTH) return undefined;
  const v4 = parseIPv4(text);
  if (v4 !== undefined) return { family: 4, value: v4 };
  if (text.indexOf(':') === -1) return undefined;
  let address = text;
  const zone = text.indexOf('%');
  if (zone !== -1) {
    if (!ZONE_ID.test(text.slice(zone + 1))) return undefined;
    address = text.slice(0, zone);
  }
  // An embedded IPv4 is a strict dotted quad, as an address on its own is.
  const dot = address.indexOf('.');
  if (dot !== -1 && parseIPv4(address.slice(address.lastIndexOf(':') + 1)) === undefined) return undefined;
  for (let i = 0; i < address.length; i++) {
    const c = address.charCodeAt(i);
    const ok = (c >= 48 && c <= 58) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102) || c === 46;
    if (!ok) return undefined;
  }
  const words = parseIPv6(address);
  if (words === undefined) return undefined;
  if (isMapped(words)) return { family: 4, value: (words[6] as number) * 65536 + (words[7] as number) };
  return { family: 6, words };
}

/** The canonical text of a parsed address: dotted quad, or RFC 5952 IPv6 (lower case, compressed). */
export function formatIp(ip: ParsedIp): string {
  if (ip.family === 4) return formatIPv4(ip.value);
  return formatIPv6(ip.words);
}

/** The canonical text of an address, or `undefined` when it is not one. */
export function canonicalIp(text: string): string | undefined {
  const ip = parseIp(text);
  return ip === undefined ? undefined : formatIp(ip);
}

/** Zeroes the bits after `prefix` (IPv6 words are copied, never mutated). */
export function maskWords(words: readonly number[], prefix: number): number[] {
  const out = new Array<number>(8);
  for (let i = 0; i < 8; i++) {
    const bits = Math.min(16, Math.max(0, prefix - i * 16));
    out[i] = bits === 0 ? 0 : (words[i] as number) & ((0xffff << (16 - bits)) & 0xffff);
  }
  return out;
}

/** The IPv4 netmask for a prefix length, as a uint32. */
export function maskV4(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/**
 * The IPv4 client an IPv6 address carries, as a uint32, or undefined. `prefix` is how many leading
 * bits are known (128 for an address, less for a client key such as `2002:c633:6401:1::/64`): the
 * IPv4 is given only when all of its bits are among them. The forms, as docs/client-ip.md lists:
 * - SIIT, IPv4-translated `::ffff:0:a.b.c.d` (RFC 6145): the last 32 bits;
 * - IPv4-compatible `::a.b.c.d` (RFC 4291, deprecated), however spelt (`::c633:6401`): the last 32
 *   bits, when they are not in 0.0.0.0/8 (`::` and `::1` are not IPv4 clients);
 * - NAT64's well-known prefix `64:ff9b::/96` (RFC 6052): the last 32 bits;
 * - Teredo `2001:0::/32` (RFC 4380): the client's public address, stored inverted in the last 32
 *   bits (the server's address, the flags and the port are not the client);
 * - 6to4 `2002::/16` (RFC 3056): bits 16 to 47, the IPv4 address of the site's router. One IPv4
 *   address owns the whole /48, so keying by /64 would give it 65,536 clients.
 * Each is reachable, for a TCP connection, only by the holder of that IPv4 address (or through a
 * trusted proxy's header): keying by it gives an attacker no more keys than IPv4 does.
 */
export function embeddedIPv4(words: readonly number[], prefix = 128): number | undefined {
  const w = words as readonly [number, number, number, number, number, number, number, number];
  if (w[0] === 0x2002) return prefix >= 48 ? (w[1] * 65536 + w[2]) >>> 0 : undefined;
  if (prefix < 128) return undefined;
  const low = w[6] * 65536 + w[7];
  if (w[0] === 0x2001 && w[1] === 0) return ~low >>> 0;
  if (w[2] !== 0 || w[3] !== 0) return undefined;
  if (w[0] === 0x64 && w[1] === 0xff9b) return w[4] === 0 && w[5] === 0 ? low : undefined;
  if (w[0] !== 0 || w[1] !== 0) return undefined;
  if (w[4] === 0xffff && w[5] === 0) return low; // SIIT
  if (w[4] === 0 && w[5] === 0xffff) return low; // mapped (parseIp makes these IPv4 already)
  if (w[4] === 0 && w[5] === 0 && w[6] >= 0x100) return low; // IPv4-compatible
  return undefined;
}

/**
 * The key a client is counted, banned and matched under. IPv4 is the address; an IPv6 address
 * that carries an IPv4 client (NAT64, SIIT, IPv4-compatible, Teredo, 6to4: see
 * {@link embeddedIPv4}) is that IPv4 address, so every spelling of one client is one key; other
 * IPv6 is its `/subnet` prefix (`2001:db8:1:2::/64`), so rotating inside the prefix gains nothing.
 * With a subnet of 128 the key is the address itself.
 */
export function clientKey(ip: ParsedIp, ipv6Subnet: number): string {
  if (ip.family === 4) return formatIPv4(ip.value);
  const v4 = embeddedIPv4(ip.words);
  if (v4 !== undefined) return formatIPv4(v4);
  if (ipv6Subnet >= 128) return formatIp(ip);
  return `${formatIPv6(maskWords(ip.words, ipv6Subnet))}/${ipv6Subnet}`;
}

/**
 * The key of an IPv6 client key an operator wrote (`2001:db8:1:2::/64`, of the grouping length):
 * itself, unless every address in it carries one IPv4 client (a 6to4 /64), which is then the key.
 */
export function prefixKey(words: readonly number[], prefix: number): string {
  const v4 = embeddedIPv4(words, prefix);
  if (v4 !== undefined) return formatIPv4(v4);
  return `${formatIPv6(maskWords(words, prefix))}/${prefix}`;
}

/** A network: an address family, its masked bits and a prefix length. */
export type Cidr =
  | { readonly family: 4; readonly value: number; readonly prefix: number }
  | {
      readonly family: 6;
      readonly words: number[];
      readonly prefix: number;
    };

/**
 * The prefix length of a contiguous IPv4 netmask written as a strict dotted quad
 * (`255.255.255.192` is 26), or undefined.
 */
function netmaskPrefix(text: string): number | undefined {
  const mask = parseIPv4(text);
  if (mask === undefined) return undefined;
  const hostBits = ~mask >>> 0;
  // A contiguous mask is ones then zeros: its host part plus one is a power of two.
  if ((hostBits & (hostBits + 1)) !== 0) return undefined;
  return Math.clz32(hostBits);
}

/**
 * Parses `1.2.3.0/24`, `2001:db8::/32`, a single address (a /32 or /128), or, as Express's
 * proxy-addr does, an IPv4 network with a netmask (`10.0.0.0/255.255.255.192`, the same as /26).
 * IPv4-mapped IPv6 networks of /96 or longer become IPv4 networks. Host bits after the prefix are
 * an error, because `10.0.0.1/8` usually means a typo. Returns a reason string on failure.
 */
export function parseCidr(text: string): Cidr | string {
  if (typeof text !== 'string') return 'not a string';
  const slash = text.indexOf('/');
  const addressText = slash === -1 ? text.trim() : text.slice(0, slash).trim();
  const ip = parseIp(addressText);
  if (ip === undefined) return 'not an IPv4 or IPv6 address';
  const mappedV4 = ip.family === 4 && addressText.indexOf(':') !== -1;
  const max = ip.family === 4 && !mappedV4 ? 32 : 128;
  let prefix = max;
  let written = '';
  if (slash !== -1) {
    const prefixText = text.slice(slash + 1).trim();
    if (/^\d{1,3}$/.test(prefixText)) {
      prefix = Number(prefixText);
      if (prefix > max) return `the prefix length is over ${max}`;
    } else if (prefixText.includes('.') || prefixText.includes(':')) {
      const netmask = netmaskReason(prefixText, max === 32, text.slice(0, slash).trim());
      if (typeof netmask === 'string') return netmask;
      prefix = netmask;
      written = ` (the netmask ${prefixText})`;
    } else {
      return 'the prefix length is not a number';
    }
  }
  if (ip.family === 4) {
    const v4Prefix = mappedV4 ? prefix - 96 : prefix;
    if (v4Prefix < 0) return 'an IPv4-mapped network must be /96 or longer';
    const value = (ip.value & maskV4(v4Prefix)) >>> 0;
    if (value !== ip.value) {
      const network = mappedV4 ? `::ffff:${formatIPv4(value)}` : formatIPv4(value);
      return `host bits are set after /${prefix}${written} (did you mean ${network}/${prefix}?)`;
    }
    return { family: 4, value, prefix: v4Prefix };
  }
  const words = maskWords(ip.words, prefix);
  if (words.some((w, i) => w !== ip.words[i])) {
    return `host bits are set after /${prefix} (did you mean ${formatIPv6(words)}/${prefix}?)`;
  }
  return { family: 6, words, prefix };
}

/** The prefix length of a netmask after `address`, or why it is refused (as proxy-addr refuses it). */
function netmaskReason(mask: string, isIPv4: boolean, address: string): number | string {
  if (!isIPv4) {
    // proxy-addr takes a netmask only after a plain IPv4 address; an IPv6 one is written as a prefix.
    const v6 = mask.includes(':') ? parseIp(mask) : undefined;
    const bits = v6?.family === 6 ? v6Prefix(v6.words) : undefined;
    return bits === undefined
      ? 'a netmask is accepted only after an IPv4 address (write a prefix length)'
      : `a netmask is accepted only after an IPv4 address (write ${address}/${bits})`;
  }
  const prefix = netmaskPrefix(mask);
  if (prefix === undefined)
    return `${JSON.stringify(mask)} is not an IPv4 netmask such as 255.255.255.0 (ones, then zeros)`;
  return prefix;
}

/** The prefix length of a contiguous IPv6 mask, or undefined. */
function v6Prefix(words: readonly number[]): number | undefined {
  let bits = 0;
  let ended = false;
  for (const word of words) {
    for (let bit = 15; bit >= 0; bit--) {
      const set = (word >> bit) & 1;
      if (set && ended) return undefined;
      if (set) bits++;
      else ended = true;
    }
  }
  return bits;
}

/** The canonical text of a network: `1.2.3.0/24`, `2001:db8::/32`, or the bare address for a host. */
export function formatCidr(cidr: Cidr): string {
  if (cidr.family === 4)
    return cidr.prefix === 32 ? formatIPv4(cidr.value) : `${formatIPv4(cidr.value)}/${cidr.prefix}`;
  const text = formatIPv6(cidr.words);
  return cidr.prefix === 128 ? text : `${text}/${cidr.prefix}`;
}
