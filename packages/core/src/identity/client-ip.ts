import { invalid, JailkeeperConfigError, type Warner } from '../errors.js';
import type { ClientIdentity } from './identity.js';
import { clientKey, formatIp, type ParsedIp, parseIPv4, parseIp } from './ip.js';
import { IpSet, NAMED_RANGES, networkList } from './ip-set.js';

/** The header a trusted proxy writes the client into. */
export type ClientIpHeader = 'x-forwarded-for' | 'forwarded' | 'x-real-ip';

/** Request headers as Node gives them (lower-case names; duplicates joined with ", "). */
export type Headers = Readonly<Record<string, string | string[] | undefined>>;

/** Which peers may speak for the client: networks, named ranges, or a predicate. */
export type TrustedProxies = string[] | ((address: string, hop: number) => boolean);

/** The identity options of {@link createJailkeeper}. */
export interface ClientIpOptions {
  /**
   * The proxies whose forwarding headers are believed: addresses, CIDRs, `'loopback'`, `'private'`,
   * `'linklocal'`, `'uniquelocal'`, or a predicate `(address, hop) => boolean` (hop 0 is the socket
   * peer). Trust-everything values (`true`, `'*'`, `0.0.0.0/0`, `::/0`, a hop count) are refused
   * unless `dangerouslyTrustAllProxies` is set.
   * @default [] (headers are never believed; the socket address is the client)
   */
  trustedProxies?: TrustedProxies | boolean | number | string;
  /** The header trusted proxies write. @default 'x-forwarded-for' */
  clientIpHeader?: ClientIpHeader;
  /**
   * Accepts a trust-everything `trustedProxies`. Only safe when every request reaches the app
   * through a proxy that overwrites the header: otherwise any client picks its own address, dodges
   * its bans and gets others banned. @default false
   */
  dangerouslyTrustAllProxies?: boolean;
  /**
   * An escape hatch for exotic deployments: returns the client address of a request. Its result is
   * still validated and canonicalised; a value that is not an address falls back to the socket peer.
   */
  getClientIp?: (request: unknown) => string | undefined;
}

export interface ResolvedClientIpOptions {
  readonly isTrusted: ((ip: ParsedIp, hop: number) => boolean) | null;
  readonly header: ClientIpHeader;
  readonly getClientIp: ((request: unknown) => string | undefined) | undefined;
}

const HEADERS: readonly ClientIpHeader[] = ['x-forwarded-for', 'forwarded', 'x-real-ip'];
const WIDE = new Set(['*', '0.0.0.0/0', '::/0', 'all']);

/** Validates the identity options once; throws JK_ERR_UNSAFE_TRUST for trust-everything values. */
export function resolveClientIpOptions(input: ClientIpOptions): ResolvedClientIpOptions {
  const header = input.clientIpHeader ?? 'x-forwarded-for';
  if (!HEADERS.includes(header)) invalid('clientIpHeader', `one of ${HEADERS.join(', ')}`, header);
  const dangerous = input.dangerouslyTrustAllProxies ?? false;
  if (typeof dangerous !== 'boolean') invalid('dangerouslyTrustAllProxies', 'true or false', dangerous);
  if (input.getClientIp !== undefined && typeof input.getClientIp !== 'function') {
    invalid('getClientIp', 'a function (request) => string', input.getClientIp);
  }
  const unsafe = (what: string): never => {
    throw new JailkeeperConfigError(
      'JK_ERR_UNSAFE_TRUST',
      'trustedProxies',
      `trustedProxies ${what} would believe a forwarding header from any client, so any client could choose its own address, dodge its bans and get others banned. List your proxies' addresses instead, or set dangerouslyTrustAllProxies: true if every request passes a proxy that overwrites ${header}.`,
    );
  };
  const trusted = input.trustedProxies;
  let isTrusted: ResolvedClientIpOptions['isTrusted'] = null;
  if (trusted === undefined || trusted === false) {
    isTrusted = null;
  } else if (trusted === true) {
    if (!dangerous) unsafe('true');
    isTrusted = () => true;
  } else if (typeof trusted === 'number') {
    if (!dangerous) unsafe(`${trusted} (a hop count)`);
    if (!Number.isInteger(trusted) || trusted < 1) invalid('trustedProxies', 'a positive hop count', trusted);
    // hop 0 is the socket peer: n hops trusts the peer and the n-1 entries nearest to it.
    isTrusted = (_ip, hop) => hop < trusted;
  } else if (typeof trusted === 'function') {
    const predicate = trusted;
    isTrusted = (ip, hop) => {
      try {
        return predicate(formatIp(ip), hop) === true;
      } catch {
        return false; // a predicate that throws trusts nobody: fail closed
      }
    };
  } else {
    const list = typeof trusted === 'string' ? [trusted] : trusted;
    if (!Array.isArray(list))
      invalid('trustedProxies', 'an array of addresses, CIDRs or named ranges, or a predicate', trusted);
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
    const set = new IpSet(networkList('trustedProxies', widened));
    isTrusted = set.size === 0 ? null : (ip) => set.has(ip);
  }
  return Object.freeze({ isTrusted, header, getClientIp: input.getClientIp });
}

