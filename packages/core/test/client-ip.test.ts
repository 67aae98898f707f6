import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { createConnection, createServer, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { SPOOFING_MATRIX, TRUST } from '../../../test/spoofing-matrix.js';
import { requireKeeper } from '../src/adapter/admission.js';
import { createJailkeeper } from '../src/engine/keeper.js';
import { type JailkeeperConfigError, Warner, type WarningCode } from '../src/errors.js';
import {
  type ClientIpOptions,
  ClientResolver,
  type ProxyTrust,
  resolveClientIpOptions,
} from '../src/identity/client-ip.js';
import { canonicalIp } from '../src/identity/ip.js';

function resolver(options: ClientIpOptions, ipv6Subnet = 64) {
  const warnings: WarningCode[] = [];
  const warner = new Warner({
    info() {},
    error() {},
    warn: (o: { code?: WarningCode }) => warnings.push(o.code as WarningCode),
  });
  return { r: new ClientResolver(resolveClientIpOptions(options), ipv6Subnet, warner), warnings };
}

describe('the spoofing matrix', () => {
  it('has at least 150 rows', () =>
    assert.ok(SPOOFING_MATRIX.length >= 150, `${SPOOFING_MATRIX.length} rows`));

  for (const row of SPOOFING_MATRIX) {
    it(row.name, () => {
      const { r } = resolver({ trustedProxies: [...TRUST[row.trust]], clientIpHeader: row.header });
      const id = r.resolve(row.peer, row.headers);
      assert.equal(id?.ip, row.ip);
      assert.equal(id?.viaProxy, row.viaProxy);
    });
  }

  it('no untrusted peer ever changes its identity', () => {
    for (const row of SPOOFING_MATRIX.filter((x) => !x.viaProxy)) {
      assert.equal(row.ip, canonicalIp(row.peer), row.name);
    }
  });
});

describe('trustedProxies', () => {
  const unsafe: Array<[string, ClientIpOptions['trustedProxies']]> = [
    ['true', true],
    ['"*"', '*'],
    ['["*"]', ['*']],
    ['0.0.0.0/0', ['0.0.0.0/0']],
    ['::/0', ['::/0']],
    ['a hop count', 2],
  ];
  for (const [label, trustedProxies] of unsafe) {
    it(`refuses ${label} without the opt-in`, () => {
      assert.throws(
        () => resolveClientIpOptions({ trustedProxies }),
        (e: JailkeeperConfigError) => e.code === 'JK_ERR_UNSAFE_TRUST' && e.option === 'trustedProxies',
      );
    });
  }

  it('refuses a hop count written as a string, and bad entries', () => {
    assert.throws(
      () => resolveClientIpOptions({ trustedProxies: ['1'] }),
      (e: JailkeeperConfigError) => e.code === 'JK_ERR_INVALID_OPTION',
    );
    assert.throws(
      () => resolveClientIpOptions({ trustedProxies: ['proxy.internal'] }),
      (e: JailkeeperConfigError) => e.code === 'JK_ERR_INVALID_CIDR',
    );
    assert.throws(
      () => resolveClientIpOptions({ clientIpHeader: 'cf-connecting-ip' as never }),
      (e: JailkeeperConfigError) => e.option === 'clientIpHeader',
    );
  });

  it('with dangerouslyTrustAllProxies, true takes the furthest address and a hop count takes the nth', () => {
    const all = resolver({ trustedProxies: true, dangerouslyTrustAllProxies: true }).r;
    assert.equal(all.resolve('203.0.113.9', { 'x-forwarded-for': '6.6.6.6, 7.7.7.7' })?.ip, '6.6.6.6');
    const hops = resolver({ trustedProxies: 2, dangerouslyTrustAllProxies: true }).r;
    assert.equal(
      hops.resolve('203.0.113.9', { 'x-forwarded-for': '6.6.6.6, 7.7.7.7, 8.8.8.8' })?.ip,
      '7.7.7.7',
    );
  });

  it('reads a predicate’s result as proxy-addr does: truthy trusts', () => {
    const results: unknown[] = [true, 1, 'yes', {}, [], false, 0, '', null, undefined, Number.NaN];
    const seen = results.map((result) => {
      const { r } = resolver({ trustedProxies: (address) => (address === '10.0.0.1' ? result : false) });
      return r.resolve('10.0.0.1', { 'x-forwarded-for': '198.51.100.7' })?.ip;
    });
    assert.deepEqual(seen, [...Array(5).fill('198.51.100.7'), ...Array(6).fill('10.0.0.1')]);
  });

  it('the warning names what refused the peer: the list, or the predicate and what it returned', () => {
    const messages = (options: ClientIpOptions) => {
      const texts: string[] = [];
      const warner = new Warner({
        info() {},
        error() {},
        warn: (_o: object, msg?: string) => texts.push(msg ?? ''),
      });
      const r = new ClientResolver(resolveClientIpOptions(options), 64, warner);
      r.resolve('203.0.113.9', { 'x-forwarded-for': '1.1.1.1' });
      return texts.join('\n');
    };
    assert.match(
      messages({ trustedProxies: ['10.0.0.1'] }),
      /203\.0\.113\.9, which is not in trustedProxies/,
    );
    const predicate = messages({ trustedProxies: () => 0 });
    assert.match(predicate, /for which the trustedProxies predicate returned 0/);
    assert.doesNotMatch(predicate, /not in trustedProxies/);
    assert.match(messages({ trustedProxies: () => undefined }), /returned undefined/);
    const thrown = messages({
      trustedProxies: () => {
        throw new Error('lookup failed');
      },
    });
    assert.match(thrown, /predicate threw on 203\.0\.113\.9 \(hop 0\): lookup failed/);
    assert.match(thrown, /on which the trustedProxies predicate threw/);
  });

  it('a predicate that throws deep in the chain is reported once; that hop is the client', () => {
    const { r, warnings } = resolver({
      trustedProxies: (address) => {
        if (address === '10.0.0.2') throw new Error('bug');
        return address.startsWith('10.');
      },
    });
    const headers = { 'x-forwarded-for': '198.51.100.7, 10.0.0.2, 10.0.0.3' };
    assert.equal(r.resolve('10.0.0.1', headers)?.ip, '10.0.0.2');
    assert.equal(r.resolve('10.0.0.1', headers)?.ip, '10.0.0.2');
    assert.deepEqual(warnings, ['JK_WRN_TRUST_FUNCTION_THREW']);
  });

  it('takes a predicate, and a predicate that throws trusts nobody', () => {
    const { r } = resolver({ trustedProxies: (address) => address === '10.0.0.1' });
    assert.equal(r.resolve('10.0.0.1', { 'x-forwarded-for': '198.51.100.7' })?.ip, '198.51.100.7');
    assert.equal(r.resolve('10.0.0.2', { 'x-forwarded-for': '198.51.100.7' })?.ip, '10.0.0.2');
    const broken = resolver({
      trustedProxies: () => {
        throw new Error('bug');
      },
    }).r;
    assert.equal(broken.resolve('10.0.0.1', { 'x-forwarded-for': '198.51.100.7' })?.ip, '10.0.0.1');
  });
});

describe("trustedProxies: 'express'", () => {
  /** A trust function as Express compiles one, recording what it is asked. */
  const recording = (decide: (address: string) => boolean) => {
    const asked: Array<[string, number]> = [];
    const fn = (address: string, hop: number) => {
      asked.push([address, hop]);
      return decide(address);
    };
    return { fn, asked };
  };

  it('needs the app’s trust function on every call: without it, a coded error', () => {
    const { r } = resolver({ trustedProxies: 'express' });
    assert.throws(
      () => r.resolve('127.0.0.1', {}),
      (e: JailkeeperConfigError) => e.code === 'JK_ERR_EXPRESS_TRUST' && e.option === 'trustedProxies',
    );
  });

  it('asks it with the text proxy-addr gives it: the raw peer, then the entries trimmed of spaces', () => {
    const { r } = resolver({ trustedProxies: 'express' });
    const { fn, asked } = recording((a) => a === '::ffff:10.0.0.1' || a === '10.0.0.2:8080');
    const id = r.resolve(
      '::ffff:10.0.0.1',
      { 'x-forwarded-for': '198.51.100.7 ,  10.0.0.2:8080 ' },
      undefined,
      fn,
    );
    assert.deepEqual(asked, [
      ['::ffff:10.0.0.1', 0],
      ['10.0.0.2:8080', 1],
    ]);
    assert.deepEqual(id, { ip: '198.51.100.7', key: '198.51.100.7', viaProxy: true });
  });

  it('skips empty entries, as Express does, and never asks about the furthest', () => {
    const { r } = resolver({ trustedProxies: 'express' });
    const { fn, asked } = recording(() => true);
    assert.equal(
      r.resolve('127.0.0.1', { 'x-forwarded-for': ', 198.51.100.7,, , 10.0.0.2,' }, undefined, fn)?.ip,
      '198.51.100.7',
    );
    assert.deepEqual(asked, [
      ['127.0.0.1', 0],
      ['10.0.0.2', 1],
    ]);
    assert.equal(r.resolve('127.0.0.1', { 'x-forwarded-for': ' , ,' }, undefined, fn)?.ip, '127.0.0.1');
  });

  it('reads only X-Forwarded-For, and an untrusted peer’s headers never', () => {
    const { r, warnings } = resolver({ trustedProxies: 'express' });
    const trustLoopback = (a: string) => a === '127.0.0.1';
    const forged = { 'x-forwarded-for': '127.0.0.1', 'x-real-ip': '127.0.0.1', forwarded: 'for=127.0.0.1' };
    assert.equal(r.resolve('203.0.113.9', forged, undefined, trustLoopback)?.ip, '203.0.113.9');
    assert.equal(
      r.resolve('127.0.0.1', { 'x-real-ip': '198.51.100.7' }, undefined, trustLoopback)?.ip,
      '127.0.0.1',
    );
    assert.deepEqual(warnings, ['JK_WRN_UNTRUSTED_FORWARDED']);
  });

  it('the keeper refuses an adapter that cannot supply it, and a guard without it, at setup', async () => {
    const keeper = createJailkeeper({ jails: { login: { statuses: [401] } }, trustedProxies: 'express' });
    assert.throws(
      () => requireKeeper(keeper, 'another adapter'),
      (e: JailkeeperConfigError) => e.code === 'JK_ERR_EXPRESS_TRUST',
    );
    assert.equal(requireKeeper(keeper, 'express', { expressTrust: true }), keeper);
    const server = createHttpServer();
    assert.throws(
      () => keeper.guard(server),
      (e: JailkeeperConfigError) => e.code === 'JK_ERR_EXPRESS_TRUST',
    );
    const unguard = keeper.guard(server, { trust: () => false });
    unguard();
    await keeper.close();
  });
});

describe('bypass: trust never reaches further than configured', () => {
  const FORGED: Array<Record<string, string>> = [
    { 'x-forwarded-for': '127.0.0.1' },
    { 'x-forwarded-for': '10.0.0.1, 127.0.0.1' },
    { 'x-real-ip': '127.0.0.1' },
    { forwarded: 'for=127.0.0.1' },
    { 'x-forwarded-for': '192.168.0.1', 'x-real-ip': '10.0.0.1', forwarded: 'for="[::1]"' },
  ];
  const SETTINGS: Array<[string, ClientIpOptions, ProxyTrust | undefined]> = [
    ['a list', { trustedProxies: ['10.0.0.1'] }, undefined],
    ['uniquelocal', { trustedProxies: 'uniquelocal' }, undefined],
    ['private', { trustedProxies: ['private'] }, undefined],
    ['a netmask', { trustedProxies: ['10.0.0.0/255.255.255.192'] }, undefined],
    ['a truthy predicate', { trustedProxies: (a) => (a.startsWith('10.') ? 1 : 0) }, undefined],
    ['the Express app’s function', { trustedProxies: 'express' }, (a) => /^10\./.test(a)],
  ];
  // Strangers: public addresses, and private ones just outside every trusted network.
  const STRANGERS = [
    '203.0.113.9',
    '::ffff:203.0.113.9',
    '2001:db8::9',
    '172.32.0.1',
    '100.64.0.1',
    '11.0.0.1',
  ];
  for (const [label, options, appTrust] of SETTINGS) {
    for (const header of ['x-forwarded-for', 'forwarded', 'x-real-ip'] as const) {
      if (options.trustedProxies === 'express' && header !== 'x-forwarded-for') continue;
      it(`${label}, reading ${header}: a stranger’s forged header is never believed`, () => {
        const { r } = resolver({ ...options, clientIpHeader: header });
        for (const peer of STRANGERS) {
          for (const headers of FORGED) {
            const id = r.resolve(peer, headers, undefined, appTrust);
            assert.equal(id?.ip, canonicalIp(peer), `${peer} ${JSON.stringify(headers)}`);
            assert.equal(id?.viaProxy, false);
          }
        }
      });
    }
  }

  it('a netmask trusts no neighbour of its network', () => {
    const { r } = resolver({ trustedProxies: ['10.0.0.0/255.255.255.192'] });
    const headers = { 'x-forwarded-for': '198.51.100.7' };
    assert.equal(r.resolve('10.0.0.63', headers)?.ip, '198.51.100.7');
    for (const peer of ['10.0.0.64', '10.0.0.128', '10.0.1.0', '9.255.255.255', '::ffff:10.0.0.64']) {
      assert.equal(r.resolve(peer, headers)?.ip, canonicalIp(peer), peer);
    }
  });

  it('behind uniquelocal, the stranger on the left of a trusted chain is the client, however it writes', () => {
    const { r } = resolver({ trustedProxies: 'uniquelocal' });
    const id = r.resolve('10.1.2.3', { 'x-forwarded-for': '10.9.9.9, 198.51.100.7, 192.168.1.1' });
    assert.equal(id?.ip, '198.51.100.7');
  });
});

describe('IPv6 grouping', () => {
  it('10,000 addresses inside one /64 are one client; the neighbouring /64 is another', () => {
    const { r } = resolver({});
    const keys = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const words = Array.from({ length: 4 }, () => Math.floor(Math.random() * 65536).toString(16));
      keys.add(r.resolve(`2001:db8:aa:bb:${words.join(':')}`, {})?.key as string);
    }
    assert.deepEqual([...keys], ['2001:db8:aa:bb::/64']);
    assert.equal(r.resolve('2001:db8:aa:bc::1', {})?.key, '2001:db8:aa:bc::/64');
  });

  it('groups by the configured prefix, and warns outside 48 to 64', () => {
    const { r, warnings } = resolver({}, 56);
    assert.equal(r.resolve('2001:db8:aa:bbff::1', {})?.key, '2001:db8:aa:bb00::/56');
    assert.deepEqual(warnings, []);
    assert.deepEqual(resolver({}, 128).warnings, ['JK_WRN_IPV6_SUBNET']);
  });
});

