/**
 * The failure judge against an attacker who steers it (issue 27): shared paths made by one holder
 * of address space, guesses in the query, probe spellings, and the order of failures. Each case
 * runs through the keeper's own observe(), as an adapter reports a response.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createJailkeeper, type JailOptions, presets } from '../src/index.js';
import { createManualClock } from '../src/operator/index.js';
import { quietLogger } from '../src/testing/helpers.js';

/** The 8 spellings of issue 27, each of a probe file name: percent-encoding, a backslash, dot segments, trailing dot and space, `;params`, NUL. */
const PROBE_SPELLINGS: ReadonlyArray<(name: string) => string> = [
  (name) => `/%${name.charCodeAt(0).toString(16)}${name.slice(1)}`,
  (name) => `/\\${name}`,
  (name) => `/%2e/${name}`,
  (name) => `/x/../${name}`,
  (name) => `/${name}.`,
  (name) => `/${name}%20`,
  (name) => `/${name};x`,
  (name) => `/${name}%00`,
];

interface Failure {
  readonly path: string;
  readonly status?: number;
  readonly route?: string | null;
  readonly query?: string;
}

function keeperWith(jail: JailOptions) {
  const clock = createManualClock(1_000_000);
  const keeper = createJailkeeper({ jails: { j: jail }, clock, logger: quietLogger });
  const fail = (client: string, f: Failure) =>
    keeper
      .observe({
        client,
        method: 'GET',
        route: f.route === undefined ? null : f.route,
        path: f.path,
        ...(f.query === undefined ? {} : { query: f.query }),
        status: f.status ?? 404,
      })
      .then((r) => r.jails[0]);
  return { keeper, clock, fail };
}

