import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JailkeeperError } from '@jailkeeper/core';
import type { Ban } from '@jailkeeper/core/store';
import { createBanPager, parseBanQuery } from '../src/ban-pager.js';
import { sortByKeys, sortIndices } from '../src/ban-sort.js';

const NOW = 1_800_000_000_000;
function ban(client: string, i: number, extra: Partial<Ban> = {}): Ban {
  return {
    jail: i % 2 === 0 ? 'login' : 'scan',
    client,
    startMs: NOW - i * 1000,
    endMs: NOW + ((i * 7919) % 1000) * 1000,
    banCount: 1 + (i % 4),
    reason: i % 10 === 0 ? 'Credential Stuffing' : 'maxRetry',
    manual: false,
    ...extra,
  };
}

// 2,000 IPv4 clients in a scrambled order, three IPv6 prefixes, one permanent ban.
const BANS: Ban[] = [];
for (let k = 0; k < 2000; k++) {
  const i = (k * 7) % 2000;
  BANS.push(ban(`10.${i >> 8}.${i & 255}.1`, i));
}
BANS.push(ban('2001:db8:1:2::/64', 2000), ban('2001:db8:ffff:1::/64', 2001), ban('2001:db9::/64', 2002));
BANS.push(ban('192.0.2.1', 2003, { endMs: Number.POSITIVE_INFINITY }));

const ip = (client: string) => client.split('.').reduce((n, o) => n * 256 + Number(o), 0);

describe('ban pager', () => {
  it('pages in every order, ascending and descending, the same as a full sort', async () => {
    const pager = createBanPager(() => BANS);
    const expected: Record<string, (a: Ban, b: Ban) => number> = {
      endMs: (a, b) => a.endMs - b.endMs,
      startMs: (a, b) => a.startMs - b.startMs,
      banCount: (a, b) => a.banCount - b.banCount,
      jail: (a, b) => (a.jail < b.jail ? -1 : a.jail > b.jail ? 1 : 0),
    };
    for (const [sort, compare] of Object.entries(expected)) {
      const all: Ban[] = [];
      for (let offset = 0; offset < BANS.length; offset += 500) {
        const page = await pager.page({ sort: sort as never, offset, limit: 500 });
        assert.equal(page.total, BANS.length);
        all.push(...page.bans);
      }
      assert.equal(new Set(all).size, BANS.length, `${sort}: every ban once`);
      for (let i = 1; i < all.length; i++) {
        assert.ok(compare(all[i - 1] as Ban, all[i] as Ban) <= 0, `${sort} at ${i}`);
      }
      const desc = await pager.page({ sort: sort as never, order: 'desc', limit: 3 });
      assert.deepEqual(desc.bans, all.slice(-3).reverse(), `${sort} descending`);
    }
    const permanent = await pager.page({ sort: 'endMs', order: 'desc', limit: 1 });
    assert.equal(permanent.bans[0]?.client, '192.0.2.1', 'a permanent ban ends last');
  });

  it('orders addresses as numbers, IPv6 after IPv4', async () => {
    const pager = createBanPager(() => BANS);
    const { bans } = await pager.page({ sort: 'client', limit: 500, offset: 1600 });
    const v4 = bans.filter((b) => !b.client.includes(':'));
    for (let i = 1; i < v4.length; i++) assert.ok(ip((v4[i - 1] as Ban).client) < ip((v4[i] as Ban).client));
    assert.deepEqual(
      bans.slice(-3).map((b) => b.client),
      ['2001:db8:1:2::/64', '2001:db8:ffff:1::/64', '2001:db9::/64'],
    );
    assert.equal(bans.at(-4)?.client, '192.0.2.1');
  });

  it('searches by address, by network (IPv4 and IPv6), by text in the client or reason, and by jail', async () => {
    const pager = createBanPager(() => BANS);
    const clients = async (q: string, jail?: string) =>
      (await pager.page({ q, jail, limit: 500 })).bans.map((b) => b.client).sort();
    assert.deepEqual(await clients('10.3.7.1'), ['10.3.7.1']);
    assert.equal((await pager.page({ q: '10.3.0.0/16' })).total, 256);
    assert.equal((await pager.page({ q: '10.3.7.0/24' })).total, 1);
    assert.deepEqual(await clients('2001:db8::/32'), ['2001:db8:1:2::/64', '2001:db8:ffff:1::/64']);
    assert.deepEqual(await clients('2001:db8:1:2::99'), ['2001:db8:1:2::/64'], 'an address inside a /64 key');
    assert.deepEqual(await clients('2001:db8:1::/48'), ['2001:db8:1:2::/64']);
    assert.equal((await pager.page({ q: 'stuffing' })).total, 201, 'case-insensitive, in reasons');
    assert.equal(
      (await pager.page({ q: '10.7.1' })).total,
      111,
      'part of an address: 10.7.1.1, 10.7.1x.1, 10.7.1xx.1',
    );
    assert.equal((await pager.page({ q: 'stuffing', jail: 'scan' })).total, 0);
    assert.equal((await pager.page({ jail: 'scan' })).total, 1002);
    const searched = await pager.page({ q: '10.3.0.0/16', sort: 'client', offset: 250, limit: 10 });
    assert.deepEqual(
      searched.bans.map((b) => b.client),
      ['10.3.250.1', '10.3.251.1', '10.3.252.1', '10.3.253.1', '10.3.254.1', '10.3.255.1'],
    );
  });

  it('takes a new snapshot after invalidate(), and says when a page may be stale', async () => {
    const list = [ban('203.0.113.1', 1)];
    const pager = createBanPager(() => list);
    assert.equal((await pager.page({})).total, 1);
    list.push(ban('203.0.113.2', 2));
    assert.equal((await pager.page({})).total, 1, 'the snapshot is kept until bans change');
    pager.invalidate();
    // Right after a build the snapshot may be reused, marked stale, for twice the build's time and
    // at most 2 s; never silently. A slow first build (a loaded CI machine) makes that window longer
    // than a few turns of the event loop, so wait by the clock, past the 2 s cap.
    const deadline = performance.now() + 3000;
    let page = await pager.page({});
    while (page.total === 1 && performance.now() < deadline) {
      assert.equal(page.stale, true, 'an old snapshot is marked stale');
      await new Promise((resolve) => setTimeout(resolve, 5));
      page = await pager.page({});
    }
    assert.equal(page.total, 2);
    assert.equal(page.stale, false);
  });

  it('reads the query string with coded errors', () => {
    const q = parseBanQuery(
      new URLSearchParams('q=%2010.0.0.1%20&sort=client&order=desc&offset=50&limit=25&jail=login'),
    );
    assert.deepEqual(q, {
      jail: 'login',
      q: '10.0.0.1',
      sort: 'client',
      order: 'desc',
      offset: 50,
      limit: 25,
    });
    for (const bad of [
      'limit=0',
      'limit=501',
      'offset=-1',
      'offset=1e3',
      'sort=reason',
      'order=up',
      `q=${'x'.repeat(101)}`,
    ]) {
      assert.throws(
        () => parseBanQuery(new URLSearchParams(bad)),
        (e: unknown) => e instanceof JailkeeperError && e.code === 'JK_ERR_BAD_REQUEST',
        bad,
      );
    }
  });

  it('sorts keys whose range is too wide to pack, keeping their order', async () => {
    const keys = Float64Array.from([5e15, -3, 1, 7e14, 1, 0]);
    assert.deepEqual([...(await sortByKeys(keys))], [1, 5, 2, 4, 3, 0]);
  });
});

