import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { identify } from '../src/identity/identity.js';
import { embeddedIPv4 } from '../src/identity/ip.js';
import { createJailkeeper, createMemoryStore, type JailkeeperOptions } from '../src/index.js';
import { quietLogger } from '../src/testing/helpers.js';

// IPv6 forms that carry an IPv4 client are keyed by that client (issue 15). 198.51.100.1 is
// 0xc6336401; Teredo stores it inverted: 0x39cc9bfe.
const CLIENT = '198.51.100.1';
const SPELLINGS: ReadonlyArray<readonly [string, string]> = [
  ['IPv4', '198.51.100.1'],
  ['IPv4-mapped', '::ffff:198.51.100.1'],
  ['IPv4-mapped, hex', '::ffff:c633:6401'],
  ['IPv4-compatible', '::198.51.100.1'],
  ['IPv4-compatible, hex', '::c633:6401'],
  ['IPv4-compatible, written out', '0:0:0:0:0:0:c633:6401'],
  ['SIIT', '::ffff:0:198.51.100.1'],
  ['SIIT, hex', '::ffff:0:c633:6401'],
  ['NAT64', '64:ff9b::198.51.100.1'],
  ['NAT64, hex, upper case', '64:FF9B::C633:6401'],
  ['NAT64, written out', '0064:ff9b:0000:0000:0000:0000:c633:6401'],
  ['Teredo', '2001:0:4136:e378:8000:63bf:39cc:9bfe'],
  ['Teredo, another server, flags and port', '2001:0:5ef5:79fd:0:1234:39cc:9bfe'],
  ['6to4', '2002:c633:6401::1'],
  ['6to4, another subnet of the site', '2002:c633:6401:ffff::2'],
  ['6to4, another host', '2002:c633:6401:1234:5678:9abc:def0:1'],
];

describe('IPv6 forms carrying an IPv4 client are keyed by it', () => {
  for (const [name, spelling] of SPELLINGS) {
    it(`${name}: ${spelling} -> ${CLIENT}`, () => {
      assert.equal(identify(spelling, 64)?.key, CLIENT);
      // Whatever the grouping: the IPv4 client is one client, as IPv4 is never grouped.
      assert.equal(identify(spelling, 128)?.key, CLIENT);
      assert.equal(identify(spelling, 48)?.key, CLIENT);
    });
  }

  it('keeps the address the connection came from as the ip, for logs', () => {
    assert.deepEqual(identify('64:ff9b::198.51.100.1', 64), { ip: '64:ff9b::c633:6401', key: CLIENT });
    assert.deepEqual(identify('::c633:6401', 64), { ip: '::c633:6401', key: CLIENT });
  });

  it('gives each IPv4 client behind a NAT64 front its own key (it was one /64 for all)', () => {
    assert.equal(identify('64:ff9b::203.0.113.5', 64)?.key, '203.0.113.5');
    assert.equal(identify('64:ff9b::203.0.113.6', 64)?.key, '203.0.113.6');
  });

  it('reads the Teredo client, not the server: the RFC 4380 example is 192.0.2.45', () => {
    assert.equal(identify('2001:0:4136:e378:8000:63bf:3fff:fdd2', 64)?.key, '192.0.2.45');
  });

  it('leaves :: and ::1, other ::/96 addresses of 0.0.0.0/8, and ordinary IPv6 grouped by prefix', () => {
    assert.equal(identify('::1', 64)?.key, '::/64');
    assert.equal(identify('::', 64)?.key, '::/64');
    assert.equal(identify('::ff', 64)?.key, '::/64');
    assert.equal(identify('::ff:ffff', 64)?.key, '::/64');
    assert.equal(identify('::1', 128)?.key, '::1');
    assert.equal(identify('2001:db8::198.51.100.1', 64)?.key, '2001:db8::/64');
    // Near misses of each range stay IPv6.
    assert.equal(identify('64:ff9b:1::c633:6401', 64)?.key, '64:ff9b:1::/64');
    assert.equal(identify('64:ff9b::1:0:c633:6401', 64)?.key, '64:ff9b::/64');
    assert.equal(identify('2001:1::c633:6401', 64)?.key, '2001:1::/64');
    assert.equal(identify('2003:c633:6401::1', 64)?.key, '2003:c633:6401::/64');
    assert.equal(identify('::1:ffff:0:c633:6401', 64)?.key, '0:0:0:1::/64');
  });

  it('reads a client key an operator writes: a 6to4 /64 is its IPv4 client, others stay as written', () => {
    assert.equal(identify('2002:c633:6401:7::/64', 64)?.key, CLIENT);
    // A key stored before this change (every NAT64 client shared it) can still be unbanned.
    assert.equal(identify('64:ff9b::/64', 64)?.key, '64:ff9b::/64');
    assert.equal(identify('2001:0:4136:e378::/64', 64)?.key, '2001:0:4136:e378::/64');
    assert.equal(identify('2001:db8:1:2::/64', 64)?.key, '2001:db8:1:2::/64');
  });

  it('embeddedIPv4 takes only the bits a prefix holds', () => {
    const words = [0x2002, 0xc633, 0x6401, 0, 0, 0, 0, 0];
    assert.equal(embeddedIPv4(words, 48), 0xc6336401);
    assert.equal(embeddedIPv4(words, 47), undefined);
    assert.equal(embeddedIPv4([0x64, 0xff9b, 0, 0, 0, 0, 0xc633, 0x6401], 96), undefined);
  });
});

