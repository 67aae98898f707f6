/**
 * The Redis store's pages of bans hold at most `limit` bans (issue 26: a page used to be whole
 * pipelines of 16 shards, about 15,600 bans at a million), and a walk from cursor to cursor lists
 * every ban exactly once, a client's bans split over two pages when the limit falls between them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createJailkeeper } from '@jailkeeper/core';
import type { Ban } from '@jailkeeper/core/store';
import { quietLogger, until } from '@jailkeeper/core/testing';
import { createRedisStore, type RedisStore } from '@jailkeeper/redis';
import { Redis } from 'ioredis';
import { QUICK_STORE, startRedis, type TestRedis } from './redis-server.js';

let redis: TestRedis;
let client: Redis;
let store: RedisStore;
const CLIENTS = 1200;
const TWICE = 400; // clients banned in two jails

before(async () => {
  redis = await startRedis();
  client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  store = createRedisStore({ client, prefix: `jkpage${process.pid}:`, loadBans: false, timeout: 2000 });
  await store.init({
    clock: { now: () => Date.now() },
    onBan() {},
    onUnban() {},
    isIgnored: () => false,
    warn: (code, message) => quietLogger.warn({ code }, message),
  });
  const bans: Promise<Ban>[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const ip = `198.18.${i >> 8}.${i & 255}`;
    const input = { client: ip, durationMs: 3_600_000, reason: 'test', historyTimeMs: 86_400_000 };
    bans.push(store.ban({ ...input, jail: 'login' }));
    if (i < TWICE) bans.push(store.ban({ ...input, jail: 'api' }));
    if (bans.length >= 200) await Promise.all(bans.splice(0));
  }
  await Promise.all(bans);
});
after(async () => {
  await store.close();
  client.disconnect();
  await redis.stop();
});

/** Walks every page; asserts each holds at most `limit`. */
async function walk(limit: number, jail?: string): Promise<{ bans: Ban[]; pages: number }> {
  const bans: Ban[] = [];
  let after: string | undefined;
  let pages = 0;
  do {
    const page = await store.bansPage({ limit, after, ...(jail === undefined ? {} : { jail }) });
    pages++;
    assert.ok(page.bans.length <= limit, `page ${pages}: ${page.bans.length} bans, limit ${limit}`);
    if (page.next !== undefined)
      assert.equal(page.bans.length, limit, `page ${pages} is short but not the last`);
    bans.push(...page.bans);
    after = page.next;
    assert.ok(pages < 10_000, 'the walk never ends');
  } while (after !== undefined);
  return { bans, pages };
}

const keyOf = (b: Ban) => `${b.jail} ${b.client}`;

describe('Redis bansPage({ limit })', () => {
  for (const limit of [1, 7, 100, 1000, 5000]) {
    it(`limit ${limit}: every page at most ${limit}, every ban listed exactly once`, async () => {
      const { bans, pages } = await walk(limit);
      const keys = bans.map(keyOf);
      assert.equal(new Set(keys).size, keys.length, 'a ban listed twice');
      assert.equal(keys.length, CLIENTS + TWICE);
      assert.equal(pages, Math.ceil((CLIENTS + TWICE) / limit));
    });
  }

  it('one jail: only its bans, at most limit a page', async () => {
    const { bans } = await walk(64, 'api');
    assert.equal(bans.length, TWICE);
    assert.ok(bans.every((b) => b.jail === 'api'));
  });

  it('a cursor of the older form (a shard number) still resumes after that shard', async () => {
    const all = await walk(5000);
    const first = await store.bansPage({ limit: 5000, after: '1023' });
    assert.deepEqual(first.bans, []);
    const rest = await store.bansPage({ limit: 5000, after: '0' });
    assert.ok(rest.bans.length < all.bans.length && rest.bans.length > 0);
  });

  it('a cursor that is not one of ours gives an empty last page', async () => {
    assert.deepEqual(await store.bansPage({ limit: 10, after: 'x' }), { bans: [] });
    assert.deepEqual(await store.bansPage({ limit: 10, after: '3/nojailsep' }), { bans: [] });
  });
});

