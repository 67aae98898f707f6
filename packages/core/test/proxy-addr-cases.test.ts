/**
 * proxy-addr's own test cases (jshttp/proxy-addr, test/test.js of the 2.0 line that Express 4 and
 * 5 use), translated into the resolver's terms: proxy-addr's `trust` argument becomes
 * `trustedProxies`, its `createReq(socketAddr, headers)` the peer and headers given to the
 * resolver. Each row holds proxy-addr's expected outcome; it either agrees, or it is marked as a
 * documented difference (docs/client-ip.md, "Differences from Express"), and then the test checks
 * what jailkeeper does instead, and that it really differs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JailkeeperConfigError, Warner, type WarningCode } from '../src/errors.js';
import { type ClientIpOptions, ClientResolver, resolveClientIpOptions } from '../src/identity/client-ip.js';
import { IpSet, networkList } from '../src/identity/ip-set.js';

type Trust = ClientIpOptions['trustedProxies'];

/** proxy-addr's own trust functions, as its tests define them. */
const all = () => true;
const none = () => false;
const trust10x = (addr: string) => /^10\./.test(addr);

function resolver(trustedProxies: Trust) {
  const warnings: WarningCode[] = [];
  const warner = new Warner({
    info() {},
    error() {},
    warn: (o: { code?: WarningCode }) => warnings.push(o.code as WarningCode),
  });
  return { r: new ClientResolver(resolveClientIpOptions({ trustedProxies }), 64, warner), warnings };
}

/** The client address jailkeeper resolves, as proxy-addr's `proxyaddr(req, trust)` returns one. */
function client(trust: Trust, peer: string | undefined, xff?: string): string | undefined {
  const headers = xff === undefined ? {} : { 'x-forwarded-for': xff };
  return resolver(trust).r.resolve(peer, headers)?.ip;
}

/** 'accepted', or 'refused' for a coded configuration error (anything else fails the test). */
function compiles(trust: Trust): string {
  try {
    resolveClientIpOptions({ trustedProxies: trust });
    return 'accepted';
  } catch (error) {
    if (error instanceof JailkeeperConfigError && error.code.startsWith('JK_ERR_')) return 'refused';
    throw error;
  }
}

/** The message of the refusal, or 'accepted'. */
function refusal(trust: Trust): string {
  try {
    resolveClientIpOptions({ trustedProxies: trust });
    return 'accepted';
  } catch (error) {
    return (error as Error).message;
  }
}

/** The calls a logging predicate receives, as proxy-addr's "invoked as trust(addr, i)" records them. */
function calls(peer: string, xff: string): Array<[string, number]> {
  const log: Array<[string, number]> = [];
  resolver((addr, i) => log.push([addr, i])).r.resolve(peer, { 'x-forwarded-for': xff });
  return log;
}

/**
 * proxy-addr's `all(req, trust)`: the addresses from the socket leftwards up to the client. Here:
 * the addresses the walk judged, then the client. `trust` decides like the row's trust argument.
 */
function chain(decide: (addr: string) => boolean, peer: string, xff?: string): string[] {
  const judged: string[] = [];
  const { r } = resolver((addr) => {
    judged.push(addr);
    return decide(addr);
  });
  const id = r.resolve(peer, xff === undefined ? {} : { 'x-forwarded-for': xff });
  if (id !== undefined && judged.at(-1) !== id.ip) judged.push(id.ip);
  return judged;
}
const listed = (entries: string[]) => {
  const set = new IpSet(networkList('t', entries));
  return (addr: string) => set.hasText(addr);
};

/** A host-bit network: refused with the network to write, which then gives proxy-addr's client. */
function hostBits(trust: string[], fixed: string[], peer: string, xff: string): string {
  const message = refusal(trust);
  const hint = /did you mean ([^?]+)\?/.exec(message)?.[1];
  return `refused, did you mean ${hint}; written ${fixed.join(', ')}: ${client(fixed, peer, xff)}`;
}

const API =
  "jailkeeper's resolver takes the facts of a request (socket peer, headers), never a request object: with no peer it resolves no client (undefined) instead of throwing.";
const OPTIONAL =
  'trustedProxies is optional: unset, no proxy is trusted and the socket peer is the client (proxy-addr requires the argument).';