describe('the keeper agrees on the embedded client everywhere', () => {
  const jails = {
    login: { statuses: [401], paths: ['/login'], maxRetry: 3, banTime: '1h' },
  } satisfies JailkeeperOptions['jails'];
  const make = (extra = {}) =>
    createJailkeeper({ jails, store: createMemoryStore(), logger: quietLogger, ...extra });
  const fail = (keeper: ReturnType<typeof make>, client: string) =>
    keeper.observe({ client, method: 'POST', route: '/login', path: '/login', status: 401 });

  it('an attacker rotating through spellings of one address is one client, banned at maxRetry', async () => {
    const keeper = make();
    const results = [];
    for (const spelling of ['64:ff9b::c633:6401', '2001:0:4136:e378:8000:63bf:39cc:9bfe', '::c633:6401']) {
      results.push(await fail(keeper, spelling));
    }
    assert.deepEqual(
      results.map((r) => r.jails.map((j) => j.action)),
      [['counted'], ['counted'], ['banned']],
    );
    for (const [, spelling] of SPELLINGS) assert.equal(keeper.check(spelling).banned, true, spelling);
    // Its neighbours are other clients.
    assert.equal(keeper.check('64:ff9b::c633:6402').banned, false);
    assert.equal(keeper.check('2002:c633:6402::1').banned, false);
    await keeper.close();
  });

  it('an operator who bans ::c633:6401 bans 198.51.100.1, and unbans it by any spelling', async () => {
    const keeper = make();
    const ban = await keeper.ban('::c633:6401', { jail: 'login' });
    assert.equal(ban.client, CLIENT);
    assert.equal(keeper.check(CLIENT).banned, true);
    assert.equal(keeper.check('2002:c633:6401:5::9').banned, true);
    assert.deepEqual(
      (await keeper.bans()).map((b) => b.client),
      [CLIENT],
    );
    const lifted = await keeper.unban('64:ff9b::198.51.100.1');
    assert.deepEqual(
      lifted.map((b) => b.client),
      [CLIENT],
    );
    assert.equal(keeper.check('::ffff:0:c633:6401').banned, false);
    await keeper.close();
  });

  it('an ignored IPv4 address is ignored in every form that carries it, and cannot be banned in one', async () => {
    const keeper = make({ ignoreIp: ['198.51.100.0/24'] });
    for (const [, spelling] of SPELLINGS) assert.equal(keeper.ignore.has(spelling), true, spelling);
    assert.equal(keeper.ignore.has('64:ff9b::c733:6401'), false);
    const result = await fail(keeper, '2001:0:4136:e378:8000:63bf:39cc:9bfe');
    assert.deepEqual(
      result.jails.map((j) => j.action),
      ['ignored'],
    );
    await assert.rejects(keeper.ban('64:ff9b::c633:6401'), { code: 'JK_ERR_IGNORED_CLIENT' });
    await keeper.close();
  });

  it('resolves a socket peer or a trusted proxy header to the embedded client', async () => {
    const keeper = make({ trustedProxies: ['loopback'] });
    assert.deepEqual(keeper.resolve('64:ff9b::c633:6401', {}), {
      ip: '64:ff9b::c633:6401',
      key: CLIENT,
      viaProxy: false,
    });
    assert.equal(keeper.resolve('127.0.0.1', { 'x-forwarded-for': '2002:c633:6401::1' })?.key, CLIENT);
    await keeper.close();
  });
});
