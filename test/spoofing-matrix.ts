/**
 * The spoofing matrix: socket peer × headers × trustedProxies × clientIpHeader, each row with its
 * hand-computed client. Run by the core resolver's unit test, and by the framework adapters through
 * real requests, so that every adapter resolves clients exactly as core does.
 */
import type { ClientIpHeader } from '@jailkeeper/core/operator';

export interface SpoofRow {
  readonly name: string;
  /** The socket's remote address as Node reports it. */
  readonly peer: string;
  readonly headers: Readonly<Record<string, string>>;
  /** trustedProxies: a name from TRUST. */
  readonly trust: keyof typeof TRUST;
  readonly header: ClientIpHeader;
  /** The expected client address (canonical). */
  readonly ip: string;
  /** True when the peer was a trusted proxy. */
  readonly viaProxy: boolean;
}

export const TRUST = {
  none: [] as string[],
  loopback: ['loopback'],
  proxy: ['10.0.0.1'],
  chain: ['10.0.0.1', '10.0.0.2'],
  privateNet: ['10.0.0.0/8'],
  v6proxy: ['2001:db8:ffff::/48'],
  mixed: ['loopback', '10.0.0.0/8', '2001:db8:ffff::/48'],
  /** proxy-addr's uniquelocal: 10/8, 172.16/12, 192.168/16 and fc00::/7. */
  uniquelocal: ['uniquelocal'],
  /** 10.0.0.0/26 in Express's netmask notation. */
  netmask: ['10.0.0.0/255.255.255.192'],
} as const;

const rows: SpoofRow[] = [];
const row = (r: SpoofRow) => rows.push(r);

// ---------------------------------------------------------------- 1. untrusted peers
// Whatever the headers and whichever header is read, an untrusted peer is the client.
const HOSTILE_HEADERS: Array<[string, Record<string, string>]> = [
  ['no header', {}],
  ['XFF one address', { 'x-forwarded-for': '198.51.100.7' }],
  ['XFF loopback', { 'x-forwarded-for': '127.0.0.1' }],
  ['XFF admin-looking chain', { 'x-forwarded-for': '10.0.0.1, 127.0.0.1' }],
  ['X-Real-IP', { 'x-real-ip': '198.51.100.7' }],
  ['Forwarded', { forwarded: 'for=198.51.100.7' }],
  ['all three', { 'x-forwarded-for': '1.1.1.1', 'x-real-ip': '2.2.2.2', forwarded: 'for=3.3.3.3' }],
  ['XFF garbage', { 'x-forwarded-for': '__proto__' }],
];
const UNTRUSTED: Array<[string, string, keyof typeof TRUST, string]> = [
  // [label, peer, trust, expected client]
  ['public v4, nothing trusted', '203.0.113.9', 'none', '203.0.113.9'],
  ['mapped public v4, nothing trusted', '::ffff:203.0.113.9', 'none', '203.0.113.9'],
  ['public v6, nothing trusted', '2001:db8:1:2::9', 'none', '2001:db8:1:2::9'],
  ['public v4, loopback trusted', '203.0.113.9', 'loopback', '203.0.113.9'],
  ['public v4, proxy trusted', '203.0.113.9', 'proxy', '203.0.113.9'],
  ['neighbour of the proxy', '10.0.0.3', 'chain', '10.0.0.3'],
  ['v6 outside the trusted /48', '2001:db8:fffe::1', 'v6proxy', '2001:db8:fffe::1'],
  ['loopback, only 10.0.0.1 trusted', '127.0.0.1', 'proxy', '127.0.0.1'],
  ['just outside uniquelocal', '172.32.0.1', 'uniquelocal', '172.32.0.1'],
  ['just outside the netmask', '10.0.0.64', 'netmask', '10.0.0.64'],
];
for (const [label, peer, trust, ip] of UNTRUSTED) {
  for (const [what, headers] of HOSTILE_HEADERS) {
    for (const header of ['x-forwarded-for', 'forwarded'] as const) {
      row({
        name: `untrusted ${label}; ${what}; reads ${header}`,
        peer,
        headers,
        trust,
        header,
        ip,
        viaProxy: false,
      });
    }
  }
}