/** The private and loopback ranges, for the unconfigured-proxy check. */
const LOCAL = new IpSet(networkList('', [...(NAMED_RANGES.loopback ?? []), ...(NAMED_RANGES.private ?? [])]));
/** Requests from one local peer, with no proxy trusted, before the unconfigured-proxy warning. */
const SINGLE_PEER_THRESHOLD = 100;
/** Trusted hops walked at most: no real chain has more proxies, and the walk stays cheap. */
const MAX_HOPS = 32;

function headerValue(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : value.join(', ');
}

/**
 * Parses one X-Forwarded-For / X-Real-IP entry: an address, or the de-facto forms some load
 * balancers write, `1.2.3.4:port`, `[v6]` and `[v6]:port`.
 */
function parseListEntry(entry: string): ParsedIp | undefined {
  if (entry.charCodeAt(0) === 91 /* [ */) {
    const close = entry.indexOf(']');
    if (close === -1) return undefined;
    const rest = entry.slice(close + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return undefined;
    const inner = entry.slice(1, close);
    // Brackets hold IPv6 text only; a mapped address inside them is still the IPv4 client.
    return inner.includes(':') ? parseIp(inner) : undefined;
  }
  const colon = entry.indexOf(':');
  if (colon !== -1 && colon === entry.lastIndexOf(':')) {
    // exactly one colon: IPv4 with a port
    if (!/^\d{1,5}$/.test(entry.slice(colon + 1))) return undefined;
    const v4 = parseIPv4(entry.slice(0, colon));
    return v4 === undefined ? undefined : { family: 4, value: v4 };
  }
  return parseIp(entry);
}

/**
 * Parses one RFC 7239 `for=` value: a token (an IPv4 address) or a quoted string holding an
 * IPv4 address with an optional port, or a bracketed IPv6 address with an optional port.
 * Obfuscated identifiers (`unknown`, `_hidden`) are not addresses.
 */
function parseForwardedFor(raw: string): ParsedIp | undefined {
  if (raw.charCodeAt(0) === 34 /* " */) {
    if (raw.length < 2 || raw.charCodeAt(raw.length - 1) !== 34) return undefined;
    const inner = raw.slice(1, -1);
    if (inner.includes('"') || inner.includes('\\')) return undefined;
    return parseListEntry(inner);
  }
  // An unquoted token cannot hold ':' or '[' (RFC 7239 section 6): only a plain IPv4 address.
  const v4 = parseIPv4(raw);
  return v4 === undefined ? undefined : { family: 4, value: v4 };
}

/** Splits on `separator` outside quoted strings (for one Forwarded element, already isolated). */
function splitOutsideQuotes(text: string, separator: string): string[] {
  const out: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') quoted = !quoted;
    else if (c === separator && !quoted) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out;
}

/** The `for=` address of one Forwarded element; undefined when it has none or an invalid one. */
function forwardedElement(element: string): ParsedIp | undefined {
  if (element.includes('\\')) return undefined; // no valid for= value needs an escape
  let found: ParsedIp | undefined;
  let seen = false;
  for (const pair of splitOutsideQuotes(element, ';')) {
    const eq = pair.indexOf('=');
    if (eq === -1 || pair.slice(0, eq).trim().toLowerCase() !== 'for') continue;
    if (seen) return undefined; // two for= in one element: ambiguous
    seen = true;
    found = parseForwardedFor(pair.slice(eq + 1).trim());
  }
  return found;
}

/**
 * Walks a forwarding header from the right, one hop at a time, without reading further than
 * needed. The right end is written by the nearest (trusted) proxy; the left end may be written by
 * anyone, so it is never parsed before the hops to its right have been judged: padding, unbalanced
 * quotes or garbage on the left cannot change how the right end is read.
 */
class HopsFromRight {
  readonly #value: string;
  readonly #forwarded: boolean;
  #end: number;

  constructor(value: string, forwarded: boolean) {
    this.#value = value;
    this.#forwarded = forwarded;
    this.#end = value.length;
  }

  /** The next hop leftwards: an address, `undefined` for a malformed one, or `null` at the start. */
  next(): ParsedIp | undefined | null {
    if (this.#end < 0) return null;
    const value = this.#value;
    let start: number;
    if (this.#forwarded) {
      let quoted = false;
      start = this.#end - 1;
      for (; start >= 0; start--) {
        const c = value.charCodeAt(start);
        if (c === 34 /* " */) quoted = !quoted;
        else if (c === 44 /* , */ && !quoted) break;
      }
    } else {
      start = this.#end === 0 ? -1 : value.lastIndexOf(',', this.#end - 1);
    }
    const entry = value.slice(start + 1, this.#end).trim();
    this.#end = start;
    return this.#forwarded ? forwardedElement(entry) : parseListEntry(entry);
  }
}

/**
 * Resolves the client of a request from its socket peer and headers. Built once per keeper; the
 * per-request work is a parse of the peer and, behind a trusted proxy, a walk of one header from
 * the right, stopping at the first address that is not a trusted proxy (proxy-addr's rule).
 */
export class ClientResolver {
  readonly #options: ResolvedClientIpOptions;
  readonly #ipv6Subnet: number;
  readonly #warner: Warner;
  /** IPv6 peers parse slowly: a bounded cache of peer text to identity (cleared when full). */
  readonly #v6Cache = new Map<string, ClientIdentity>();
  #singlePeer: string | undefined;
  #singlePeerCount = 0;

  constructor(options: ResolvedClientIpOptions, ipv6Subnet: number, warner: Warner) {
    this.#options = options;
    this.#ipv6Subnet = ipv6Subnet;
    this.#warner = warner;
    if (ipv6Subnet < 48 || ipv6Subnet > 64) {
      warner.warn(
        'JK_WRN_IPV6_SUBNET',
        `ipv6Subnet is ${ipv6Subnet}: shorter than /48 lumps many customers into one client, longer than /64 lets a client rotate addresses inside its own /64.`,
      );
    }
  }

  #identity(ip: ParsedIp, viaProxy: boolean): ClientIdentity {
    if (ip.family === 4) {
      const text = clientKey(ip, 32);
      return { ip: text, key: text, viaProxy };
    }
    return { ip: formatIp(ip), key: clientKey(ip, this.#ipv6Subnet), viaProxy };
  }

  /** The identity of a socket peer address, with the fast paths of what Node reports. */
  #peerIdentity(peer: string): ClientIdentity | undefined {
    // What Node reports is canonical IPv4 or '::ffff:' + IPv4 on a dual-stack socket.
    if (parseIPv4(peer) !== undefined) return { ip: peer, key: peer, viaProxy: false };
    if (peer.startsWith('::ffff:') && parseIPv4(peer.slice(7)) !== undefined) {
      const v4 = peer.slice(7);
      return { ip: v4, key: v4, viaProxy: false };
    }
    const cached = this.#v6Cache.get(peer);
    if (cached !== undefined) return cached;
    const ip = parseIp(peer);
    if (ip === undefined) return undefined;
    const identity = this.#identity(ip, false);
    if (this.#v6Cache.size >= 10_000) this.#v6Cache.clear();
    this.#v6Cache.set(peer, identity);
    return identity;
  }

  #hasForwardingHeader(headers: Headers): boolean {
    return (
      headers['x-forwarded-for'] !== undefined ||
      headers.forwarded !== undefined ||
      headers['x-real-ip'] !== undefined
    );
  }

  /**
   * The client of a request. `peer` is the socket's remote address; `request` is handed to a
   * configured `getClientIp`. Returns `undefined` only when there is no usable peer address.
   */
  resolve(peer: string | undefined, headers: Headers, request?: unknown): ClientIdentity | undefined {
    const options = this.#options;
    if (options.getClientIp !== undefined) {
      const custom = this.#custom(request);
      if (custom !== undefined) return custom;
    }
    if (peer === undefined) return undefined;
    if (options.isTrusted === null) {
      if (!this.#warner.has('JK_WRN_FORWARDED_NO_TRUST') && this.#hasForwardingHeader(headers)) {
        this.#warner.warn(
          'JK_WRN_FORWARDED_NO_TRUST',
          'A request carried a forwarding header (X-Forwarded-For, X-Real-IP or Forwarded) but trustedProxies is empty, so the socket address was used. Behind a proxy, set trustedProxies to its address.',
        );
      }
      const identity = this.#peerIdentity(peer);
      if (identity !== undefined && this.#singlePeerCount <= SINGLE_PEER_THRESHOLD)
        this.#watchSinglePeer(identity);
      return identity;
    }
    const peerIp = parseIp(peer);
    if (peerIp === undefined) return undefined;
    if (!options.isTrusted(peerIp, 0)) {
      if (!this.#warner.has('JK_WRN_UNTRUSTED_FORWARDED') && this.#hasForwardingHeader(headers)) {
        this.#warner.warn(
          'JK_WRN_UNTRUSTED_FORWARDED',
          `A forwarding header arrived from ${formatIp(peerIp)}, which is not in trustedProxies; it was ignored. If that peer is your proxy, trust it.`,
        );
      }
      return this.#identity(peerIp, false);
    }
    return this.#fromHeader(peerIp, headers);
  }

  #fromHeader(peerIp: ParsedIp, headers: Headers): ClientIdentity {
    const options = this.#options;
    const isTrusted = options.isTrusted as NonNullable<ResolvedClientIpOptions['isTrusted']>;
    if (!this.#warner.has('JK_WRN_FORWARDED_HEADER_MISMATCH')) {
      const other = options.header === 'forwarded' ? headers['x-forwarded-for'] : headers.forwarded;
      if (other !== undefined && headerValue(headers, options.header) === undefined) {
        this.#warner.warn(
          'JK_WRN_FORWARDED_HEADER_MISMATCH',
          `A trusted proxy sent ${options.header === 'forwarded' ? 'X-Forwarded-For' : 'Forwarded'} but clientIpHeader is ${options.header}; the client address may be the proxy's. Set clientIpHeader to the header your proxy writes.`,
        );
      }
    }
    const value = headerValue(headers, options.header);
    if (value === undefined) return this.#identity(peerIp, true);
    const hops = new HopsFromRight(value, options.header === 'forwarded');
    let lastTrusted = peerIp;
    for (let hop = 1; ; hop++) {
      const ip = hops.next();
      // Every hop is a trusted proxy: the furthest one is the client, as in proxy-addr.
      if (ip === null) return this.#identity(lastTrusted, true);
      if (ip === undefined) return this.#malformed(lastTrusted, 'holds a value that is not an address');
      if (!isTrusted(ip, hop)) return this.#identity(ip, true);
      if (hop >= MAX_HOPS) return this.#malformed(ip, `lists over ${MAX_HOPS} trusted hops`);
      lastTrusted = ip;
    }
  }

  #malformed(fallback: ParsedIp, why: string): ClientIdentity {
    this.#warner.warn(
      'JK_WRN_MALFORMED_CLIENT_HEADER',
      `A trusted proxy sent a ${this.#options.header} header that ${why}; the last trusted hop (${formatIp(fallback)}) was used instead.`,
    );
    return this.#identity(fallback, true);
  }

  #custom(request: unknown): ClientIdentity | undefined {
    let text: unknown;
    try {
      text = (this.#options.getClientIp as (r: unknown) => unknown)(request);
    } catch {
      text = undefined;
    }
    const ip = typeof text === 'string' ? parseIp(text.trim()) : undefined;
    if (ip === undefined) {
      this.#warner.warn(
        'JK_WRN_CUSTOM_CLIENT_IP',
        `getClientIp returned ${typeof text === 'string' ? JSON.stringify(text.slice(0, 60)) : String(text)}, which is not an IP address; the socket address was used instead.`,
      );
      return undefined;
    }
    return this.#identity(ip, false);
  }

  #watchSinglePeer(identity: ClientIdentity): void {
    if (this.#singlePeer === undefined) this.#singlePeer = identity.ip;
    if (this.#singlePeer !== identity.ip) {
      this.#singlePeerCount = SINGLE_PEER_THRESHOLD + 1; // a second peer: stop watching
      return;
    }
    if (++this.#singlePeerCount === SINGLE_PEER_THRESHOLD && LOCAL.hasText(identity.ip)) {
      this.#warner.warn(
        'JK_WRN_SINGLE_PRIVATE_PEER',
        `The first ${SINGLE_PEER_THRESHOLD} requests all came from ${identity.ip}, a loopback or private address, and no proxy is trusted: this is likely a proxy, and one ban would refuse every user. Set trustedProxies.`,
      );
    }
  }
}