describe('dual-stack listener', () => {
  it('10,000 random IPv4 clients give 10,000 distinct identities', async () => {
    const { r } = resolver({});
    const server = createServer();
    const keys = new Set<string>();
    const sockets: Socket[] = [];
    server.on('connection', (socket) => {
      const id = r.resolve(socket.remoteAddress, {});
      if (id) keys.add(id.key);
      socket.destroy();
    });
    server.listen(0, '::');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    const addresses = new Set<string>();
    while (addresses.size < 10_000) {
      addresses.add(
        `127.${1 + Math.floor(Math.random() * 254)}.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 254)}`,
      );
    }
    const list = [...addresses];
    for (let i = 0; i < list.length; i += 200) {
      await Promise.all(
        list.slice(i, i + 200).map(
          (localAddress) =>
            new Promise<void>((resolve) => {
              const socket = createConnection({ host: '127.0.0.1', port, localAddress }, () => undefined);
              sockets.push(socket);
              socket.on('close', () => resolve());
              socket.on('error', () => resolve());
            }),
        ),
      );
    }
    server.close();
    assert.equal(keys.size, 10_000);
    assert.ok(
      [...keys].every((k) => !k.startsWith('::ffff:')),
      'mapped addresses are unwrapped',
    );
  });
});

describe('runtime checks warn once', () => {
  it('a forwarding header while no proxy is trusted', () => {
    const { r, warnings } = resolver({});
    assert.equal(r.resolve('203.0.113.9', { 'x-forwarded-for': '1.1.1.1' })?.ip, '203.0.113.9');
    r.resolve('203.0.113.9', { 'x-forwarded-for': '1.1.1.1' });
    assert.deepEqual(warnings, ['JK_WRN_FORWARDED_NO_TRUST']);
  });

  it('a forwarding header from a peer that is not trusted', () => {
    const { r, warnings } = resolver({ trustedProxies: ['10.0.0.1'] });
    r.resolve('203.0.113.9', { 'x-real-ip': '1.1.1.1' });
    r.resolve('203.0.113.9', { 'x-real-ip': '1.1.1.1' });
    assert.deepEqual(warnings, ['JK_WRN_UNTRUSTED_FORWARDED']);
  });

  it('a Forwarded header while another header is configured', () => {
    const { r, warnings } = resolver({ trustedProxies: ['loopback'] });
    assert.equal(r.resolve('127.0.0.1', { forwarded: 'for=1.1.1.1' })?.ip, '127.0.0.1');
    assert.deepEqual(warnings, ['JK_WRN_FORWARDED_HEADER_MISMATCH']);
  });

  it('every request from the same private peer with no proxy trusted', () => {
    const { r, warnings } = resolver({});
    for (let i = 0; i < 150; i++) r.resolve('10.1.2.3', {});
    assert.deepEqual(warnings, ['JK_WRN_SINGLE_PRIVATE_PEER']);
    const mixed = resolver({});
    for (let i = 0; i < 150; i++) mixed.r.resolve(i % 2 ? '10.1.2.3' : '203.0.113.9', {});
    assert.deepEqual(mixed.warnings, []);
  });

  it('a malformed header from a trusted proxy', () => {
    const { r, warnings } = resolver({ trustedProxies: ['loopback'] });
    r.resolve('127.0.0.1', { 'x-forwarded-for': 'unknown' });
    r.resolve('127.0.0.1', { 'x-forwarded-for': '_hidden' });
    assert.deepEqual(warnings, ['JK_WRN_MALFORMED_CLIENT_HEADER']);
  });
});