// ---------------------------------------------------------------- 2. X-Forwarded-For behind proxies
const XFF: Array<[string, string, keyof typeof TRUST, string | undefined, string]> = [
  // [label, peer, trust, X-Forwarded-For, expected client]
  ['no header from the proxy: the proxy itself', '127.0.0.1', 'loopback', undefined, '127.0.0.1'],
  ['one client', '127.0.0.1', 'loopback', '198.51.100.7', '198.51.100.7'],
  ['mapped peer, one client', '::ffff:127.0.0.1', 'loopback', '198.51.100.7', '198.51.100.7'],
  ['v6 loopback peer', '::1', 'loopback', '198.51.100.7', '198.51.100.7'],
  ['client spoofs a left entry', '127.0.0.1', 'loopback', '6.6.6.6, 198.51.100.7', '198.51.100.7'],
  ['client spoofs loopback on the left', '127.0.0.1', 'loopback', '127.0.0.1, 198.51.100.7', '198.51.100.7'],
  [
    'client spoofs the trusted proxy on the left',
    '10.0.0.1',
    'proxy',
    '10.0.0.1, 198.51.100.7',
    '198.51.100.7',
  ],
  ['two hops, both trusted', '10.0.0.1', 'chain', '198.51.100.7, 10.0.0.2', '198.51.100.7'],
  ['two hops with a spoofed left', '10.0.0.1', 'chain', '6.6.6.6, 198.51.100.7, 10.0.0.2', '198.51.100.7'],
  ['second hop not trusted: it is the client', '10.0.0.1', 'proxy', '198.51.100.7, 10.0.0.2', '10.0.0.2'],
  ['every hop trusted: the furthest', '10.0.0.1', 'privateNet', '10.0.0.3, 10.0.0.2', '10.0.0.3'],
  ['mapped entry', '127.0.0.1', 'loopback', '::ffff:198.51.100.7', '198.51.100.7'],
  ['mapped entry in hex', '127.0.0.1', 'loopback', '::ffff:c633:6407', '198.51.100.7'],
  ['mapped entry upper case', '127.0.0.1', 'loopback', '::FFFF:198.51.100.7', '198.51.100.7'],
  ['IPv4 with a port', '127.0.0.1', 'loopback', '198.51.100.7:4711', '198.51.100.7'],
  ['bracketed IPv6', '127.0.0.1', 'loopback', '[2001:db8:5::1]', '2001:db8:5::1'],
  ['bracketed IPv6 with a port', '127.0.0.1', 'loopback', '[2001:db8:5::1]:443', '2001:db8:5::1'],
  [
    'IPv6 zero-padded upper case',
    '127.0.0.1',
    'loopback',
    '2001:0DB8:0005:0000:0000:0000:0000:0001',
    '2001:db8:5::1',
  ],
  ['NAT64 stays IPv6', '127.0.0.1', 'loopback', '64:ff9b::198.51.100.7', '64:ff9b::c633:6407'],
  ['embedded IPv4 stays IPv6', '127.0.0.1', 'loopback', '2001:db8::1.2.3.4', '2001:db8::102:304'],
  ['v6 proxy peer', '2001:db8:ffff::1', 'v6proxy', '198.51.100.7', '198.51.100.7'],
  ['mixed trust: loopback then private hop', '127.0.0.1', 'mixed', '198.51.100.7, 10.9.9.9', '198.51.100.7'],
  ['uniquelocal proxy at 10.1.2.3 (issue 20)', '10.1.2.3', 'uniquelocal', '198.51.100.7', '198.51.100.7'],
  ['uniquelocal IPv4 chain', '192.168.1.1', 'uniquelocal', '198.51.100.7, 172.16.5.5', '198.51.100.7'],
  ['netmask proxy', '10.0.0.63', 'netmask', '198.51.100.7', '198.51.100.7'],
  ['netmask: a hop outside it is the client', '10.0.0.1', 'netmask', '198.51.100.7, 10.0.0.64', '10.0.0.64'],
  ['spaces around entries', '127.0.0.1', 'loopback', '  198.51.100.7  ', '198.51.100.7'],
  ['duplicate headers joined by Node', '127.0.0.1', 'loopback', '6.6.6.6, 198.51.100.7', '198.51.100.7'],
  // Malformed values from a trusted proxy: never a key; the last trusted hop is used.
  ['empty value', '127.0.0.1', 'loopback', '', '127.0.0.1'],
  ['unknown', '127.0.0.1', 'loopback', 'unknown', '127.0.0.1'],
  ['_hidden', '127.0.0.1', 'loopback', '_hidden', '127.0.0.1'],
  ['__proto__', '127.0.0.1', 'loopback', '__proto__', '127.0.0.1'],
  ['constructor', '127.0.0.1', 'loopback', 'constructor', '127.0.0.1'],
  ['garbage right after a trusted hop', '10.0.0.1', 'chain', '198.51.100.7, garbage, 10.0.0.2', '10.0.0.2'],
  [
    'garbage on the untrusted left is never read',
    '127.0.0.1',
    'loopback',
    'garbage, 198.51.100.7',
    '198.51.100.7',
  ],
  ['trailing comma', '127.0.0.1', 'loopback', '198.51.100.7,', '127.0.0.1'],
  ['leading-zero IPv4', '127.0.0.1', 'loopback', '010.0.0.1', '127.0.0.1'],
  ['octal-looking short IPv4', '127.0.0.1', 'loopback', '0x7f.1', '127.0.0.1'],
  ['integer IPv4', '127.0.0.1', 'loopback', '3325256711', '127.0.0.1'],
  ['non-ASCII digits', '127.0.0.1', 'loopback', '１９８.51.100.7', '127.0.0.1'],
  ['host name', '127.0.0.1', 'loopback', 'evil.example', '127.0.0.1'],
  ['IPv4 with a bad port', '127.0.0.1', 'loopback', '198.51.100.7:http', '127.0.0.1'],
  [
    'unbracketed IPv6 with a port-like tail is IPv6',
    '127.0.0.1',
    'loopback',
    '2001:db8::1:80',
    '2001:db8::1:80',
  ],
  ['CIDR is not an address', '127.0.0.1', 'loopback', '198.51.100.0/24', '127.0.0.1'],
  ['zone id dropped', '127.0.0.1', 'loopback', 'fe80::1%eth0', 'fe80::1'],
  ['hostile zone id', '127.0.0.1', 'loopback', 'fe80::1%<script>', '127.0.0.1'],
];
for (const [label, peer, trust, xff, ip] of XFF) {
  row({
    name: `XFF: ${label}`,
    peer,
    headers: xff === undefined ? {} : { 'x-forwarded-for': xff },
    trust,
    header: 'x-forwarded-for',
    ip,
    viaProxy: true,
  });
}

