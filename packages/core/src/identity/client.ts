// The client a request comes from, as adapters and the engine pass it around.

/**
 * Who a request comes from, canonical. `ip` is the client's own address (IPv4 dotted quad, or
 * RFC 5952 IPv6); `key` is what is counted and banned: the IPv4 address (also for an IPv6 address
 * that carries an IPv4 client: NAT64, SIIT, IPv4-compatible, Teredo, 6to4), or the IPv6 prefix.
 */
export interface ClientIdentity {
  readonly ip: string;
  readonly key: string;
  /**
   * True when the socket peer was a trusted proxy (the address came from its header). Refusing
   * such a request by destroying the socket would cut the proxy's pooled connection, so adapters
   * answer 403 instead of dropping.
   */
  readonly viaProxy?: boolean;
}