const HOST_BITS =
  'A CIDR or netmask with host bits set (10.0.0.2/26) is refused at startup with the network to write (10.0.0.0/26), since it usually hides a typo; written as the network, the row gives proxy-addr’s client.';
const NOT_ADDRESS =
  "A header value that is not an address ('localhost', 'proxy', a malformed IPv6) never becomes a client key, and a trust function is never asked about it: the last trusted hop is the client (JK_WRN_MALFORMED_CLIENT_HEADER). proxy-addr returns the text itself as the address.";

interface Case {
  /** proxy-addr's describe path and test title. */
  readonly name: string;
  /** jailkeeper's outcome for the translated case. */
  readonly run: () => unknown;
  /** The outcome proxy-addr's test asserts. */
  readonly proxyAddr: unknown;
  /** A documented difference: why, and jailkeeper's outcome instead. */
  readonly difference?: { readonly reason: string; readonly jailkeeper: unknown };
}

const P = 'proxyaddr(req, trust)';
const A = 'proxyaddr.all(req, [trust])';
const C = 'proxyaddr.compile(trust)';

export const PROXY_ADDR_CASES: readonly Case[] = [
  // ------------------------------------------------------------------ arguments
  {
    name: `${P} arguments req should be required`,
    run: () => client('127.0.0.1', undefined),
    proxyAddr: 'throws',
    difference: { reason: API, jailkeeper: undefined },
  },
  {
    name: `${P} arguments trust should be required`,
    run: () => client(undefined, '127.0.0.1', '10.0.0.1'),
    proxyAddr: 'throws',
    difference: { reason: OPTIONAL, jailkeeper: '127.0.0.1' },
  },
  { name: `${P} arguments trust should accept a function`, run: () => compiles(all), proxyAddr: 'accepted' },
  { name: `${P} arguments trust should accept an array`, run: () => compiles([]), proxyAddr: 'accepted' },
  {
    name: `${P} arguments trust should accept a string`,
    run: () => compiles('127.0.0.1'),
    proxyAddr: 'accepted',
  },
  // A hop count is refused by default; with dangerouslyTrustAllProxies it is accepted, as Express's
  // `trust proxy` accepts one (proxy-addr itself never does).
  { name: `${P} arguments trust should reject a number`, run: () => compiles(42), proxyAddr: 'refused' },
  {
    name: `${P} arguments trust should accept IPv4`,
    run: () => compiles('127.0.0.1'),
    proxyAddr: 'accepted',
  },
  { name: `${P} arguments trust should accept IPv6`, run: () => compiles('::1'), proxyAddr: 'accepted' },
  {
    name: `${P} arguments trust should accept IPv4-style IPv6`,
    run: () => compiles('::ffff:127.0.0.1'),
    proxyAddr: 'accepted',
  },
  {
    name: `${P} arguments trust should accept pre-defined names`,
    run: () => compiles('loopback'),
    proxyAddr: 'accepted',
  },
  {
    name: `${P} arguments trust should accept pre-defined names in array`,
    run: () => compiles(['loopback', '10.0.0.1']),
    proxyAddr: 'accepted',
  },
  {
    name: `${P} arguments trust should reject non-IP`,
    run: () => ['blargh', '10.0.300.1', '::ffff:30.168.1.9000', '-1'].map(compiles),
    proxyAddr: ['refused', 'refused', 'refused', 'refused'],
  },
  {
    name: `${P} arguments trust should reject bad CIDR`,
    run: () =>
      ['10.0.0.1/internet', '10.0.0.1/6000', '::1/6000', '::ffff:a00:2/136', '::ffff:a00:2/-1'].map(compiles),
    proxyAddr: ['refused', 'refused', 'refused', 'refused', 'refused'],
  },
  {
    name: `${P} arguments trust should reject bad netmask`,
    run: () =>
      [
        '10.0.0.1/255.0.255.0',
        '10.0.0.1/ffc0::',
        'fe80::/ffc0::',
        'fe80::/255.255.255.0',
        '::ffff:a00:2/255.255.255.0',
      ].map(compiles),
    proxyAddr: ['refused', 'refused', 'refused', 'refused', 'refused'],
  },
  {
    name: `${P} arguments trust should be invoked as trust(addr, i)`,
    run: () => calls('127.0.0.1', '192.168.0.1, 10.0.0.1'),
    proxyAddr: [
      ['127.0.0.1', 0],
      ['10.0.0.1', 1],
    ],
  },
  // ------------------------------------------------------------------ with all trusted
  {
    name: `${P} with all trusted should return socket address with no headers`,
    run: () => client(all, '127.0.0.1'),
    proxyAddr: '127.0.0.1',
  },
  {
    name: `${P} with all trusted should return header value`,
    run: () => client(all, '127.0.0.1', '10.0.0.1'),
    proxyAddr: '10.0.0.1',
  },
  {
    name: `${P} with all trusted should return furthest header value`,
    run: () => client(all, '127.0.0.1', '10.0.0.1, 10.0.0.2'),
    proxyAddr: '10.0.0.1',
  },
  // ------------------------------------------------------------------ with none trusted
  {
    name: `${P} with none trusted should return socket address with no headers`,
    run: () => client(none, '127.0.0.1'),
    proxyAddr: '127.0.0.1',
  },
  {
    name: `${P} with none trusted should return socket address with headers`,
    run: () => client(none, '127.0.0.1', '10.0.0.1, 10.0.0.2'),
    proxyAddr: '127.0.0.1',
  },
  // ------------------------------------------------------------------ with some trusted
  {
    name: `${P} with some trusted should return socket address with no headers`,
    run: () => client(trust10x, '127.0.0.1'),
    proxyAddr: '127.0.0.1',
  },
  {
    name: `${P} with some trusted should return socket address when not trusted`,
    run: () => client(trust10x, '127.0.0.1', '10.0.0.1, 10.0.0.2'),
    proxyAddr: '127.0.0.1',
  },
  {
    name: `${P} with some trusted should return header when socket trusted`,
    run: () => client(trust10x, '10.0.0.1', '192.168.0.1'),
    proxyAddr: '192.168.0.1',
  },
  {
    name: `${P} with some trusted should return first untrusted after trusted`,
    run: () => client(trust10x, '10.0.0.1', '192.168.0.1, 10.0.0.2'),
    proxyAddr: '192.168.0.1',
  },
  {
    name: `${P} with some trusted should not skip untrusted`,
    run: () => client(trust10x, '10.0.0.1', '10.0.0.3, 192.168.0.1, 10.0.0.2'),
    proxyAddr: '192.168.0.1',
  },
  // ------------------------------------------------------------------ when given array
  {
    name: `${P} when given array should accept literal IP addresses`,
    run: () => client(['10.0.0.1', '10.0.0.2'], '10.0.0.1', '192.168.0.1, 10.0.0.2'),
    proxyAddr: '192.168.0.1',
  },
  {
    name: `${P} when given array should not trust non-IP addresses`,
    run: () => client(['10.0.0.1', '10.0.0.2'], '10.0.0.1', '192.168.0.1, 10.0.0.2, localhost'),
    proxyAddr: 'localhost',
    difference: { reason: NOT_ADDRESS, jailkeeper: '10.0.0.1' },
  },
  {
    name: `${P} when given array should return socket address if none match`,
    run: () => client(['127.0.0.1', '192.168.0.100'], '10.0.0.1', '192.168.0.1, 10.0.0.2'),
    proxyAddr: '10.0.0.1',
  },
  {
    name: `${P} when given array when array empty should return socket address`,
    run: () => client([], '127.0.0.1'),
    proxyAddr: '127.0.0.1',
  },
  {
    name: `${P} when given array when array empty should return socket address with headers`,
    run: () => client([], '127.0.0.1', '10.0.0.1, 10.0.0.2'),
    proxyAddr: '127.0.0.1',
  },
  // ------------------------------------------------------------------ when given IPv4 addresses
  {
    name: `${P} when given IPv4 addresses should accept literal IP addresses`,
    run: () => client(['10.0.0.1', '10.0.0.2'], '10.0.0.1', '192.168.0.1, 10.0.0.2'),
    proxyAddr: '192.168.0.1',
  },
  {
    name: `${P} when given IPv4 addresses should accept CIDR notation`,
    run: () => hostBits(['10.0.0.2/26'], ['10.0.0.0/26'], '10.0.0.1', '192.168.0.1, 10.0.0.200'),
    proxyAddr: '10.0.0.200',
    difference: {
      reason: HOST_BITS,
      jailkeeper: 'refused, did you mean 10.0.0.0/26; written 10.0.0.0/26: 10.0.0.200',
    },
  },
  {
    name: `${P} when given IPv4 addresses should accept netmask notation`,
    run: () =>
      hostBits(
        ['10.0.0.2/255.255.255.192'],
        ['10.0.0.0/255.255.255.192'],
        '10.0.0.1',
        '192.168.0.1, 10.0.0.200',
      ),
    proxyAddr: '10.0.0.200',
    difference: {
      reason: HOST_BITS,
      jailkeeper: 'refused, did you mean 10.0.0.0/26; written 10.0.0.0/255.255.255.192: 10.0.0.200',
    },
  },
  // ------------------------------------------------------------------ when given IPv6 addresses
  {
    name: `${P} when given IPv6 addresses should accept literal IP addresses`,
    run: () => client(['fe80::1', 'fe80::2'], 'fe80::1', '2002:c000:203::1, fe80::2'),
    proxyAddr: '2002:c000:203::1',
  },
  {
    name: `${P} when given IPv6 addresses should accept CIDR notation`,
    run: () => client('fe80::/125', 'fe80::1', '2002:c000:203::1, fe80::ff00'),
    proxyAddr: 'fe80::ff00',
  },
  // ------------------------------------------------------------------ when IP versions mixed
  {
    name: `${P} when IP versions mixed should match respective versions`,
    run: () => client(['127.0.0.1', '::1'], '::1', '2002:c000:203::1'),
    proxyAddr: '2002:c000:203::1',
  },
  {
    name: `${P} when IP versions mixed should not match IPv4 to IPv6`,
    run: () => client('127.0.0.1', '::1', '2002:c000:203::1'),
    proxyAddr: '::1',
  },
  // ------------------------------------------------------------------ when IPv4-mapped IPv6 addresses
  {
    name: `${P} when IPv4-mapped IPv6 addresses should match IPv4 trust to IPv6 request`,
    run: () => client(['10.0.0.1', '10.0.0.2'], '::ffff:a00:1', '192.168.0.1, 10.0.0.2'),
    proxyAddr: '192.168.0.1',
  },
  {
    name: `${P} when IPv4-mapped IPv6 addresses should match IPv4 netmask trust to IPv6 request`,
    run: () => hostBits(['10.0.0.1/16'], ['10.0.0.0/16'], '::ffff:a00:1', '192.168.0.1, 10.0.0.2'),
    proxyAddr: '192.168.0.1',
    difference: {
      reason: HOST_BITS,
      jailkeeper: 'refused, did you mean 10.0.0.0/16; written 10.0.0.0/16: 192.168.0.1',
    },
  },
  {
    name: `${P} when IPv4-mapped IPv6 addresses should match IPv6 trust to IPv4 request`,
    run: () => client(['::ffff:a00:1', '::ffff:a00:2'], '10.0.0.1', '192.168.0.1, 10.0.0.2'),
    proxyAddr: '192.168.0.1',
  },
  {
    name: `${P} when IPv4-mapped IPv6 addresses should match CIDR notation for IPv4-mapped address`,
    run: () => hostBits(['::ffff:a00:2/122'], ['::ffff:a00:0/122'], '10.0.0.1', '192.168.0.1, 10.0.0.200'),
    proxyAddr: '10.0.0.200',
    difference: {
      reason: HOST_BITS,
      jailkeeper: 'refused, did you mean ::ffff:10.0.0.0/122; written ::ffff:a00:0/122: 10.0.0.200',
    },
  },
  {
    name: `${P} when IPv4-mapped IPv6 addresses should match CIDR notation for IPv4-mapped address mixed with IPv6 CIDR`,
    run: () =>
      hostBits(
        ['::ffff:a00:2/122', 'fe80::/125'],
        ['::ffff:a00:0/122', 'fe80::/125'],
        '10.0.0.1',
        '192.168.0.1, 10.0.0.200',
      ),
    proxyAddr: '10.0.0.200',
    difference: {
      reason: HOST_BITS,
      jailkeeper:
        'refused, did you mean ::ffff:10.0.0.0/122; written ::ffff:a00:0/122, fe80::/125: 10.0.0.200',
    },
  },
  {
    name: `${P} when IPv4-mapped IPv6 addresses should match CIDR notation for IPv4-mapped address mixed with IPv4 addresses`,
    run: () =>
      hostBits(
        ['::ffff:a00:2/122', '127.0.0.1'],
        ['::ffff:a00:0/122', '127.0.0.1'],
        '10.0.0.1',
        '192.168.0.1, 10.0.0.200',
      ),
    proxyAddr: '10.0.0.200',
    difference: {
      reason: HOST_BITS,
      jailkeeper:
        'refused, did you mean ::ffff:10.0.0.0/122; written ::ffff:a00:0/122, 127.0.0.1: 10.0.0.200',
    },
  },
  // ------------------------------------------------------------------ when given pre-defined names
  {
    name: `${P} when given pre-defined names should accept single pre-defined name`,
    run: () => client('linklocal', 'fe80::1', '2002:c000:203::1, fe80::2'),
    proxyAddr: '2002:c000:203::1',
  },
  {
    name: `${P} when given pre-defined names should accept multiple pre-defined names`,
    run: () => client(['loopback', 'linklocal'], '::1', '2002:c000:203::1, fe80::2'),
    proxyAddr: '2002:c000:203::1',
  },
  // ------------------------------------------------------------------ when header contains non-ip addresses
  {
    name: `${P} when header contains non-ip addresses should stop at first non-ip after trusted`,
    run: () => client('127.0.0.1', '127.0.0.1', 'myrouter, 127.0.0.1, proxy'),
    proxyAddr: 'proxy',
    difference: { reason: NOT_ADDRESS, jailkeeper: '127.0.0.1' },
  },
  {
    name: `${P} when header contains non-ip addresses should stop at first malformed ip after trusted`,
    run: () => client('127.0.0.1', '127.0.0.1', 'myrouter, 127.0.0.1, ::8:8:8:8:8:8:8:8:8'),
    proxyAddr: '::8:8:8:8:8:8:8:8:8',
    difference: { reason: NOT_ADDRESS, jailkeeper: '127.0.0.1' },
  },
  {
    name: `${P} when header contains non-ip addresses should provide all values to function`,
    run: () => calls('127.0.0.1', 'myrouter, 127.0.0.1, proxy'),
    proxyAddr: [
      ['127.0.0.1', 0],
      ['proxy', 1],
      ['127.0.0.1', 2],
    ],
    difference: { reason: NOT_ADDRESS, jailkeeper: [['127.0.0.1', 0]] },
  },
  // ------------------------------------------------------------------ when socket address undefined
  {
    name: `${P} when socket address undefined should return undefined as address`,
    run: () => client('127.0.0.1', undefined),
    proxyAddr: undefined,
  },
  {
    name: `${P} when socket address undefined should return undefined even with trusted headers`,
    run: () => client('127.0.0.1', undefined, '127.0.0.1, 10.0.0.1'),
    proxyAddr: undefined,
  },
  // ------------------------------------------------------------------ proxyaddr.all
  {
    name: `${A} arguments req should be required`,
    run: () => client(all, undefined),
    proxyAddr: 'throws',
    difference: { reason: API, jailkeeper: undefined },
  },
  // Without trust, all() lists every address: a predicate that trusts every hop here.
  { name: `${A} arguments trust should be optional`, run: () => compiles(undefined), proxyAddr: 'accepted' },
  {
    name: `${A} with no headers should return socket address`,
    run: () => chain(all, '127.0.0.1'),
    proxyAddr: ['127.0.0.1'],
  },
  {
    name: `${A} with x-forwarded-for header should include x-forwarded-for`,
    run: () => chain(all, '127.0.0.1', '10.0.0.1'),
    proxyAddr: ['127.0.0.1', '10.0.0.1'],
  },
  {
    name: `${A} with x-forwarded-for header should include x-forwarded-for in correct order`,
    run: () => chain(all, '127.0.0.1', '10.0.0.1, 10.0.0.2'),
    proxyAddr: ['127.0.0.1', '10.0.0.2', '10.0.0.1'],
  },
  {
    name: `${A} with trust argument should stop at first untrusted`,
    run: () => chain(listed(['127.0.0.1']), '127.0.0.1', '10.0.0.1, 10.0.0.2'),
    proxyAddr: ['127.0.0.1', '10.0.0.2'],
  },
  {
    name: `${A} with trust argument should be only socket address for no trust`,
    run: () => chain(listed([]), '127.0.0.1', '10.0.0.1, 10.0.0.2'),
    proxyAddr: ['127.0.0.1'],
  },
  // ------------------------------------------------------------------ proxyaddr.compile
  {
    name: `${C} arguments trust should be required`,
    run: () => compiles(undefined),
    proxyAddr: 'refused',
    difference: { reason: OPTIONAL, jailkeeper: 'accepted' },
  },
  { name: `${C} arguments trust should accept an array`, run: () => compiles([]), proxyAddr: 'accepted' },
  {
    name: `${C} arguments trust should accept a string`,
    run: () => compiles('127.0.0.1'),
    proxyAddr: 'accepted',
  },
  { name: `${C} arguments trust should reject a number`, run: () => compiles(42), proxyAddr: 'refused' },
  {
    name: `${C} arguments trust should accept IPv4`,
    run: () => compiles('127.0.0.1'),
    proxyAddr: 'accepted',
  },
  { name: `${C} arguments trust should accept IPv6`, run: () => compiles('::1'), proxyAddr: 'accepted' },
  {
    name: `${C} arguments trust should accept IPv4-style IPv6`,
    run: () => compiles('::ffff:127.0.0.1'),
    proxyAddr: 'accepted',
  },
  {
    name: `${C} arguments trust should accept pre-defined names`,
    run: () => compiles('loopback'),
    proxyAddr: 'accepted',
  },
  {
    name: `${C} arguments trust should accept pre-defined names in array`,
    run: () => compiles(['loopback', '10.0.0.1']),
    proxyAddr: 'accepted',
  },
  {
    name: `${C} arguments trust should reject non-IP`,
    run: () => ['blargh', '-1'].map(compiles),
    proxyAddr: ['refused', 'refused'],
  },
  {
    name: `${C} arguments trust should reject bad CIDR`,
    run: () => ['10.0.0.1/6000', '::1/6000', '::ffff:a00:2/136', '::ffff:a00:2/-46'].map(compiles),
    proxyAddr: ['refused', 'refused', 'refused', 'refused'],
  },
];