// Padding: 2,000 entries in about 16 KB. Written by the client, the padding is on the left and
// never read; a proxy chain cannot be that long, so an all-trusted one stops at the 32nd hop.
const padding = Array.from({ length: 2000 }, (_, i) => `6.6.${(i >> 8) & 255}.${i & 255}`).join(', ');
row({
  name: 'XFF: 2,000 spoofed entries before the real client',
  peer: '127.0.0.1',
  headers: { 'x-forwarded-for': `${padding}, 198.51.100.7` },
  trust: 'loopback',
  header: 'x-forwarded-for',
  ip: '198.51.100.7',
  viaProxy: true,
});
const trustedPadding = Array.from({ length: 2000 }, (_, i) => `10.1.${(i >> 8) & 255}.${i & 255}`).join(', ');
row({
  name: 'XFF: 2,000 trusted hops: stops at the 32nd',
  peer: '10.0.0.1',
  headers: { 'x-forwarded-for': trustedPadding },
  trust: 'privateNet',
  header: 'x-forwarded-for',
  ip: '10.1.7.176', // entry 1968 of 0..1999, the 32nd from the right (hops 1..32)
  viaProxy: true,
});

// ---------------------------------------------------------------- 3. X-Real-IP
const REAL: Array<[string, string, keyof typeof TRUST, string | undefined, string]> = [
  ['one address', '127.0.0.1', 'loopback', '198.51.100.7', '198.51.100.7'],
  ['v6 address', '127.0.0.1', 'loopback', '2001:db8:5::1', '2001:db8:5::1'],
  ['absent: the proxy', '127.0.0.1', 'loopback', undefined, '127.0.0.1'],
  [
    'duplicates joined: the rightmost, written by the proxy',
    '127.0.0.1',
    'loopback',
    '6.6.6.6, 198.51.100.7',
    '198.51.100.7',
  ],
  ['malformed', '127.0.0.1', 'loopback', 'unknown', '127.0.0.1'],
  ['empty', '127.0.0.1', 'loopback', '', '127.0.0.1'],
  ['mapped', '127.0.0.1', 'loopback', '::ffff:198.51.100.7', '198.51.100.7'],
  ['with a port', '10.0.0.1', 'proxy', '198.51.100.7:80', '198.51.100.7'],
];
for (const [label, peer, trust, value, ip] of REAL) {
  row({
    name: `X-Real-IP: ${label}`,
    peer,
    headers: value === undefined ? {} : { 'x-real-ip': value },
    trust,
    header: 'x-real-ip',
    ip,
    viaProxy: true,
  });
}
row({
  name: 'X-Real-IP read: XFF from the same proxy is ignored',
  peer: '127.0.0.1',
  headers: { 'x-real-ip': '198.51.100.7', 'x-forwarded-for': '6.6.6.6' },
  trust: 'loopback',
  header: 'x-real-ip',
  ip: '198.51.100.7',
  viaProxy: true,
});
row({
  name: 'XFF read: X-Real-IP from the same proxy is ignored',
  peer: '127.0.0.1',
  headers: { 'x-real-ip': '6.6.6.6', 'x-forwarded-for': '198.51.100.7' },
  trust: 'loopback',
  header: 'x-forwarded-for',
  ip: '198.51.100.7',
  viaProxy: true,
});

