import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { networkOf } from '../src/engine/failure-judge.js';
import { createJailkeeper, type JailOptions } from '../src/index.js';
import { configWarnings, createManualClock } from '../src/operator/index.js';
import { compileProbes } from '../src/paths/probe-match.js';
import { quietLogger } from '../src/testing/helpers.js';

function keeperWith(jail: JailOptions) {
  const clock = createManualClock(1_000_000);
  const keeper = createJailkeeper({ jails: { j: jail }, clock, logger: quietLogger });
  const fail = (client: string, path: string, status = 404, route: string | null = null) =>
    keeper.observe({ client, method: 'GET', route, path, status }).then((r) => r.jails[0]);
  return { keeper, clock, fail };
}

describe('the failure judge', () => {
  it('distinct: a repeated path counts once within findTime, again after it', async () => {
    const { keeper, clock, fail } = keeperWith({ statuses: [404], distinct: 'path', findTime: '10m' });
    assert.equal((await fail('198.51.100.1', '/a.woff'))?.action, 'counted');
    assert.equal((await fail('198.51.100.1', '/a.woff'))?.action, 'repeated');
    assert.equal((await fail('198.51.100.1', '/b.woff'))?.count, 2);
    assert.equal((await fail('198.51.100.2', '/a.woff'))?.action, 'counted', 'per client');
    clock.advance(10 * 60_000 + 1);
    assert.equal((await fail('198.51.100.1', '/a.woff'))?.action, 'counted');
    await keeper.close();
  });

  it("distinct: 'route' counts a route once, whatever its path; an unrouted request by its path", async () => {
    const { keeper, fail } = keeperWith({ statuses: [403], distinct: 'route' });
    assert.equal((await fail('198.51.100.1', '/docs/1', 403, '/docs/:id'))?.action, 'counted');
    assert.equal((await fail('198.51.100.1', '/docs/2', 403, '/docs/:id'))?.action, 'repeated');
    assert.equal((await fail('198.51.100.1', '/x', 403, null))?.action, 'counted');
    await keeper.close();
  });

  it('probes: two probes ban at weight 5 of maxRetry 10; a routed path or a non-404 is never a probe', async () => {
    const { keeper, fail } = keeperWith({ statuses: [404, 403], probes: true, maxRetry: 10 });
    const first = await fail('198.51.100.1', '//WP-LOGIN.PHP');
    assert.deepEqual([first?.action, first?.probe, first?.maxRetry], ['counted', true, 2]);
    assert.equal((await fail('198.51.100.1', '/.env.bak'))?.action, 'banned');
    assert.equal(
      (await fail('198.51.100.2', '/.env', 404, '/.env'))?.probe,
      undefined,
      'a route the app has',
    );
    assert.equal((await fail('198.51.100.3', '/.env', 403))?.probe, undefined, 'a refusal, not a 404');
    assert.equal((await fail('198.51.100.4', '/pmarket'))?.probe, undefined, 'a segment must end');
    await keeper.close();
  });

  it('sharedPaths: shared at the 8th network, not the 7th; addresses of one /16 or one IPv6 /29 are one network', async () => {
    const { keeper, fail } = keeperWith({ statuses: [404], sharedPaths: true, maxRetry: 100 });
    const links: string[] = [];
    keeper.on('brokenLink', (l) => links.push(l.path));
    // One attacker: 50 addresses in three /16s and 50 in one IPv6 /29.
    for (let i = 1; i <= 50; i++) {
      for (const ip of [`203.0.113.${i}`, `198.51.100.${i}`, `192.0.2.${i}`, `2001:db8:1:${i}::1`]) {
        assert.equal((await fail(ip, '/backup.zip'))?.action, 'counted', ip);
      }
    }
    assert.deepEqual(links, []);
    for (let n = 1; n <= 3; n++) assert.equal((await fail(`100.${n}.0.1`, '/backup.zip'))?.action, 'counted');
    // Seven networks so far; the eighth makes it shared, for everyone.
    assert.equal((await fail('100.4.0.1', '/backup.zip'))?.action, 'shared');
    assert.equal((await fail('203.0.113.1', '/backup.zip'))?.action, 'shared');
    assert.deepEqual(links, ['/backup.zip']);
    assert.deepEqual(
      keeper.brokenLinks().map((l) => [l.path, l.networks]),
      [['/backup.zip', 8]],
    );
    await keeper.close();
  });

  it('sharedPaths: probe paths and other statuses never become shared', async () => {
    const { keeper, fail } = keeperWith({
      statuses: [404, 401],
      sharedPaths: true,
      probes: true,
      maxRetry: 100,
    });
    for (let n = 1; n <= 10; n++) {
      assert.equal((await fail(`100.${n}.0.1`, '/wp-login.php'))?.action, 'counted');
      assert.equal((await fail(`100.${n}.0.1`, '/login', 401, '/login'))?.action, 'counted');
    }
    assert.deepEqual(keeper.brokenLinks(), []);
    await keeper.close();
  });

  it('probe signatures: at any depth, ignoring case and doubled slashes; a closed one ends its segment', () => {
    const matches = compileProbes('probes.signatures', ['wp-login.php', '.env*', 'vendor/phpunit*', 'pma']);
    for (const path of [
      '/wp-login.php',
      '/blog/WP-Login.php',
      '//wp-login.php',
      '/.env',
      '/.env.local',
      '/vendor//phpunit/x',
      '/pma/',
      '/PMA',
    ]) {
      assert.ok(matches(path), path);
    }
    for (const path of ['/wp-login.php5', '/xwp-login.php', '/pmarket', '/my.env', '/vendor/phpunix', '/']) {
      assert.ok(!matches(path), path);
    }
  });

  it('networkOf: an IPv4 /16, an IPv6 /29, and an IPv6 address carrying an IPv4 client is that client', () => {
    assert.equal(networkOf('203.0.113.7'), networkOf('203.0.200.7'), 'two /24s of one /16');
    assert.notEqual(networkOf('203.0.113.7'), networkOf('203.1.113.7'));
    assert.equal(networkOf('2001:db8:1:2::1'), networkOf('2001:db8:1:ffff::9'));
    assert.equal(networkOf('2001:db8:1::1'), networkOf('2001:db8:7::1'), 'two /48s of one /45');
    assert.equal(
      networkOf('2001:db8::1'),
      networkOf('2001:dbf:ffff::1'),
      'the first and last /32 of one /29',
    );
    assert.notEqual(networkOf('2001:db8::1'), networkOf('2001:dc0::1'), 'the next /29');
    assert.equal(networkOf('64:ff9b::cb00:7107'), networkOf('203.0.113.9'));
  });

  it('a jail that counts 401s once per path warns (JK_WRN_DISTINCT_GUESSES): guesses at one route are one path', async () => {
    const warned: string[] = [];
    const keeper = createJailkeeper({
      jails: {
        login: { statuses: [401], paths: ['/login'], distinct: 'path' },
        scanners: { statuses: [404], distinct: 'path' },
      },
      logger: { info() {}, error() {}, warn: (o: object) => warned.push((o as { code: string }).code) },
    });
    assert.deepEqual(warned, ['JK_WRN_DISTINCT_GUESSES']);
    assert.deepEqual(
      configWarnings(keeper.options).map((w) => w.option),
      ['jails.login.distinct'],
    );
    await keeper.close();
  });

  it('bad options fail at startup, naming the option', () => {
    const attempt = (jail: JailOptions) => () => createJailkeeper({ jails: { j: jail } });
    assert.throws(attempt({ statuses: [404], distinct: 'yes' as never }), /jails\.j\.distinct/);
    assert.throws(
      attempt({ statuses: [404], sharedPaths: { networks: 2 } }),
      /jails\.j\.sharedPaths\.networks/,
    );
    assert.throws(attempt({ statuses: [401], probes: true }), /jails\.j\.probes must be off/);
    assert.throws(attempt({ statuses: [404], probes: { weight: 1 } }), /jails\.j\.probes\.weight/);
    assert.throws(
      attempt({ statuses: [404], probes: { signatures: ['/x'] } }),
      /jails\.j\.probes\.signatures\[0\]/,
    );
    assert.throws(attempt({ statuses: [404], probes: { x: 1 } as never }), { code: 'JK_ERR_UNKNOWN_OPTION' });
  });
});