describe("proxy-addr's test cases, translated", () => {
  it('covers every case of proxy-addr 2.0 test/test.js: 68 cases, 54 agree, 14 documented differences', () => {
    assert.equal(PROXY_ADDR_CASES.length, 68);
    assert.equal(new Set(PROXY_ADDR_CASES.map((c) => c.name)).size, 68, 'no case twice');
    const differences = PROXY_ADDR_CASES.filter((c) => c.difference !== undefined);
    assert.equal(differences.length, 14);
    const count = (reason: string) => differences.filter((c) => c.difference?.reason === reason).length;
    // The table of docs/client-ip.md, "Differences from Express (proxy-addr)".
    assert.deepEqual([NOT_ADDRESS, HOST_BITS, OPTIONAL, API].map(count), [4, 6, 2, 2]);
  });

  for (const c of PROXY_ADDR_CASES) {
    if (c.difference === undefined) {
      it(`agrees: ${c.name}`, () => assert.deepEqual(c.run(), c.proxyAddr));
    } else {
      const { jailkeeper } = c.difference;
      it(`documented difference: ${c.name}`, () => {
        const outcome = c.run();
        assert.deepEqual(outcome, jailkeeper);
        assert.notDeepEqual(outcome, c.proxyAddr, 'the row is no longer a difference: mark it as agreeing');
      });
    }
  }

  it('a hop count, refused by default, is accepted with the opt-in, as Express accepts one', () => {
    assert.doesNotThrow(() =>
      resolveClientIpOptions({ trustedProxies: 42, dangerouslyTrustAllProxies: true }),
    );
  });

  it('a value that is not an address is reported once, naming the header', () => {
    const { r, warnings } = resolver('127.0.0.1');
    r.resolve('127.0.0.1', { 'x-forwarded-for': 'myrouter, 127.0.0.1, proxy' });
    assert.deepEqual(warnings, ['JK_WRN_MALFORMED_CLIENT_HEADER']);
  });
});