// ---------------------------------------------------------------- 4. Forwarded (RFC 7239)
const FWD: Array<[string, string, keyof typeof TRUST, string | undefined, string]> = [
  ['for= token', '127.0.0.1', 'loopback', 'for=198.51.100.7', '198.51.100.7'],
  ['For= any case', '127.0.0.1', 'loopback', 'For=198.51.100.7', '198.51.100.7'],
  ['FOR= upper case', '127.0.0.1', 'loopback', 'FOR=198.51.100.7', '198.51.100.7'],
  ['quoted IPv6 with a port', '127.0.0.1', 'loopback', 'for="[2001:db8:cafe::17]:4711"', '2001:db8:cafe::17'],
  ['quoted IPv6 without a port', '127.0.0.1', 'loopback', 'for="[2001:db8:cafe::17]"', '2001:db8:cafe::17'],
  ['quoted IPv4 with a port', '127.0.0.1', 'loopback', 'for="198.51.100.7:8080"', '198.51.100.7'],
  [
    'other parameters',
    '127.0.0.1',
    'loopback',
    'for=198.51.100.7;proto=https;by=203.0.113.43',
    '198.51.100.7',
  ],
  [
    'parameters in another order',
    '127.0.0.1',
    'loopback',
    'proto=https; for=198.51.100.7 ;host=a',
    '198.51.100.7',
  ],
  [
    'several elements, spoofed left',
    '127.0.0.1',
    'loopback',
    'for=6.6.6.6, for=198.51.100.7',
    '198.51.100.7',
  ],
  ['two trusted hops', '10.0.0.1', 'chain', 'for=198.51.100.7, for=10.0.0.2', '198.51.100.7'],
  ['second hop untrusted', '10.0.0.1', 'proxy', 'for=198.51.100.7, for=10.0.0.2', '10.0.0.2'],
  ['absent: the proxy', '127.0.0.1', 'loopback', undefined, '127.0.0.1'],
  ['unknown', '127.0.0.1', 'loopback', 'for=unknown', '127.0.0.1'],
  ['_hidden obfuscated', '127.0.0.1', 'loopback', 'for=_hidden', '127.0.0.1'],
  ['unquoted IPv6 is invalid', '127.0.0.1', 'loopback', 'for=2001:db8::1', '127.0.0.1'],
  ['unquoted bracket is invalid', '127.0.0.1', 'loopback', 'for=[2001:db8::1]', '127.0.0.1'],
  ['unquoted port is invalid', '127.0.0.1', 'loopback', 'for=198.51.100.7:80', '127.0.0.1'],
  ['element without for=', '127.0.0.1', 'loopback', 'proto=https;by=1.2.3.4', '127.0.0.1'],
  ['two for= in one element', '127.0.0.1', 'loopback', 'for=6.6.6.6;for=198.51.100.7', '127.0.0.1'],
  ['escape inside quotes', '127.0.0.1', 'loopback', 'for="198.51.100.7\\"', '127.0.0.1'],
  [
    'unbalanced quote on the untrusted left',
    '127.0.0.1',
    'loopback',
    'for="6.6.6.6, for=198.51.100.7',
    '198.51.100.7',
  ],
  ['quoted comma on the left', '127.0.0.1', 'loopback', 'for="a,b", for=198.51.100.7', '198.51.100.7'],
  ['empty', '127.0.0.1', 'loopback', '', '127.0.0.1'],
  ['mapped quoted', '127.0.0.1', 'loopback', 'for="[::ffff:198.51.100.7]"', '198.51.100.7'],
  ['v6 proxy peer', '2001:db8:ffff::1', 'v6proxy', 'for=198.51.100.7', '198.51.100.7'],
];
for (const [label, peer, trust, value, ip] of FWD) {
  row({
    name: `Forwarded: ${label}`,
    peer,
    headers: value === undefined ? {} : { forwarded: value },
    trust,
    header: 'forwarded',
    ip,
    viaProxy: true,
  });
}
row({
  name: 'Forwarded read: XFF from the same proxy is ignored',
  peer: '127.0.0.1',
  headers: { forwarded: 'for=198.51.100.7', 'x-forwarded-for': '6.6.6.6' },
  trust: 'loopback',
  header: 'forwarded',
  ip: '198.51.100.7',
  viaProxy: true,
});
row({
  name: 'XFF read: Forwarded from the same proxy is ignored',
  peer: '127.0.0.1',
  headers: { forwarded: 'for=6.6.6.6', 'x-forwarded-for': '198.51.100.7' },
  trust: 'loopback',
  header: 'x-forwarded-for',
  ip: '198.51.100.7',
  viaProxy: true,
});

export const SPOOFING_MATRIX: readonly SpoofRow[] = Object.freeze(rows);
