import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { identify } from '../src/identity/identity.js';
import { canonicalIp, parseCidr } from '../src/identity/ip.js';
import { IpSet, parseNetworkEntry } from '../src/identity/ip-set.js';

describe('canonicalIp', () => {
  const cases: Array<[string, string | undefined]> = [
    ['1.2.3.4', '1.2.3.4'],
    ['::ffff:1.2.3.4', '1.2.3.4'],
    ['::FFFF:1.2.3.4', '1.2.3.4'],
    ['::ffff:102:304', '1.2.3.4'],
    ['0:0:0:0:0:ffff:0102:0304', '1.2.3.4'],
    ['2001:db8::1.2.3.4', '2001:db8::102:304'],
    ['64:ff9b::1.2.3.4', '64:ff9b::102:304'],
    ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['::1', '::1'],
    // Ambiguous or not one address: never a key.
    ['010.1.1.1', undefined],
    ['0x7f.0.0.1', undefined],
    ['2130706433', undefined],
    ['127.1', undefined],
    ['1.2.3.4.5', undefined],
    ['256.1.1.1', undefined],
    ['1.2.3.4:80', undefined],
    ['[::1]', undefined],
    ['unknown', undefined],
    ['_hidden', undefined],
    ['__proto__', undefined],
    ['', undefined],
    ['::ffff:010.1.1.1', undefined],
    ['fe80::1%eth0/../x', undefined],
    ['１.２.３.４', undefined],
    ['1.2.3.4 ', undefined],
  ];
  for (const [input, expected] of cases) {
    it(`${JSON.stringify(input)} -> ${expected}`, () => assert.equal(canonicalIp(input), expected));
  }
});

describe('identify', () => {
  it('groups IPv6 by the configured prefix', () => {
    assert.deepEqual(identify('2001:db8:1:2:aaaa::1', 64), {
      ip: '2001:db8:1:2:aaaa::1',
      key: '2001:db8:1:2::/64',
    });
    assert.equal(identify('2001:db8:1:2:ffff:ffff:ffff:ffff', 64)?.key, '2001:db8:1:2::/64');
    assert.equal(identify('2001:db8:1:3::1', 64)?.key, '2001:db8:1:3::/64');
    assert.equal(identify('2001:db8:1:2::1', 128)?.key, '2001:db8:1:2::1');
    assert.equal(identify('2001:db8:1:2::/64', 64)?.key, '2001:db8:1:2::/64');
    assert.equal(identify('2001:db8:1:2::/48', 64), undefined);
  });
  it('never groups IPv4, mapped or not', () => {
    assert.deepEqual(identify('::ffff:10.0.0.1', 64), { ip: '10.0.0.1', key: '10.0.0.1' });
  });
});

describe('parseCidr', () => {
  it('accepts networks and hosts', () => {
    assert.deepEqual(parseCidr('10.0.0.0/8'), { family: 4, value: 0x0a000000, prefix: 8 });
    assert.deepEqual(parseCidr('10.1.2.3'), { family: 4, value: 0x0a010203, prefix: 32 });
    assert.equal(typeof parseCidr('2001:db8::/32'), 'object');
    assert.deepEqual(parseCidr('::ffff:10.0.0.0/104'), { family: 4, value: 0x0a000000, prefix: 8 });
  });
  it('rejects host bits, bad prefixes and non-addresses with a reason', () => {
    assert.match(parseCidr('10.0.0.1/8') as string, /host bits/);
    assert.match(parseCidr('10.0.0.0/33') as string, /over 32/);
    assert.match(parseCidr('10.0.0.0/x') as string, /not a number/);
    assert.match(parseCidr('example.com') as string, /not an IPv4/);
  });
  it('reads an IPv4 netmask as proxy-addr does, and refuses what proxy-addr refuses', () => {
    assert.deepEqual(parseCidr('10.0.0.0/255.255.255.192'), parseCidr('10.0.0.0/26'));
    assert.deepEqual(parseCidr('10.0.0.0/255.0.0.0'), parseCidr('10.0.0.0/8'));
    assert.deepEqual(parseCidr('10.0.0.7/255.255.255.255'), parseCidr('10.0.0.7'));
    assert.deepEqual(parseCidr('0.0.0.0/0.0.0.0'), { family: 4, value: 0, prefix: 0 });
    assert.equal(
      parseCidr('10.0.0.2/255.255.255.192'),
      'host bits are set after /26 (the netmask 255.255.255.192) (did you mean 10.0.0.0/26?)',
    );
    assert.match(parseCidr('10.0.0.0/255.0.255.0') as string, /not an IPv4 netmask/);
    // Loose IPv4 spellings are as ambiguous in a netmask as in an address.
    assert.match(parseCidr('10.0.0.0/255.255.255.0300') as string, /not an IPv4 netmask/);
    assert.match(parseCidr('10.0.0.0/0xffffff00') as string, /not a number/);
    // proxy-addr takes a netmask only after a plain IPv4 address: the message shows the prefix to write.
    assert.equal(
      parseCidr('fe80::/ffc0::'),
      'a netmask is accepted only after an IPv4 address (write fe80::/10)',
    );
    assert.match(parseCidr('fe80::/255.255.255.0') as string, /only after an IPv4 address/);
    assert.match(parseCidr('::ffff:a00:2/255.255.255.0') as string, /only after an IPv4 address/);
    assert.match(parseCidr('10.0.0.1/ffc0::') as string, /not an IPv4 netmask/);
  });
  it('names the mapped network to write for a mapped CIDR with host bits', () => {
    assert.match(parseCidr('::ffff:a00:2/122') as string, /did you mean ::ffff:10\.0\.0\.0\/122\?/);
  });
});

describe('IpSet', () => {
  const set = new IpSet(
    ['127.0.0.0/8', '192.168.1.7', '2001:db8::/32', 'fe80::1']
      .map((t) => parseCidr(t))
      .filter((c) => typeof c !== 'string'),
  );
  it('matches by prefix, both families', () => {
    assert.equal(set.hasText('127.9.9.9'), true);
    assert.equal(set.hasText('::ffff:127.0.0.1'), true);
    assert.equal(set.hasText('192.168.1.7'), true);
    assert.equal(set.hasText('192.168.1.8'), false);
    assert.equal(set.hasText('2001:db8:ffff::1'), true);
    assert.equal(set.hasText('2001:db9::1'), false);
    assert.equal(set.hasText('fe80::1'), true);
    assert.equal(set.hasText('fe80::2'), false);
    assert.equal(set.hasText('not-an-ip'), false);
  });
  it('covers a client prefix only when a network holds all of it', () => {
    assert.equal(set.covers(parseCidr('2001:db8:1:2::/64') as never), true);
    assert.equal(set.covers(parseCidr('fe80::/64') as never), false);
  });
  it('adds and removes at runtime', () => {
    const s = new IpSet();
    const [net] = parseNetworkEntry('10.0.0.0/8') as never[];
    assert.equal(s.add(net as never), true);
    assert.equal(s.add(net as never), false);
    assert.equal(s.hasText('10.1.1.1'), true);
    assert.deepEqual(s.list(), ['10.0.0.0/8']);
    assert.equal(s.remove(net as never), true);
    assert.equal(s.hasText('10.1.1.1'), false);
  });
  it('expands named ranges', () => {
    assert.deepEqual((parseNetworkEntry('loopback') as never[]).length, 2, 'loopback is 127.0.0.0/8 and ::1');
  });
});