describe('getClientIp', () => {
  it('is validated and canonicalised; a bad value falls back to the peer', () => {
    const { r, warnings } = resolver({ getClientIp: (req) => (req as { ip: string }).ip });
    assert.equal(r.resolve('10.0.0.1', {}, { ip: '::FFFF:198.51.100.7' })?.ip, '198.51.100.7');
    assert.equal(r.resolve('10.0.0.1', {}, { ip: 'not an ip' })?.ip, '10.0.0.1');
    assert.equal(r.resolve('10.0.0.1', {}, { ip: '__proto__' })?.ip, '10.0.0.1');
    assert.deepEqual(warnings, ['JK_WRN_CUSTOM_CLIENT_IP']);
  });
});

describe('the keeper matches ignoreIp and bans on the resolved identity', () => {
  it('X-Forwarded-For: 127.0.0.1 from a stranger never reaches an ignore list that holds loopback', async () => {
    const keeper = createJailkeeper({
      jails: { login: { statuses: [401], maxRetry: 2 } },
      ignoreIp: ['loopback'],
      logger: { info() {}, warn() {}, error() {} },
    });
    const headers = { 'x-forwarded-for': '127.0.0.1', 'x-real-ip': '127.0.0.1', forwarded: 'for=127.0.0.1' };
    for (let i = 0; i < 2; i++) {
      const client = keeper.resolve('203.0.113.9', headers);
      assert.ok(client);
      await keeper.observe({ client, method: 'POST', route: '/login', path: '/login', status: 401 });
    }
    assert.equal(keeper.check(keeper.resolve('203.0.113.9', headers) as never).banned, true);
    await keeper.close();
  });

  it('behind a trusted proxy, a spoofed left entry neither frees the attacker nor bans the proxy', async () => {
    const keeper = createJailkeeper({
      jails: { login: { statuses: [401], maxRetry: 2 } },
      trustedProxies: ['loopback'],
      ignoreIp: ['192.0.2.0/24'],
    });
    for (let i = 0; i < 2; i++) {
      const client = keeper.resolve('127.0.0.1', {
        'x-forwarded-for': `192.0.2.1, 198.51.100.${i === 0 ? 7 : 7}`,
      });
      assert.ok(client);
      await keeper.observe({ client, method: 'POST', route: '/login', path: '/login', status: 401 });
    }
    assert.equal(
      keeper.check(keeper.resolve('127.0.0.1', { 'x-forwarded-for': '198.51.100.7' }) as never).banned,
      true,
    );
    assert.equal(
      keeper.check(keeper.resolve('127.0.0.1', {}) as never).banned,
      false,
      'the proxy is not banned',
    );
    await keeper.close();
  });
});
