import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JailkeeperError } from '@jailkeeper/core';
import type { Ban } from '@jailkeeper/core/store';
import { exportableNetwork, exportBanChunks, exportBanPages, exportBans } from '../src/export.js';

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

describe('exportBans: forged store entries (issue 15)', () => {
  const FORGED: Array<[unknown, string]> = [
    ['0.0.0.0/0', 'everyone'],
    ['::/0', 'everyone, IPv6'],
    ['0.0.0.0', 'the unspecified address'],
    ['::', 'the unspecified address, IPv6'],
    ['10.0.0.0/8', 'an IPv4 range'],
    ['203.0.113.0/24', 'an IPv4 range'],
    ['2001:db8::/16', 'an IPv6 range wider than /48'],
    ['2001:db8::/32', 'an IPv6 range wider than /48'],
    [' 203.0.113.5', 'untrimmed'],
    ['203.0.113.5 ', 'untrimmed'],
    ['203.0.113.5\n0.0.0.0/0 1;', 'a new line'],
    ['203.0.113.5\u0000', 'a control character'],
    ['203.0.113.5;', 'a separator'],
    ['2001:db8::1%eth0', 'a zone id'],
    ['203.0.113.5/32 }', 'markup'],
    [42, 'not a string'],
    [null, 'not a string'],
    ['010.1.1.1', 'an ambiguous spelling'],
    ['2001:db8::1/64', 'host bits set'],
  ];

  it('leaves out every forged entry in every format, and says why', () => {
    const bans = [
      ...FORGED.map(([client]) => ({ ...ban('x', 'login', 9000), client }) as unknown as Ban),
      ban('198.51.100.1', 'login', 9000),
    ];
    for (const format of ['plain', 'nginx-geo', 'nginx-map', 'haproxy-acl', 'ipset', 'json'] as const) {
      const skipped: unknown[] = [];
      const text = exportBans(bans, format, { onInvalid: (client) => skipped.push(client) });
      assert.deepEqual(
        skipped,
        FORGED.map(([client]) => client),
        format,
      );
      const networks =
        format === 'json'
          ? (JSON.parse(text) as Array<{ client: string }>).map((e) => e.client)
          : [...text.matchAll(/[0-9a-f:.]+\/?\d*(?= 1;|\n|$)/g)].map((m) => m[0]);
      assert.ok(networks.includes('198.51.100.1'), format);
      for (const line of text.split('\n')) {
        assert.doesNotMatch(
          line,
          /0\.0\.0\.0|::\/0|10\.0\.0\.0|\/8|\/16|\/24|\/32|%|\u0000|;.*;/,
          `${format}: ${line}`,
        );
      }
    }
  });

  it('canonicalises what it keeps: mapped IPv4, upper case and long IPv6 forms are one client', () => {
    const bans = [
      ban('::ffff:198.51.100.7', 'login', 1000),
      ban('198.51.100.7', 'scan', 2000),
      ban('2001:DB8:0:0:1::/80', 'login', 3000),
      ban('2001:db8::1:0:0:0/80', 'scan', 4000),
    ];
    assert.equal(exportBans(bans, 'plain'), '198.51.100.7\n2001:db8:0:0:1::/80\n');
    assert.equal(
      exportBans([ban('2001:db8:100::/40', 'login', 1)], 'plain', { minIpv6Prefix: 40 }),
      '2001:db8:100::/40\n',
    );
    assert.throws(() => exportBans([], 'plain', { minIpv6Prefix: 16 }), /minIpv6Prefix/);
  });
});

describe('exportBanPages: a page at a time', () => {
  /** Pages of `size`, recording how many turns of the event loop ran before each was asked for. */
  function paged(bans: readonly Ban[], size: number, turnsSeen: number[], turns: () => number) {
    return (async function* () {
      for (let i = 0; i < bans.length; i += size) {
        turnsSeen.push(turns());
        yield bans.slice(i, i + size);
      }
    })();
  }

  it('writes each network once across pages (the same client in several jails, mapped and long forms)', async () => {
    const bans = [
      ...Array.from({ length: 300 }, (_, i) => ban(`198.51.${i >> 8}.${i & 255}`, 'login', 5000)),
      ...Array.from({ length: 300 }, (_, i) => ban(`198.51.${i >> 8}.${i & 255}`, 'scan', 6000)),
      ban('::ffff:198.51.0.7', 'manual', 7000), // the same client as 198.51.0.7
      ban('2001:DB8:0:0:0::/64', 'login', 7000),
      ban('2001:db8::/64', 'scan', 7000), // the same network, canonical form
    ];
    const seen: number[] = [];
    const text = await exportBanPages(
      paged(bans, 64, seen, () => 0),
      'plain',
    );
    const lines = text.trim().split('\n');
    assert.equal(lines.length, 301);
    assert.equal(new Set(lines).size, 301);
    assert.deepEqual([...lines].sort(), exportBans(bans, 'plain').trim().split('\n'));
  });

  it('lets the event loop turn between two pages (a setImmediate callback runs in between)', async () => {
    let turns = 0;
    let running = true;
    const tick = () => {
      turns++;
      if (running) setImmediate(tick);
    };
    setImmediate(tick);
    const bans = Array.from({ length: 5000 }, (_, i) => ban(`203.0.${i >> 8}.${i & 255}`, 'login', 5000));
    const seen: number[] = [];
    const chunks = await exportBanChunks(
      paged(bans, 500, seen, () => turns),
      'nginx-geo',
    );
    running = false;
    assert.equal(seen.length, 10);
    for (let k = 1; k < seen.length; k++)
      assert.ok((seen[k] as number) > (seen[k - 1] as number), `no turn before page ${k}`);
    // Header, one chunk a page, footer: never one string of every line.
    assert.equal(chunks.length, 12);
  });
});

describe('exportableNetwork: IPv4 keys', () => {
  it('a canonical dotted quad is its own network; any other spelling is parsed or refused as before', () => {
    const cases: Array<[string, string | undefined]> = [
      ['1.2.3.4', '1.2.3.4'],
      ['255.255.255.255', '255.255.255.255'],
      ['0.0.0.1', '0.0.0.1'],
      ['0.0.0.0', undefined], // the unspecified address
      ['01.2.3.4', undefined],
      ['1.2.3.04', undefined],
      ['256.1.1.1', undefined],
      ['1.2.3', undefined],
      ['1.2.3.4.5', undefined],
      ['1..2.3', undefined],
      ['1.2.3.4/32', '1.2.3.4'],
      ['::ffff:1.2.3.4', '1.2.3.4'],
    ];
    for (const [client, expected] of cases) {
      const network = exportableNetwork(client);
      if (expected === undefined) assert.equal(typeof network, 'object', client);
      else assert.equal(network, expected, client);
    }
  });
});
