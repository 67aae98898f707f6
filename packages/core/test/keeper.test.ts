import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { createManualClock, type ManualClock } from '../src/clock.js';
import type { ResponseEvent } from '../src/engine/events.js';
import { createJailkeeper, type Jailkeeper } from '../src/engine/keeper.js';
import type { JailkeeperOptions, JailOptions } from '../src/engine/options.js';
import { JailkeeperError } from '../src/errors.js';

const MIN = 60_000;
let open: Jailkeeper[] = [];
afterEach(async () => {
  await Promise.all(open.map((k) => k.close()));
  open = [];
});

function keeper(options: Omit<JailkeeperOptions, 'clock'>, clock: ManualClock = createManualClock()) {
  const k = createJailkeeper({ ...options, clock });
  open.push(k);
  return { k, clock };
}

const fail = (client: string, extra: Partial<ResponseEvent> = {}): ResponseEvent => ({
  client,
  method: 'POST',
  route: '/login',
  path: '/login',
  status: 401,
  ...extra,
});

const loginJail = {
  statuses: [401],
  paths: ['/login'],
  maxRetry: 3,
  findTime: '10m',
  banTime: '1h',
} satisfies JailOptions;

describe('counting and banning', () => {
  it('bans at exactly maxRetry failures and refuses the client', async () => {
    const { k } = keeper({ jails: { login: loginJail } });
    const bans: unknown[] = [];
    k.on('ban', (b) => bans.push(b));
    assert.equal((await k.observe(fail('1.2.3.4'))).jails[0]?.action, 'counted');
    assert.equal((await k.observe(fail('1.2.3.4'))).jails[0]?.count, 2);
    assert.equal(k.check('1.2.3.4').banned, false);
    const third = await k.observe(fail('1.2.3.4'));
    assert.equal(third.jails[0]?.action, 'banned');
    assert.equal(bans.length, 1);
    const verdict = k.check('1.2.3.4');
    assert.equal(verdict.banned, true);
    assert.equal(verdict.banned && verdict.jail, 'login');
    assert.equal(k.check('1.2.3.5').banned, false, 'a neighbour is not banned');
  });

  it('counts only what the jail names: status, method, path', async () => {
    const { k } = keeper({ jails: { login: { ...loginJail, methods: ['POST'] } } });
    const none = [
      fail('1.1.1.1', { status: 200 }),
      fail('1.1.1.1', { status: 403 }),
      fail('1.1.1.1', { method: 'GET' }),
      fail('1.1.1.1', { route: '/account', path: '/account' }),
    ];
    for (const event of none) assert.deepEqual((await k.observe(event)).jails, []);
  });

  it('slides the window: a burst across the edge cannot reach twice maxRetry', async () => {
    const { k, clock } = keeper({ jails: { login: loginJail } });
    await k.observe(fail('2.2.2.2'));
    clock.advance(9 * MIN);
    await k.observe(fail('2.2.2.2'));
    clock.advance(MIN); // the first failure is now exactly findTime old: out of the window
    assert.equal((await k.observe(fail('2.2.2.2'))).jails[0]?.count, 2);
    clock.advance(MIN - 1);
    // the second failure (at 9m) is still inside: 2 + 1 = 3 -> ban
    assert.equal((await k.observe(fail('2.2.2.2'))).jails[0]?.action, 'banned');
  });

  it('forgets failures older than findTime', async () => {
    const { k, clock } = keeper({ jails: { login: loginJail } });
    await k.observe(fail('3.3.3.3'));
    await k.observe(fail('3.3.3.3'));
    clock.advance(10 * MIN + 1);
    assert.equal((await k.observe(fail('3.3.3.3'))).jails[0]?.count, 1);
  });

  it('ends the ban after banTime and announces it once', async () => {
    const { k, clock } = keeper({ jails: { login: loginJail } });
    const unbans: unknown[] = [];
    k.on('unban', (u) => unbans.push(u));
    for (let i = 0; i < 3; i++) await k.observe(fail('4.4.4.4'));
    clock.advance(60 * MIN - 1);
    assert.equal(k.check('4.4.4.4').banned, true);
    clock.advance(1);
    assert.equal(k.check('4.4.4.4').banned, false);
    await k.sweep();
    await k.sweep();
    assert.equal(unbans.length, 1);
    assert.equal((unbans[0] as { cause: string }).cause, 'expired');
    assert.deepEqual(await k.bans(), []);
  });

  it('bans for good with banTime permanent', async () => {
    const { k, clock } = keeper({ jails: { login: { ...loginJail, banTime: 'permanent' } } });
    for (let i = 0; i < 3; i++) await k.observe(fail('5.5.5.5'));
    clock.advance(10 * 365 * 24 * 60 * MIN);
    const verdict = k.check('5.5.5.5');
    assert.equal(verdict.banned && verdict.untilMs, Number.POSITIVE_INFINITY);
    const [info] = await k.bans();
    assert.equal(info?.timeLeftMs, Number.POSITIVE_INFINITY);
  });

  it('does not count a client that is already banned in the jail', async () => {
    const { k } = keeper({ jails: { login: { ...loginJail, scope: 'jail' } } });
    for (let i = 0; i < 3; i++) await k.observe(fail('6.6.6.6'));
    assert.equal((await k.observe(fail('6.6.6.6'))).jails[0]?.action, 'alreadyBanned');
    assert.equal((await k.status()).jails.login?.totalBanned, 1);
  });

  it('treats every spelling of one IPv4 client as one key', async () => {
    const { k } = keeper({ jails: { login: loginJail } });
    await k.observe(fail('1.2.3.4'));
    await k.observe(fail('::ffff:1.2.3.4'));
    await k.observe(fail('::FFFF:102:304'));
    assert.equal(k.check('1.2.3.4').banned, true);
  });

  it('counts an IPv6 /64 as one client, and leaves the neighbouring /64 alone', async () => {
    const { k } = keeper({ jails: { login: loginJail } });
    await k.observe(fail('2001:db8:0:1::1'));
    await k.observe(fail('2001:db8:0:1::2'));
    await k.observe(fail('2001:db8:0:1:ffff::9'));
    assert.equal(k.check('2001:db8:0:1:abcd::1').banned, true);
    assert.equal(k.check('2001:db8:0:2::1').banned, false);
  });

  it('never counts an invalid client', async () => {
    const { k } = keeper({ jails: { login: loginJail } });
    assert.equal((await k.observe(fail('unknown'))).ignored, 'invalidClient');
    assert.equal((await k.observe(fail('__proto__'))).ignored, 'invalidClient');
  });
});