describe('sorting in slices', () => {
  /** Counts turns of the event loop while `work` runs. */
  async function turnsDuring<T>(work: () => Promise<T>): Promise<{ result: T; turns: number }> {
    let turns = 0;
    let running = true;
    const tick = () => {
      turns++;
      if (running) setImmediate(tick);
    };
    setImmediate(tick);
    const result = await work();
    running = false;
    return { result, turns };
  }

  it('sortIndices orders 20,000 strings as a native sort does, the loop turning between runs', async () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed;
    };
    const texts = Array.from({ length: 20_000 }, () => `2001:db8:${(random() % 65536).toString(16)}::/64`);
    const byText = (a: number, b: number) => ((texts[a] as string) < (texts[b] as string) ? -1 : 1);
    const { result, turns } = await turnsDuring(() => sortIndices([...texts.keys()], byText));
    const expected = [...texts.keys()].sort(byText).map((i) => texts[i]);
    assert.deepEqual(
      result.map((i) => texts[i]),
      expected,
    );
    assert.ok(turns >= 9, `${turns} turns`); // 10 runs of 2,048, then the merges
  });

  it('sortByKeys on keys too far apart to pack (ranked first) keeps the order, in slices', async () => {
    const n = 200_000;
    const keys = new Float64Array(n);
    for (let i = 0; i < n; i++) keys[i] = ((i * 7919) % n) * 1e9; // a range far over 2^35
    const { result, turns } = await turnsDuring(() => sortByKeys(keys));
    for (let k = 1; k < n; k++)
      assert.ok((keys[result[k - 1] as number] as number) <= (keys[result[k] as number] as number));
    assert.equal(new Set(result).size, n);
    assert.ok(turns >= 4, `${turns} turns`);
  });
});
