import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { SPOOFING_MATRIX, TRUST } from '../../../test/spoofing-matrix.js';
import { createJailkeeper } from '../src/engine/keeper.js';
import { type JailkeeperConfigError, Warner, type WarningCode } from '../src/errors.js';
import { type ClientIpOptions, ClientResolver, resolveClientIpOptions } from '../src/identity/client-ip.js';
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
