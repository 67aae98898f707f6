import { describe, invalid, JailkeeperConfigError, type Warner } from '../errors.js';
import { type HeaderGrammar, type Headers, HopsFromRight, headerValue } from './forwarding-header.js';
import type { ClientIdentity } from './identity.js';
import { clientKey, formatIp, type ParsedIp, parseIPv4, parseIp } from './ip.js';
import { IpSet, NAMED_RANGES, networkList } from './ip-set.js';
import { compileTrust, type ProxyTrust, type Trust, type TrustedProxies } from './trust.js';

export type { Headers } from './forwarding-header.js';
export type { ProxyTrust, TrustedProxies } from './trust.js';

/** The header a trusted proxy writes the client into. */
export type ClientIpHeader = 'x-forwarded-for' | 'forwarded' | 'x-real-ip';

/** The identity options of {@link createJailkeeper}. */
export interface ClientIpOptions {
  /**
   * The proxies whose forwarding headers are believed, in the words of Express's `trust proxy`:
   * addresses, CIDRs, IPv4 netmasks (`10.0.0.0/255.255.255.0`), `'loopback'`, `'linklocal'`,
   * `'uniquelocal'` (as proxy-addr defines them) and `'private'` (the same as `'uniquelocal'`),
   * as an array or a comma-separated string; or a predicate `(address, hop) => truthy` (hop 0 is
   * the socket peer); or `'express'`: the Express app's own `trust proxy` setting, supplied by
   * `@jailkeeper/express`. CIDRs with host bits set are refused. Trust-everything values (`true`,
   * `'*'`, `0.0.0.0/0`, `::/0`, a hop count) are refused unless `dangerouslyTrustAllProxies` is set.
   * @default [] (headers are never believed; the socket address is the client)
   */
  trustedProxies?: TrustedProxies | boolean | number | string;
  /** The header trusted proxies write. @default 'x-forwarded-for' */
  clientIpHeader?: ClientIpHeader;
  /**
   * Accepts a trust-everything `trustedProxies` (or, with `'express'`, an app whose `trust proxy`
   * is `true` or a hop count). Only safe when every request reaches the app through a proxy that
   * overwrites the header: otherwise any client picks its own address, dodges its bans and gets
   * others banned. @default false
   */
  dangerouslyTrustAllProxies?: boolean;
  /**
   * An escape hatch for exotic deployments: returns the client address of a request. Its result is
   * still validated and canonicalised; a value that is not an address falls back to the socket peer.
   */
  getClientIp?: (request: unknown) => string | undefined;
}

export interface ResolvedClientIpOptions {
  readonly trust: Trust;
  readonly header: ClientIpHeader;
  readonly dangerouslyTrustAllProxies: boolean;
  readonly getClientIp: ((request: unknown) => string | undefined) | undefined;
}

const HEADERS: readonly ClientIpHeader[] = ['x-forwarded-for', 'forwarded', 'x-real-ip'];

/** Validates the identity options once; throws JK_ERR_UNSAFE_TRUST for trust-everything values. */
export function resolveClientIpOptions(input: ClientIpOptions): ResolvedClientIpOptions {
  const header = input.clientIpHeader ?? 'x-forwarded-for';
  if (!HEADERS.includes(header)) invalid('clientIpHeader', `one of ${HEADERS.join(', ')}`, header);
  const dangerous = input.dangerouslyTrustAllProxies ?? false;
  if (typeof dangerous !== 'boolean') invalid('dangerouslyTrustAllProxies', 'true or false', dangerous);
  if (input.getClientIp !== undefined && typeof input.getClientIp !== 'function') {
    invalid('getClientIp', 'a function (request) => string', input.getClientIp);
  }
  return Object.freeze({
    trust: compileTrust(input.trustedProxies, dangerous, header),
    header,
    dangerouslyTrustAllProxies: dangerous,
    getClientIp: input.getClientIp,
  });
}

/**
 * The error for `trustedProxies: 'express'` where no Express app supplies its trust function.
 * `where` names what lacked it.
 */
export function expressTrustMissing(where: string): JailkeeperConfigError {
  return new JailkeeperConfigError(
    'JK_ERR_EXPRESS_TRUST',
    'trustedProxies',
    `trustedProxies is 'express', which takes the trust proxy setting of the Express app, but ${where} supplies none. Use it with @jailkeeper/express (jk.guard(server) finds the app of app.listen(); otherwise pass { app }), or list your proxies in trustedProxies.`,
  );
}

/** The private and loopback ranges, for the unconfigured-proxy check. */
const LOCAL = new IpSet(networkList('', [...(NAMED_RANGES.loopback ?? []), ...(NAMED_RANGES.private ?? [])]));
/** Requests from one local peer, with no proxy trusted, before the unconfigured-proxy warning. */
const SINGLE_PEER_THRESHOLD = 100;
/** Trusted hops walked at most: no real chain has more proxies, and the walk stays cheap. */
const MAX_HOPS = 32;

/**
 * Resolves the client of a request from its socket peer and headers. Built once per keeper; the
 * per-request work is a parse of the peer and, behind a trusted proxy, a walk of one header from
 * the right, stopping at the first address that is not a trusted proxy (proxy-addr's rule).
 */