describe('exemptions', () => {
  it('never counts an exempt route (the /ws incident)', async () => {
    const { k } = keeper({
      jails: { forbidden: { statuses: [403], maxRetry: 2, exempt: ['/ws', '/healthz'] } },
    });
    for (let i = 0; i < 10; i++) {
      const r = await k.observe({ client: '7.7.7.7', method: 'GET', route: '/ws', path: '/ws', status: 403 });
      assert.equal(r.jails[0]?.action, 'exempt');
    }
    assert.equal(k.check('7.7.7.7').banned, false);
    await k.observe({ client: '7.7.7.7', method: 'GET', route: '/admin', path: '/admin', status: 403 });
    await k.observe({ client: '7.7.7.7', method: 'GET', route: '/admin', path: '/admin', status: 403 });
    assert.equal(k.check('7.7.7.7').banned, true);
  });

  it('matches exemptions on the route the router chose, not on the spelling of the path', async () => {
    const { k } = keeper({ jails: { forbidden: { statuses: [403], maxRetry: 2, exempt: ['/ws'] } } });
    // A path that spells /ws but reached another route counts.
    await k.observe({ client: '8.8.8.8', method: 'GET', route: '/admin', path: '/ws/../admin', status: 403 });
    // A request the router matched to no route is never exempt, whatever its path says.
    await k.observe({ client: '8.8.8.8', method: 'GET', route: null, path: '/ws', status: 403 });
    assert.equal(k.check('8.8.8.8').banned, true);
  });

  it('matches globs and RegExps', async () => {
    const { k } = keeper({
      jails: { api: { statuses: [401], maxRetry: 1, exempt: ['/public/*', /^\/hooks\//] } },
    });
    assert.equal(
      (await k.observe(fail('9.9.9.1', { route: '/public/x', path: '/public/x' }))).jails[0]?.action,
      'exempt',
    );
    assert.equal(
      (await k.observe(fail('9.9.9.1', { route: '/hooks/gh', path: '/hooks/gh' }))).jails[0]?.action,
      'exempt',
    );
    assert.equal(
      (await k.observe(fail('9.9.9.1', { route: '/public/x/y', path: '/public/x/y' }))).jails[0]?.action,
      'banned',
    );
  });

  it('uses the path when there is no router information (log replay)', async () => {
    const { k } = keeper({ jails: { forbidden: { statuses: [403], maxRetry: 1, exempt: ['/ws'] } } });
    const r = await k.observe({ client: '8.8.4.4', method: 'GET', path: '/ws', status: 403 });
    assert.equal(r.jails[0]?.action, 'exempt');
  });
});

describe('user-agent jails', () => {
  it('bans a scanner on sight, whatever the status', async () => {
    const { k } = keeper({
      jails: { badbots: { userAgents: [/sqlmap/i, 'masscan'], maxRetry: 1, banTime: '1d' } },
    });
    const r = await k.observe({
      client: '10.9.9.9',
      method: 'GET',
      route: '/',
      path: '/',
      status: 200,
      userAgent: 'Masscan/1.3',
    });
    assert.equal(r.jails[0]?.action, 'banned');
    const clean = await k.observe({
      client: '10.9.9.8',
      method: 'GET',
      route: '/',
      path: '/',
      status: 200,
      userAgent: 'Mozilla/5.0',
    });
    assert.deepEqual(clean.jails, []);
  });
});

describe('ban scope', () => {
  it('app scope refuses everywhere; jail scope only on the jail routes', async () => {
    const { k } = keeper({
      jails: {
        login: { ...loginJail, scope: 'jail' },
        scan: { statuses: [404], maxRetry: 2 },
      },
    });
    for (let i = 0; i < 3; i++) await k.observe(fail('11.0.0.1'));
    assert.equal(k.check('11.0.0.1', { method: 'POST', route: '/login', path: '/login' }).banned, true);
    assert.equal(k.check('11.0.0.1', { method: 'GET', route: '/', path: '/' }).banned, false);
    assert.equal(
      k.check('11.0.0.1').banned,
      false,
      'without request information a jail-scope ban cannot apply',
    );
    for (let i = 0; i < 2; i++)
      await k.observe({ client: '11.0.0.2', method: 'GET', route: null, path: '/x', status: 404 });
    assert.equal(k.check('11.0.0.2', { method: 'GET', route: '/', path: '/' }).banned, true);
  });
});

describe('ignoreIp', () => {
  it('never counts nor bans an ignored address or network', async () => {
    const { k } = keeper({
      jails: { login: { ...loginJail, maxRetry: 1 } },
      ignoreIp: ['127.0.0.0/8', '2001:db8::/32'],
    });
    const r = await k.observe(fail('127.0.0.5'));
    assert.equal(r.ignored, 'ignoreIp');
    assert.equal((await k.observe(fail('::ffff:127.0.0.1'))).ignored, 'ignoreIp');
    assert.equal((await k.observe(fail('2001:db8:1::1'))).ignored, 'ignoreIp');
    assert.equal(k.check('127.0.0.5').banned, false);
    await assert.rejects(k.ban('127.0.0.9'), (e: JailkeeperError) => e.code === 'JK_ERR_IGNORED_CLIENT');
  });

  it('is editable at runtime, and an added address is no longer refused', async () => {
    const { k } = keeper({ jails: { login: { ...loginJail, maxRetry: 1 } } });
    await k.observe(fail('12.0.0.1'));
    assert.equal(k.check('12.0.0.1').banned, true);
    assert.deepEqual(k.ignore.add('12.0.0.0/24'), ['12.0.0.0/24']);
    assert.equal(k.check('12.0.0.1').banned, false);
    assert.equal((await k.observe(fail('12.0.0.2'))).ignored, 'ignoreIp');
    assert.deepEqual(k.ignore.list(), ['12.0.0.0/24']);
    assert.equal(k.ignore.has('12.0.0.77'), true);
    assert.deepEqual(k.ignore.remove('12.0.0.0/24'), ['12.0.0.0/24']);
    assert.equal(k.check('12.0.0.1').banned, true);
    assert.throws(
      () => k.ignore.add('12.0.0.1/8'),
      (e: JailkeeperError) => e.code === 'JK_ERR_INVALID_CIDR',
    );
  });

  it('ignoring one IPv6 address does not ignore its /64 neighbours', async () => {
    const { k } = keeper({ jails: { login: { ...loginJail, maxRetry: 1 } }, ignoreIp: ['2001:db8::5'] });
    assert.equal((await k.observe(fail('2001:db8::5'))).ignored, 'ignoreIp');
    assert.equal((await k.observe(fail('2001:db8::6'))).jails[0]?.action, 'banned');
    assert.equal(k.check('2001:db8::5').banned, false, 'the admin keeps access');
    assert.equal(k.check('2001:db8::7').banned, true, 'the attacker next door does not');
  });
});

describe('escalation (bantime.increment)', () => {
  it('doubles each repeat ban up to maxTime', async () => {
    const { k, clock } = keeper({
      jails: { login: { ...loginJail, maxRetry: 1, banTime: '10m', banTimeIncrement: { maxTime: '35m' } } },
      historyTime: '1d',
    });
    const lengths: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await k.observe(fail('13.0.0.1'));
      const ban = r.jails[0]?.ban;
      assert.ok(ban);
      lengths.push((ban.endMs - ban.startMs) / MIN);
      assert.equal(ban.banCount, i + 1);
      clock.advance(ban.endMs - ban.startMs);
    }
    assert.deepEqual(lengths, [10, 20, 35, 35]);
  });

  it('uses multipliers and factor', async () => {
    const { k, clock } = keeper({
      jails: {
        login: {
          ...loginJail,
          maxRetry: 1,
          banTime: '1m',
          banTimeIncrement: { multipliers: [1, 5, 30], factor: 2 },
        },
      },
    });
    const lengths: number[] = [];
    for (let i = 0; i < 4; i++) {
      const ban = (await k.observe(fail('13.0.0.2'))).jails[0]?.ban;
      assert.ok(ban);
      lengths.push((ban.endMs - ban.startMs) / MIN);
      clock.advance(ban.endMs - ban.startMs);
    }
    assert.deepEqual(lengths, [1, 10, 60, 60]);
  });

  it('adds jitter within its bound', async () => {
    const { k } = keeper({
      jails: { login: { ...loginJail, maxRetry: 1, banTime: '10m', banTimeIncrement: { jitter: '1m' } } },
    });
    const ban = (await k.observe(fail('13.0.0.3'))).jails[0]?.ban;
    assert.ok(ban);
    const ms = ban.endMs - ban.startMs;
    assert.ok(ms >= 10 * MIN && ms < 11 * MIN, String(ms));
  });

  it('counts bans of every jail with overallJails, and forgets after historyTime', async () => {
    const { k, clock } = keeper({
      jails: {
        login: { ...loginJail, maxRetry: 1, banTime: '10m', banTimeIncrement: { overallJails: true } },
        scan: { statuses: [404], maxRetry: 1, banTime: '10m' },
      },
      historyTime: '1h',
    });
    await k.observe({ client: '13.0.0.4', method: 'GET', route: null, path: '/x', status: 404 });
    clock.advance(10 * MIN);
    const ban = (await k.observe(fail('13.0.0.4'))).jails[0]?.ban;
    assert.equal(ban && (ban.endMs - ban.startMs) / MIN, 20, 'the scan ban counts');
    clock.advance(20 * MIN + 60 * MIN + 1);
    await k.sweep();
    const fresh = (await k.observe(fail('13.0.0.4'))).jails[0]?.ban;
    assert.equal(fresh && (fresh.endMs - fresh.startMs) / MIN, 10, 'history forgotten after historyTime');
  });
});

describe('recidive', () => {
  it('bans everywhere for its long banTime after maxRetry bans within findTime', async () => {
    const { k, clock } = keeper({
      jails: { login: { ...loginJail, maxRetry: 1, banTime: '10m', scope: 'jail' } },
      recidive: { maxRetry: 3, findTime: '1d', banTime: '1w' },
    });
    const bans: string[] = [];
    k.on('ban', (b) => bans.push(b.jail));
    for (let i = 0; i < 3; i++) {
      await k.observe(fail('14.0.0.1'));
      clock.advance(10 * MIN);
    }
    assert.deepEqual(bans, ['login', 'login', 'recidive', 'login']);
    const verdict = k.check('14.0.0.1', { method: 'GET', route: '/', path: '/' });
    assert.equal(verdict.banned && verdict.jail, 'recidive');
    assert.equal(verdict.banned && verdict.untilMs - verdict.ban.startMs, 7 * 24 * 60 * MIN);
  });

  it('does not fire when the bans are spread beyond its findTime', async () => {
    const { k, clock } = keeper({
      jails: { login: { ...loginJail, maxRetry: 1, banTime: '10m' } },
      recidive: { maxRetry: 2, findTime: '1h', banTime: '1w' },
    });
    await k.observe(fail('14.0.0.2'));
    clock.advance(2 * 60 * MIN);
    await k.observe(fail('14.0.0.2'));
    assert.deepEqual(
      (await k.bans()).map((b) => b.jail),
      ['login'],
    );
  });
});

describe('pardon after success', () => {
  const pardoning = {
    ...loginJail,
    maxRetry: 3,
    pardon: { statuses: [200], for: '30d', maxRetry: 6 },
  } satisfies JailOptions;

  it('raises the threshold for a client that logged in, without immunity', async () => {
    const { k } = keeper({ jails: { login: pardoning } });
    const pardons: unknown[] = [];
    k.on('pardon', (p) => pardons.push(p));
    const ok = await k.observe(fail('15.0.0.1', { status: 200 }));
    assert.equal(ok.jails[0]?.action, 'pardoned');
    assert.equal(pardons.length, 1);
    for (let i = 1; i <= 5; i++)
      assert.equal((await k.observe(fail('15.0.0.1'))).jails[0]?.action, 'counted');
    assert.equal((await k.observe(fail('15.0.0.1'))).jails[0]?.action, 'banned', 'banned at pardon.maxRetry');
  });

  it('a success between guesses does not reset the count', async () => {
    const { k } = keeper({ jails: { login: pardoning } });
    const actions: string[] = [];
    for (let i = 0; i < 6; i++) {
      await k.observe(fail('15.0.0.2', { status: 200 }));
      actions.push((await k.observe(fail('15.0.0.2'))).jails[0]?.action ?? '');
    }
    assert.equal(actions.at(-1), 'banned');
    assert.equal(actions.filter((a) => a === 'counted').length, 5);
  });

  it('expires after `for`', async () => {
    const { k, clock } = keeper({ jails: { login: { ...pardoning, findTime: '60d' } } });
    await k.observe(fail('15.0.0.3', { status: 200 }));
    clock.advance(30 * 24 * 60 * MIN + 1);
    for (let i = 0; i < 2; i++) await k.observe(fail('15.0.0.3'));
    assert.equal((await k.observe(fail('15.0.0.3'))).jails[0]?.action, 'banned', 'back to maxRetry 3');
  });

  it('never lifts an active ban', async () => {
    const { k } = keeper({ jails: { login: pardoning } });
    for (let i = 0; i < 3; i++) await k.observe(fail('15.0.0.4'));
    await k.observe(fail('15.0.0.4', { status: 200 }));
    assert.equal(k.check('15.0.0.4').banned, true);
  });

  it('only on the pardon paths', async () => {
    const { k } = keeper({ jails: { login: pardoning } });
    const r = await k.observe(fail('15.0.0.5', { status: 200, route: '/', path: '/' }));
    assert.deepEqual(r.jails, []);
  });
});

describe('pardon: earned only by a success the jail counts, on its routes (issue 13)', () => {
  const jail = { ...loginJail, pardon: { statuses: [200] } };

  it('never by a login page, a HEAD, a CORS preflight or a request no route matched', async () => {
    const { k } = keeper({ jails: { login: jail } });
    for (const [method, route] of [
      ['GET', '/login'],
      ['HEAD', '/login'],
      ['OPTIONS', '/login'],
      ['POST', null],
    ] as const) {
      const r = await k.observe(fail('15.1.0.1', { method, route, status: 200 }));
      assert.deepEqual(r.jails, [], `${method} ${route}`);
    }
    const ok = await k.observe(fail('15.1.0.1', { status: 200 }));
    assert.equal(ok.jails[0]?.action, 'pardoned');
  });

  it('by HEAD or OPTIONS when the pardon names them; never on an exempt route', async () => {
    const { k } = keeper({
      jails: {
        login: {
          ...loginJail,
          paths: ['/login', '/login/**'],
          exempt: ['/login/probe'],
          pardon: { statuses: [200], methods: ['HEAD', 'OPTIONS'] },
        },
      },
    });
    const head = await k.observe(fail('15.1.0.2', { method: 'HEAD', status: 200 }));
    assert.equal(head.jails[0]?.action, 'pardoned');
    const exempt = await k.observe(
      fail('15.1.0.3', { method: 'HEAD', route: '/login/probe', path: '/login/probe', status: 200 }),
    );
    assert.deepEqual(exempt.jails, []);
  });

  it('HEAD still counts as GET in a jail of GET', async () => {
    const { k } = keeper({ jails: { secret: { ...loginJail, methods: ['GET'], paths: ['/secret'] } } });
    const failures: Array<{ method: string }> = [];
    k.on('failure', (f) => failures.push(f));
    const r = await k.observe(fail('15.1.0.4', { method: 'HEAD', route: '/secret', path: '/secret' }));
    assert.equal(r.jails[0]?.action, 'counted');
    assert.equal(failures[0]?.method, 'GET');
  });
});

describe('a jail that counts every status on its paths (issue 13)', () => {
  it("warns once at startup, unless it says statuses: 'any'", () => {
    const warnings: Array<{ code?: string; options?: string[] }> = [];
    const logger = {
      info() {},
      error() {},
      warn(details: { code?: string; options?: string[] }) {
        warnings.push(details);
      },
    };
    keeper({ jails: { login: { paths: ['/login'] }, trap: { statuses: 'any', paths: ['/trap'] } }, logger });
    assert.deepEqual(warnings, [{ code: 'JK_WRN_COUNTS_EVERY_STATUS', options: ['jails.login.statuses'] }]);
  });
});

describe('dry run', () => {
  it('counts and reports, fires wouldBan, blocks nothing', async () => {
    const { k } = keeper({ jails: { login: loginJail }, dryRun: true });
    const would: unknown[] = [];
    const bans: unknown[] = [];
    k.on('wouldBan', (b) => would.push(b));
    k.on('ban', (b) => bans.push(b));
    for (let i = 0; i < 3; i++) await k.observe(fail('16.0.0.1'));
    assert.equal(would.length, 1);
    assert.equal(bans.length, 0);
    assert.equal(k.check('16.0.0.1').banned, false);
    const status = await k.status();
    assert.equal(status.jails.login?.wouldBan, 1);
    assert.equal(status.jails.login?.dryRun, true);
    assert.equal(status.jails.login?.totalFailed, 3);
  });

  it('per jail', async () => {
    const { k } = keeper({
      jails: { login: { ...loginJail, dryRun: true }, scan: { statuses: [404], maxRetry: 1 } },
    });
    for (let i = 0; i < 3; i++) await k.observe(fail('16.0.0.2'));
    assert.equal(k.check('16.0.0.2').banned, false);
    await k.observe({ client: '16.0.0.2', method: 'GET', route: null, path: '/x', status: 404 });
    assert.equal(k.check('16.0.0.2').banned, true);
  });
});

describe('operators', () => {
  it('bans by hand with its own duration, lists with time left, unbans', async () => {
    const { k, clock } = keeper({ jails: { login: loginJail } });
    const info = await k.ban('2001:db8::1', { duration: '2h', reason: 'abuse report' });
    assert.equal(info.jail, 'manual');
    assert.equal(info.client, '2001:db8::/64');
    assert.equal(info.timeLeftMs, 120 * MIN);
    assert.equal(info.manual, true);
    clock.advance(30 * MIN);
    const [listed] = await k.bans();
    assert.equal(listed?.timeLeftMs, 90 * MIN);
    assert.equal(k.check('2001:db8::abcd').banned, true);
    const unbans: unknown[] = [];
    k.on('unban', (u) => unbans.push(u));
    assert.equal((await k.unban('2001:db8::1')).length, 1);
    assert.equal(k.check('2001:db8::abcd').banned, false);
    assert.equal(unbans.length, 1);
  });

  it('unban clears the failures too, so the client starts afresh', async () => {
    const { k } = keeper({ jails: { login: loginJail } });
    for (let i = 0; i < 3; i++) await k.observe(fail('17.0.0.1'));
    await k.unban('17.0.0.1', { jail: 'login' });
    assert.equal((await k.observe(fail('17.0.0.1'))).jails[0]?.count, 1);
  });

  it('unban all, per jail or everywhere', async () => {
    const { k } = keeper({ jails: { login: loginJail } });
    await k.ban('17.0.0.2', { jail: 'login' });
    await k.ban('17.0.0.3');
    assert.equal((await k.unbanAll({ jail: 'login' })).length, 1);
    assert.equal(k.check('17.0.0.3').banned, true);
    assert.equal((await k.unbanAll()).length, 1);
    assert.equal(k.check('17.0.0.3').banned, false);
  });

  it('rejects unknown jails and bad addresses with codes', async () => {
    const { k } = keeper({ jails: { login: loginJail } });
    await assert.rejects(
      k.ban('1.2.3.4', { jail: 'ssh' }),
      (e: JailkeeperError) => e.code === 'JK_ERR_UNKNOWN_JAIL',
    );
    await assert.rejects(k.ban('1.2.3'), (e: JailkeeperError) => e.code === 'JK_ERR_INVALID_IP');
    await assert.rejects(k.unban('x'), (e: JailkeeperError) => e.code === 'JK_ERR_INVALID_IP');
    await assert.rejects(
      // @ts-expect-error not a duration: refused at compile time, and at runtime for plain JavaScript
      k.ban('1.2.3.4', { duration: 'soon' }),
      (e: JailkeeperError) => e.code === 'JK_ERR_INVALID_DURATION',
    );
  });

  it('reports status like fail2ban-client', async () => {
    const { k } = keeper({ jails: { login: loginJail } });
    await k.observe(fail('18.0.0.1'));
    for (let i = 0; i < 3; i++) await k.observe(fail('18.0.0.2'));
    k.check('18.0.0.2');
    const s = await k.status();
    assert.deepEqual(
      { ...s.jails.login },
      {
        currentlyFailed: 1,
        totalFailed: 4,
        currentlyBanned: 1,
        totalBanned: 1,
        dryRun: false,
        blocked: 1,
        wouldBan: 0,
        bannedClients: ['18.0.0.2'],
        heldSlots: 0,
      },
    );
  });

  it('logs one line per ban and unban, never per blocked request', async () => {
    const lines: string[] = [];
    const logger = {
      info: (_: object, msg?: string) => lines.push(`info ${msg}`),
      warn: (_: object, msg?: string) => lines.push(`warn ${msg}`),
      error: (_: object, msg?: string) => lines.push(`error ${msg}`),
    };
    const { k } = keeper({ jails: { login: loginJail }, logger });
    for (let i = 0; i < 3; i++) await k.observe(fail('19.0.0.1'));
    for (let i = 0; i < 100; i++) k.check('19.0.0.1');
    await k.unban('19.0.0.1');
    assert.equal(lines.length, 2, lines.join('\n'));
    assert.match(lines[0] as string, /banned 19\.0\.0\.1 in login for 1h/);
    assert.match(lines[1] as string, /unbanned 19\.0\.0\.1 in login \(manual\)/);
  });

  it('refuses operations after close', async () => {
    const { k } = keeper({ jails: { login: loginJail } });
    await k.close();
    await assert.rejects(k.ban('1.2.3.4'), (e: JailkeeperError) => e.code === 'JK_ERR_CLOSED');
    assert.equal((await k.observe(fail('1.2.3.4'))).ignored, 'closed');
  });
});

describe('events', () => {
  it('carry structured data', async () => {
    const { k } = keeper({ jails: { login: loginJail } });
    const failures: unknown[] = [];
    const blocked: unknown[] = [];
    let ban: Record<string, unknown> | undefined;
    k.on('failure', (f) => failures.push(f));
    k.on('blocked', (b) => blocked.push(b));
    k.on('ban', (b) => {
      ban = { ...b };
    });
    for (let i = 0; i < 3; i++) await k.observe(fail('::ffff:20.0.0.1', { path: '/login/' }));
    k.check('20.0.0.1');
    assert.equal(failures.length, 3);
    assert.deepEqual(Object.keys(failures[0] as object).sort(), [
      'client',
      'count',
      'dryRun',
      'ip',
      'jail',
      'maxRetry',
      'method',
      'pardoned',
      'path',
      'probe',
      'route',
      'status',
    ]);
    assert.equal(ban?.client, '20.0.0.1');
    assert.equal(ban?.ip, '20.0.0.1');
    assert.equal(ban?.durationMs, 60 * MIN);
    assert.equal(ban?.origin, 'local');
    assert.equal(ban?.scope, 'app');
    assert.equal(blocked.length, 1);
  });

  it('a throwing listener neither rejects observe() nor loses the ban; it is reported once', async () => {
    const { k } = keeper({ jails: { login: { ...loginJail, maxRetry: 2 } } });
    const warnings: string[] = [];
    k.on('warning', (w) => warnings.push(w.code));
    k.on('failure', () => {
      throw new Error('listener bug');
    });
    await k.observe(fail('21.0.0.1'));
    const r = await k.observe(fail('21.0.0.1'));
    assert.equal(r.jails[0]?.action, 'banned');
    assert.equal(k.check('21.0.0.1').banned, true);
    assert.deepEqual(warnings, ['JK_WRN_LISTENER_ERROR']);
  });
});

describe('errors', () => {
  it('are JailkeeperErrors with codes', async () => {
    const { k } = keeper({ jails: { login: loginJail } });
    const error = await k.ban('nope').catch((e: unknown) => e);
    assert.ok(error instanceof JailkeeperError);
    assert.ok(!(error instanceof TypeError));
  });
});

describe('connection tracking', () => {
  it('tracks real sockets until they close, and never a stand-in that cannot close', async () => {
    const { ConnectionTracker } = await import('../src/engine/connections.js');
    const { Socket } = await import('node:net');
    const { PassThrough } = await import('node:stream');
    const tracker = new ConnectionTracker();
    const id = { ip: '1.2.3.4', key: '1.2.3.4' };
    for (let i = 0; i < 1000; i++) tracker.track(new PassThrough(), id);
    assert.equal(tracker.size, 0, 'stand-in streams are not held');
    const socket = new Socket();
    tracker.track(socket, id);
    tracker.track(socket, id);
    assert.equal(tracker.size, 1);
    assert.equal(tracker.close('1.2.3.4'), 1);
    assert.equal(socket.destroyed, true);
    const proxied = new Socket();
    tracker.track(proxied, { ...id, viaProxy: true });
    assert.equal(tracker.size, 0, "a proxy's keep-alive socket carries other clients");
    tracker.track(proxied, { ...id, viaProxy: true }, true);
    assert.equal(tracker.size, 1, 'an upgraded socket behind a proxy belongs to one client');
    proxied.destroy();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(tracker.size, 0, 'released on close');
  });
});

describe('jail-scope bans before routing (Express)', () => {
  it('no spelling of a watched path escapes the refusal', async () => {
    const { k } = keeper({
      jails: { login: { statuses: [401], paths: ['/login', '/admin/*'], maxRetry: 1, scope: 'jail' } },
    });
    await k.ban('24.0.0.1', { jail: 'login' });
    const spellings = [
      '/login',
      '/LOGIN',
      '/login/',
      '/%6Cogin',
      '/%6c%6F%67%69%6E',
      '//login',
      '/x/../login',
      '/./login',
      '/login;jsessionid=1',
      '/login?x=1',
      '/Admin/Users',
      '/admin//users/',
    ];
    for (const path of spellings) {
      assert.equal(k.check('24.0.0.1', { method: 'POST', path }).banned, true, path);
    }
    for (const path of ['/', '/logout', '/loginx', '/admin']) {
      assert.equal(k.check('24.0.0.1', { method: 'GET', path }).banned, false, `${path} is not watched`);
    }
  });
});