describe('Redis status(): bans per jail without reading every ban at once', () => {
  it('without a local copy of the bans (a store used outside a keeper), counts them page by page', async () => {
    const status = await store.status(['login', 'api', 'none']);
    assert.equal(status.login?.currentlyBanned, CLIENTS);
    assert.equal(status.api?.currentlyBanned, TWICE);
    assert.equal(status.none?.currentlyBanned, 0);
  });

  it("in a keeper, counts the bans it enforces (its copy of the fleet's), ended ones left out", async () => {
    const now = Date.now();
    const held = (i: number, endMs: number): Ban => ({
      jail: 'login',
      client: `198.19.${i >> 8}.${i & 255}`,
      startMs: now,
      endMs,
      banCount: 1,
      reason: 'test',
      manual: false,
    });
    const local = [
      ...Array.from({ length: 9000 }, (_, i) => held(i, now + 3_600_000)),
      ...Array.from({ length: 10 }, (_, i) => held(i, now - 1)), // ended, not yet swept
    ];
    const other = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    const second = createRedisStore({
      client: other,
      prefix: `jkpage${process.pid}:`,
      loadBans: false,
      timeout: 2000,
    });
    await second.init({
      clock: { now: () => Date.now() },
      onBan() {},
      onUnban() {},
      isIgnored: () => false,
      warn: (code, message) => quietLogger.warn({ code }, message),
      activeBans: () => local,
    });
    const status = await second.status(['login', 'api']);
    // The local copy, not Redis' 1,200 and 400: no ban was read from Redis for the count.
    assert.equal(status.login?.currentlyBanned, 9000);
    assert.equal(status.api?.currentlyBanned, 0);
    await second.close();
    other.disconnect();
  });

  it('while Redis is away, a walk lists the bans the keeper enforces, each once, from a cursor into its index', async (t) => {
    if (process.env.REDIS_URL) return t.skip('a shared external Redis is never stopped by the tests');
    const other = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    const keeper = createJailkeeper({
      jails: {
        login: { statuses: [401], maxRetry: 5, banTime: '1h' },
        api: { statuses: [403], maxRetry: 5 },
      },
      logger: quietLogger,
      store: createRedisStore({ client: other, prefix: `jkaway${process.pid}:`, ...QUICK_STORE }),
    });
    await keeper.ready;
    const HELD = 2500;
    for (let i = 0; i < HELD; i++) {
      await keeper.ban(`198.20.${i >> 8}.${i & 255}`, {
        jail: i % 5 === 0 ? 'api' : 'login',
        duration: '1h',
      });
    }
    // Two bans that end soon: enforced now, then not, and never listed once ended.
    await keeper.ban('198.21.0.1', { jail: 'login', duration: '1ms' });
    redis.pause();
    try {
      // A failure counted now misses the store's deadline: the store goes degraded.
      await keeper.observe({
        client: '198.22.0.1',
        method: 'POST',
        path: '/login',
        route: '/login',
        status: 401,
      });
      await until(() => keeper.store.degraded === true, { what: 'the store going degraded' });
      const walk = async (limit: number, jail?: string) => {
        const seen: string[] = [];
        let after: string | undefined;
        let pages = 0;
        do {
          const page = await keeper.bansPage({ limit, after, ...(jail === undefined ? {} : { jail }) });
          assert.ok(page.bans.length <= limit, `a page of ${page.bans.length}, limit ${limit}`);
          for (const ban of page.bans) seen.push(`${ban.jail}/${ban.client}`);
          after = page.next;
          assert.ok(++pages < 10_000, 'the walk never ends');
        } while (after !== undefined);
        return { seen, pages };
      };
      for (const limit of [1, 7, 1000, 5000]) {
        const { seen, pages } = await walk(limit);
        assert.equal(new Set(seen).size, seen.length, `limit ${limit}: a ban listed twice`);
        assert.equal(
          seen.length,
          HELD,
          `limit ${limit}: every ban the keeper enforces, the ended one left out`,
        );
        assert.ok(pages >= Math.ceil(HELD / limit), `limit ${limit}: ${pages} pages`);
      }
      const api = await walk(100, 'api');
      assert.equal(api.seen.length, HELD / 5);
      assert.ok(api.seen.every((s) => s.startsWith('api/')));
    } finally {
      redis.resume();
      await keeper.close();
      other.disconnect();
    }
  });
});