export class ClientResolver {
  readonly #options: ResolvedClientIpOptions;
  readonly #ipv6Subnet: number;
  readonly #warner: Warner;
  readonly #grammar: HeaderGrammar;
  /** The compiled trust, split so that a hop's check is one branch: a set, a function, or a count. */
  readonly #set: IpSet | undefined;
  readonly #predicate: ProxyTrust | undefined;
  readonly #hops: number;
  readonly #kind: Trust['kind'];
  /** How the trust function last refused an address (it threw, or what it returned), for the warning. */
  #refusalThrew = false;
  #refusalValue: unknown;
  /** IPv6 peers parse slowly: a bounded cache of peer text to identity (cleared when full). */
  readonly #v6Cache = new Map<string, ClientIdentity>();
  #singlePeer: string | undefined;
  #singlePeerCount = 0;

  constructor(options: ResolvedClientIpOptions, ipv6Subnet: number, warner: Warner) {
    this.#options = options;
    this.#ipv6Subnet = ipv6Subnet;
    this.#warner = warner;
    const trust = options.trust;
    this.#kind = trust.kind;
    this.#set = trust.kind === 'networks' ? trust.set : undefined;
    this.#predicate = trust.kind === 'predicate' ? trust.fn : undefined;
    this.#hops = trust.kind === 'hops' ? trust.hops : 0;
    this.#grammar =
      trust.kind === 'express' ? 'express' : options.header === 'forwarded' ? 'forwarded' : 'list';
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
   * Whether the address at `hop` is a trusted proxy. A trust function's result is read as
   * proxy-addr reads it: truthy trusts. One that throws trusts nobody (fail closed). The Express
   * app's function is given the text proxy-addr would give it (`raw`); a jailkeeper predicate the
   * canonical address.
   */
  #trusts(ip: ParsedIp, raw: string, hop: number, external: ProxyTrust | undefined): boolean {
    const set = this.#set;
    if (set !== undefined) return set.has(ip);
    const fn = external ?? this.#predicate;
    if (fn === undefined) return hop < this.#hops;
    let result: unknown;
    try {
      result = external === undefined ? fn(formatIp(ip), hop) : fn(raw, hop);
    } catch (error) {
      this.#refusalThrew = true;
      this.#warner.warn(
        'JK_WRN_TRUST_FUNCTION_THREW',
        `The ${external === undefined ? 'trustedProxies predicate' : "Express app's trust proxy function"} threw on ${formatIp(ip)} (hop ${hop}): ${error instanceof Error ? error.message : describe(error)}. That address was taken as not trusted.`,
      );
      return false;
    }
    if (result) return true;
    this.#refusalThrew = false;
    this.#refusalValue = result;
    return false;
  }

  /** Why the peer was not trusted, in the words of the setting that decided it. */
  #whyUntrusted(): string {
    const kind = this.#options.trust.kind;
    if (kind === 'networks') return 'which is not in trustedProxies';
    const who =
      kind === 'express' ? "the Express app's trust proxy function" : 'the trustedProxies predicate';
    return this.#refusalThrew
      ? `on which ${who} threw`
      : `for which ${who} returned ${describe(this.#refusalValue)}`;
  }

  /**
   * The client of a request. `peer` is the socket's remote address; `request` is handed to a
   * configured `getClientIp`; `trust` is the Express app's trust function, used only with
   * `trustedProxies: 'express'` (and then required). Returns `undefined` only when there is no
   * usable peer address.
   */
  resolve(
    peer: string | undefined,
    headers: Headers,
    request?: unknown,
    trust?: ProxyTrust,
  ): ClientIdentity | undefined {
    const options = this.#options;
    if (options.getClientIp !== undefined) {
      const custom = this.#custom(request);
      if (custom !== undefined) return custom;
    }
    if (peer === undefined) return undefined;
    const kind = this.#kind;
    if (kind === 'none') {
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
    let external: ProxyTrust | undefined;
    if (kind === 'express') {
      if (typeof trust !== 'function') throw expressTrustMissing('this call of resolve()');
      external = trust;
    }
    const peerIp = parseIp(peer);
    if (peerIp === undefined) return undefined;
    if (!this.#trusts(peerIp, peer, 0, external)) {
      if (!this.#warner.has('JK_WRN_UNTRUSTED_FORWARDED') && this.#hasForwardingHeader(headers)) {
        this.#warner.warn(
          'JK_WRN_UNTRUSTED_FORWARDED',
          `A forwarding header arrived from ${formatIp(peerIp)}, ${this.#whyUntrusted()}; it was ignored. If that peer is your proxy, trust it.`,
        );
      }
      return this.#identity(peerIp, false);
    }
    return this.#fromHeader(peerIp, headers, external);
  }

  #fromHeader(peerIp: ParsedIp, headers: Headers, external: ProxyTrust | undefined): ClientIdentity {
    const options = this.#options;
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
    const hops = new HopsFromRight(value, this.#grammar);
    let lastTrusted = peerIp;
    for (let hop = 1; ; hop++) {
      const ip = hops.next();
      // No entry at all (Express skips empty ones): the proxy is the client, as in proxy-addr.
      if (ip === null) return this.#identity(lastTrusted, true);
      if (ip === undefined) return this.#malformed(lastTrusted, 'holds a value that is not an address');
      // The furthest entry is the client once reached; proxy-addr never asks whether it is trusted.
      if (!hops.hasNext() || !this.#trusts(ip, hops.raw, hop, external)) return this.#identity(ip, true);
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
