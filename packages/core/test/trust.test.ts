import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JailkeeperConfigError } from '../src/errors.js';
import { canonicalNetworks, NAMED_RANGES, parseNetworkEntry } from '../src/identity/ip-set.js';
import { compileTrust, type Trust } from '../src/identity/trust.js';

const trusted = (trust: Trust, address: string): boolean => {
  assert.equal(trust.kind, 'networks');
  return trust.kind === 'networks' && trust.set.hasText(address);
};
const compile = (value: unknown, dangerous = false) => compileTrust(value, dangerous, 'x-forwarded-for');
const refusedWith = (code: string) => (e: JailkeeperConfigError) =>
  e.code === code && e.option.startsWith('trustedProxies');

describe('named ranges mean what they mean in proxy-addr', () => {
  // proxy-addr 2.0's IP_RANGES, written as networks (its loopback is spelt 127.0.0.1/8).
  const PROXY_ADDR: Record<string, string[]> = {
    linklocal: ['169.254.0.0/16', 'fe80::/10'],
    loopback: ['127.0.0.0/8', '::1'],
    uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
  };
  for (const [name, networks] of Object.entries(PROXY_ADDR)) {
    it(`${name} is ${networks.join(', ')}`, () => assert.deepEqual(canonicalNetworks(name), networks));
  }

  it('private is jailkeeper’s own name for the same networks as uniquelocal', () => {
    assert.deepEqual(canonicalNetworks('private'), canonicalNetworks('uniquelocal'));
    assert.deepEqual(Object.keys(NAMED_RANGES).sort(), ['linklocal', 'loopback', 'private', 'uniquelocal']);
  });

  it('uniquelocal trusts a proxy at 10.1.2.3 (the issue), and nothing outside its networks', () => {
    const trust = compile('uniquelocal');
    for (const inside of ['10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.0.1', 'fd00::1', 'fc00::1']) {
      assert.equal(trusted(trust, inside), true, inside);
    }
    for (const outside of [
      '9.255.255.255',
      '11.0.0.0',
      '172.15.255.255',
      '172.32.0.0',
      '192.167.255.255',
      '192.169.0.0',
      '100.64.0.1',
      '127.0.0.1',
      '169.254.1.1',
      'fe00::1',
      'fe80::1',
      '::1',
      '2001:db8::1',
    ]) {
      assert.equal(trusted(trust, outside), false, outside);
    }
  });

  it('only own names are ranges: prototype keys and other spellings are refused, not crashed on', () => {
    for (const entry of [
      '__proto__',
      'constructor',
      'toString',
      'hasOwnProperty',
      'Loopback',
      'LOOPBACK',
      'local',
    ]) {
      assert.equal(typeof parseNetworkEntry(entry), 'string', entry);
      assert.throws(() => compile([entry]), refusedWith('JK_ERR_INVALID_CIDR'), entry);
    }
  });
});

describe('trustedProxies in Express’s trust proxy notation', () => {
  it('a netmask trusts exactly its network', () => {
    const trust = compile(['10.0.0.0/255.255.255.192']);
    assert.equal(trusted(trust, '10.0.0.0'), true);
    assert.equal(trusted(trust, '10.0.0.63'), true);
    assert.equal(trusted(trust, '10.0.0.64'), false);
    assert.equal(trusted(trust, '9.255.255.255'), false);
    assert.equal(trusted(trust, '::ffff:10.0.0.1'), true);
  });

  it('a comma-separated string is a list, as Express reads one', () => {
    const trust = compile('loopback, 10.0.0.0/8 ,fd00::/8');
    assert.equal(trusted(trust, '127.0.0.1'), true);
    assert.equal(trusted(trust, '10.9.9.9'), true);
    assert.equal(trusted(trust, 'fd00::1'), true);
    assert.equal(trusted(trust, '192.168.0.1'), false);
  });

  it('a CIDR or netmask with host bits is refused with the network to write', () => {
    assert.throws(
      () => compile(['10.0.0.2/26']),
      (e: JailkeeperConfigError) =>
        e.code === 'JK_ERR_INVALID_CIDR' &&
        e.option === 'trustedProxies[0]' &&
        e.message.includes('did you mean 10.0.0.0/26?'),
    );
    assert.throws(
      () => compile('127.0.0.1, 10.0.0.2/255.255.255.192'),
      (e: JailkeeperConfigError) =>
        e.option === 'trustedProxies[1]' && e.message.includes('did you mean 10.0.0.0/26?'),
    );
    assert.throws(
      () => compile(['2001:db8::1/64']),
      (e: JailkeeperConfigError) => e.message.includes('did you mean 2001:db8::/64?'),
    );
  });

  it('refuses any spelling of every address, judged on the networks, not the text', () => {
    const wide = [
      ['0.0.0.0/0.0.0.0'],
      ['0.0.0.0/00'],
      [' 0.0.0.0/0 '],
      ['::ffff:0.0.0.0/96'],
      ['::ffff:0:0/96'],
      ['0::/0'],
      ['0:0:0:0:0:0:0:0/0'],
      ['0.0.0.0/1', '128.0.0.0/1'],
      ['10.0.0.0/8', '0.0.0.0/1', '128.0.0.0/2', '192.0.0.0/2'],
      ['::/1', '8000::/1'],
    ];
    for (const entries of wide) {
      assert.throws(() => compile(entries), refusedWith('JK_ERR_UNSAFE_TRUST'), entries.join(', '));
      assert.equal(compile(entries, true).kind, 'networks', `${entries.join(', ')} with the opt-in`);
    }
    // Half of everything is not everything.
    assert.equal(compile(['0.0.0.0/1', '::/1']).kind, 'networks');
  });

  it("'express' hands trust to the Express app, and reads X-Forwarded-For only", () => {
    assert.deepEqual(compile('express'), { kind: 'express' });
    assert.throws(
      () => compileTrust('express', false, 'forwarded'),
      (e: JailkeeperConfigError) => e.code === 'JK_ERR_INVALID_OPTION' && e.option === 'clientIpHeader',
    );
    assert.throws(() => compile(['express']), refusedWith('JK_ERR_INVALID_CIDR'));
  });
});
