import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Ban, JailkeeperError } from '@jailkeeper/core';
import { exportBans } from '../src/export.js';

const ban = (client: string, jail: string, endMs: number): Ban => ({
  jail,
  client,
  startMs: 0,
  endMs,
  banCount: 1,
  reason: '',
  manual: false,
});
const BANS = [
  ban('203.0.113.7', 'login', 2000),
  ban('203.0.113.7', 'scan', 5000), // the same client in two jails: written once
  ban('2001:db8:1:2::/64', 'login', Number.POSITIVE_INFINITY),
  ban('198.51.100.1', 'manual', 3000),
  ban('evil;\nreturn 200', 'login', 9000), // not a network: never written
];

describe('exportBans', () => {
  it('plain and haproxy-acl: one network a line, sorted, deduplicated', () => {
    const expected = '198.51.100.1\n2001:db8:1:2::/64\n203.0.113.7\n';
    assert.equal(exportBans(BANS, 'plain'), expected);
    assert.equal(exportBans(BANS, 'haproxy-acl'), expected);
  });
  it('nginx-geo: a geo block with a default', () => {
    assert.equal(
      exportBans(BANS, 'nginx-geo'),
      'geo $jailkeeper_banned {\n  default 0;\n  198.51.100.1 1;\n  2001:db8:1:2::/64 1;\n  203.0.113.7 1;\n}\n',
    );
    assert.equal(exportBans(BANS, 'nginx-map'), '198.51.100.1 1;\n2001:db8:1:2::/64 1;\n203.0.113.7 1;\n');
  });
  it('ipset: a hash:net set per family', () => {
    assert.equal(
      exportBans(BANS, 'ipset', { name: 'jk' }),
      'create jk hash:net family inet -exist\ncreate jk6 hash:net family inet6 -exist\nflush jk\nflush jk6\nadd jk 198.51.100.1\nadd jk 203.0.113.7\nadd jk6 2001:db8:1:2::/64\n',
    );
  });
  it('json: the latest end per client, null for permanent', () => {
    assert.deepEqual(JSON.parse(exportBans(BANS, 'json')), [
      { client: '198.51.100.1', jail: 'manual', endMs: 3000 },
      { client: '2001:db8:1:2::/64', jail: 'login', endMs: null },
      { client: '203.0.113.7', jail: 'scan', endMs: 5000 },
    ]);
  });
  it('never writes a value that is not a network, and refuses bad formats and names', () => {
    for (const format of ['plain', 'nginx-geo', 'ipset', 'json'] as const) {
      assert.ok(!exportBans(BANS, format).includes('evil'), format);
    }
    assert.throws(
      () => exportBans(BANS, 'csv' as never),
      (e: JailkeeperError) => e.code === 'JK_ERR_INVALID_OPTION',
    );
    assert.throws(
      () => exportBans(BANS, 'ipset', { name: 'x; rm -rf /' }),
      (e: JailkeeperError) => e.code === 'JK_ERR_INVALID_OPTION',
    );
  });
});
