/**
 * Issue 14, range bans for IPv6 rotation: many /64s of one /48 banned within findTime ban the /48
 * as one entry, reported and exported as one network. Off by default.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type BanEvent, createJailkeeper, type JailOptions } from '../src/index.js';
import { createManualClock } from '../src/operator/index.js';
import { quietLogger, until } from '../src/testing/index.js';

const login = {
  statuses: [401],
  paths: ['/login'],
  maxRetry: 2,
  findTime: '10m',
  banTime: '1h',
} satisfies JailOptions;
const fail = (client: string) => ({ client, method: 'POST', path: '/login', status: 401 });
/** Two failures from an address of /64 number `n` inside 2001:db8:7::/48. */
async function banSubnet(keeper: ReturnType<typeof createJailkeeper>, n: number, prefix = '2001:db8:7') {
  for (let i = 0; i < 2; i++) await keeper.observe(fail(`${prefix}:${n.toString(16)}::${i + 1}`));
}

describe('ipv6RangeBan', () => {
  it('bans the /48 as one entry at the threshold; a fresh /64 inside is refused; another /48 is not', async () => {
    const keeper = createJailkeeper({
      logger: quietLogger,
      jails: { login },
      ipv6RangeBan: { threshold: 4 },
    });
    const bans: BanEvent[] = [];
    keeper.on('ban', (b) => bans.push(b));
    for (let n = 1; n <= 3; n++) await banSubnet(keeper, n);
    assert.equal(bans.length, 3);
    assert.equal(keeper.check('2001:db8:7:99::1').banned, false, 'three /64s: below the threshold');
    await banSubnet(keeper, 4);
    await until(() => bans.length === 5, { within: 2000, what: 'the range ban' });
    const range = bans[4] as BanEvent;
    assert.deepEqual(
      [range.client, range.jail, range.origin, range.durationMs],
      ['2001:db8:7::/48', 'login', 'local', 3_600_000],
    );
    assert.match(range.reason, /4 clients of this \/48 banned within 10m/);
    const verdict = keeper.check('2001:db8:7:abcd::1');
    assert.equal(verdict.banned && verdict.client, '2001:db8:7::/48', 'a /64 never seen is refused');
    assert.equal(keeper.check('2001:db8:8::1').banned, false, 'the next /48 is not');
    assert.equal(keeper.check('203.0.113.1').banned, false);
    const listed = (await keeper.bans()).map((b) => b.client);
    assert.ok(listed.includes('2001:db8:7::/48'), 'listed (and exported) as one network');
    await keeper.close();
  });

  it('counts only within findTime, only the jail’s own bans, and spares the ignore list', async () => {
    const clock = createManualClock();
    const keeper = createJailkeeper({
      clock,
      logger: quietLogger,
      jails: { login },
      ignoreIp: ['2001:db8:9:ff::/64'],
      ipv6RangeBan: { threshold: 3 },
    });
    await banSubnet(keeper, 1, '2001:db8:9');
    await banSubnet(keeper, 2, '2001:db8:9');
    clock.advance(11 * 60_000); // the first two fall out of the window
    await banSubnet(keeper, 3, '2001:db8:9');
    await keeper.ban('2001:db8:9:4::1', { duration: '1h' }); // manual: not the jail's counting
    await keeper.idle();
    assert.equal(keeper.check('2001:db8:9:77::1').banned, false);
    await banSubnet(keeper, 5, '2001:db8:9');
    await banSubnet(keeper, 6, '2001:db8:9');
    await until(() => keeper.check('2001:db8:9:77::1').banned, { within: 2000 });
    assert.equal(keeper.check('2001:db8:9:ff::5').banned, false, 'an ignored /64 inside stays in');
    await keeper.close();
  });

  it('is off by default; its options are validated at setup', async () => {
    const keeper = createJailkeeper({ logger: quietLogger, jails: { login } });
    for (let n = 1; n <= 10; n++) await banSubnet(keeper, n);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(keeper.check('2001:db8:7:99::1').banned, false);
    assert.equal(keeper.activeBans().length, 10);
    await keeper.close();
    assert.throws(() => createJailkeeper({ jails: { login }, ipv6RangeBan: { prefix: 64 } }), {
      code: 'JK_ERR_INVALID_OPTION',
      message: /ipv6RangeBan\.prefix must be a prefix length shorter than ipv6Subnet \(64\)/,
    });
    assert.throws(() => createJailkeeper({ jails: { login }, ipv6RangeBan: { threshold: 1 } }), {
      code: 'JK_ERR_INVALID_OPTION',
    });
    assert.throws(() => createJailkeeper({ jails: { login }, ipv6RangeBan: { limit: 3 } as never }), {
      code: 'JK_ERR_UNKNOWN_OPTION',
    });
  });
});