describe('the failure judge cannot be steered', () => {
  it('one IPv6 /45 (eight /48s, a new /64 every 9 paths) makes no path shared; an IPv4 scanner is banned at its 10th', async () => {
    const { keeper, clock, fail } = keeperWith(presets.scanners);
    const paths = [
      ...Array.from({ length: 20 }, (_, i) => ({ path: `/old-${i}.html` })),
      ...Array.from({ length: 20 }, (_, i) => ({ path: `/api/users/${i}`, route: '/api/users/:id' })),
    ];
    let n = 0;
    for (let net = 0; net < 8; net++) {
      for (const p of paths) {
        const sub = Math.floor(n++ / 9);
        await fail(`2001:db8:${net}:${sub}::1`, p);
        clock.advance(100);
      }
    }
    assert.deepEqual(keeper.brokenLinks(), [], 'no path is shared');
    const verdicts: string[] = [];
    for (const p of paths) {
      verdicts.push(((await fail('198.51.100.7', p)) as { action: string }).action);
      if (verdicts.at(-1) === 'banned') break;
    }
    assert.equal(verdicts.length, 10, verdicts.join());
    assert.equal(verdicts.at(-1), 'banned');
    await keeper.close();
  });

  it('eight /24s of one IPv4 /16 are one network; eight /16s make a missing file shared', async () => {
    const { keeper, fail } = keeperWith({ ...presets.scanners, maxRetry: 100 });
    for (let i = 0; i < 8; i++)
      assert.equal((await fail(`203.0.${i}.1`, { path: '/old.css' }))?.action, 'counted');
    assert.deepEqual(keeper.brokenLinks(), []);
    for (let i = 1; i < 7; i++) await fail(`100.${i}.0.1`, { path: '/old.css' });
    assert.equal((await fail('100.7.0.1', { path: '/old.css' }))?.action, 'shared', 'the 8th /16');
    await keeper.close();
  });

  it("an app route's own 404 never becomes shared, however many networks get it", async () => {
    const { keeper, fail } = keeperWith({ ...presets.scanners, maxRetry: 100 });
    for (let i = 0; i < 20; i++) {
      const o = await fail(`100.${i}.0.1`, { path: '/api/users/77', route: '/api/users/:id' });
      assert.equal(o?.action, 'counted', `network ${i}`);
    }
    assert.deepEqual(keeper.brokenLinks(), []);
    await keeper.close();
  });

  it('guesses in the query of a served route count as distinct; a repeated query, or a query on a missing file, once', async () => {
    const { keeper, fail } = keeperWith(presets.scanners);
    const route = '/download';
    assert.equal((await fail('198.51.100.1', { path: route, route, query: 'token=a' }))?.action, 'counted');
    assert.equal((await fail('198.51.100.1', { path: route, route, query: 'token=a' }))?.action, 'repeated');
    let last: string | undefined;
    for (let i = 0; i < 9 && last !== 'banned'; i++) {
      last = (await fail('198.51.100.1', { path: route, route, query: `token=g${i}` }))?.action;
    }
    assert.equal(last, 'banned', 'the 10th distinct guess bans');
    // No route took it: a cache-buster on a missing asset is the same file.
    for (let i = 0; i < 20; i++) {
      const o = await fail('198.51.100.2', { path: '/font.woff2', query: `v=${i}` });
      assert.equal(o?.action, i === 0 ? 'counted' : 'repeated');
    }
    await keeper.close();
  });

  it("distinct: 'route' still counts a served route's 404s per path (a :param guess), its 403s per route", async () => {
    const { keeper, fail } = keeperWith({ statuses: [404, 403], distinct: 'route', maxRetry: 100 });
    const route = '/files/:id';
    assert.equal((await fail('198.51.100.1', { path: '/files/1', route }))?.action, 'counted');
    assert.equal((await fail('198.51.100.1', { path: '/files/2', route }))?.count, 2, 'another id');
    assert.equal((await fail('198.51.100.1', { path: '/files/2', route }))?.action, 'repeated');
    assert.equal(
      (await fail('198.51.100.1', { path: '/docs/1', route: '/docs/:id', status: 403 }))?.count,
      3,
    );
    assert.equal(
      (await fail('198.51.100.1', { path: '/docs/2', route: '/docs/:id', status: 403 }))?.action,
      'repeated',
    );
    await keeper.close();
  });

  it('every spelling of a probe weighs as much as the plain one: the 2nd bans', async () => {
    const { keeper, fail } = keeperWith(presets.scanners);
    for (const [i, spell] of PROBE_SPELLINGS.entries()) {
      const ip = `198.51.${i}.1`;
      const first = await fail(ip, { path: spell('wp-login.php') });
      assert.deepEqual([first?.action, first?.probe], ['counted', true], spell('wp-login.php'));
      const second = await fail(ip, { path: spell('xmlrpc.php') });
      assert.equal(second?.action, 'banned', spell('xmlrpc.php'));
    }
    await keeper.close();
  });

  it("the CMS-login botnet's three requests ban in all 6 orders; a probe and an ordinary 404 ban in either order", async () => {
    const three = ['/wp-login.php', '/administrator/', '/admin.php'];
    const orders = [
      [0, 1, 2],
      [0, 2, 1],
      [1, 0, 2],
      [1, 2, 0],
      [2, 0, 1],
      [2, 1, 0],
    ];
    const { keeper, fail } = keeperWith(presets.scanners);
    for (const [k, order] of orders.entries()) {
      const actions: string[] = [];
      for (const i of order)
        actions.push(
          ((await fail(`198.51.100.${k}`, { path: three[i as number] as string })) as { action: string })
            .action,
        );
      assert.deepEqual(actions.slice(0, 2), ['counted', 'banned'], order.join());
    }
    const pair = [{ path: '/old-page' }, { path: '/.env' }];
    for (const [k, order] of [pair, [...pair].reverse()].entries()) {
      const actions: string[] = [];
      for (const f of order) actions.push(((await fail(`203.0.113.${k}`, f)) as { action: string }).action);
      assert.deepEqual(actions, ['counted', 'banned'], order.map((f) => f.path).join(' then '));
    }
    await keeper.close();
  });

  it('after findTime a probe no longer weighs on later failures', async () => {
    const { keeper, clock, fail } = keeperWith(presets.scanners);
    assert.equal((await fail('198.51.100.1', { path: '/.env' }))?.action, 'counted');
    clock.advance(10 * 60_000 + 1);
    const next = await fail('198.51.100.1', { path: '/old-page' });
    assert.deepEqual([next?.action, next?.maxRetry], ['counted', 10]);
    await keeper.close();
  });
});
