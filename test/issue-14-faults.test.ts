/**
 * Issue 14's faults, timed: a partition, a late start, FLUSHALL and a restart empty. Each asserts
 * how long after Redis answers again every instance enforces every ban (under 1 s), and that the
 * write-back changed no ban's metadata (start, end, count, manual, reason).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type BanEvent, createJailkeeper, type Jailkeeper, type JailkeeperOptions } from '@jailkeeper/core';
import type { Ban } from '@jailkeeper/core/store';
import { quietLogger, until } from '@jailkeeper/core/testing';
import { createRedisStore, type RedisStore } from '@jailkeeper/redis';
import { Redis } from 'ioredis';
import { NO_REDIS } from './needs.js';
import { type StoredBan, storedBans } from './redis-bans.js';
import { redisTestBed, startRedis } from './redis-server.js';
import { TcpProxy } from './tcp-proxy.js';

const bed = redisTestBed();
const { clients, keepers } = bed;
let run = 0;

const JAILS: JailkeeperOptions['jails'] = {
  login: { statuses: [401], maxRetry: 2, banTime: '20m', banTimeIncrement: true },
};
const fail = (ip: string) => ({ client: ip, method: 'POST', path: '/login', status: 401 });

function client(url: string): Redis {
  // As the README sets it up: one retry per command, a quick reconnection.
  const c = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
  clients.push(c);
  return c;
}

interface Instance {
  keeper: Jailkeeper;
  store: RedisStore;
  /** The bans this instance made, as it announced them (origin local). */
  made: Ban[];
}

function instance(url: string, prefix: string, startTimeout?: number): Instance {
  const store = createRedisStore({
    client: client(url),
    prefix,
    timeout: 200,
    ...(startTimeout ? { startTimeout } : {}),
  });
  const keeper = createJailkeeper({ jails: JAILS, logger: quietLogger, store });
  keepers.push(keeper);
  const made: Ban[] = [];
  keeper.on('ban', (b: BanEvent) => {
    if (b.origin === 'local') made.push(b);
  });
  return { keeper, store, made };
}

/** Bans `client` through failures (an automatic ban). */
async function autoBan(i: Instance, ip: string): Promise<void> {
  for (let k = 0; k < 2; k++) await i.keeper.observe(fail(ip));
}

const keyOf = (b: { jail: string; client: string }) => `${b.jail}|${b.client}`;
const meta = (b: Ban | StoredBan) => ({
  startMs: b.startMs,
  endMs: b.endMs,
  banCount: b.banCount,
  manual: b.manual,
  reason: b.reason,
});

/** The active bans Redis holds, by jail and client. */
async function inRedis(admin: Redis, prefix: string): Promise<Map<string, StoredBan>> {
  const now = Number((await admin.time())[0]) * 1000;
  return new Map((await storedBans(admin, prefix)).filter((b) => b.endMs > now).map((b) => [keyOf(b), b]));
}

/** True when Redis holds exactly these bans with these metadata. */
async function holds(admin: Redis, prefix: string, bans: readonly Ban[]): Promise<boolean> {
  const stored = await inRedis(admin, prefix);
  return bans.every((b) => {
    const s = stored.get(keyOf(b));
    return s !== undefined && JSON.stringify(meta(s)) === JSON.stringify(meta(b));
  });
}

const enforcesAll = (instances: Instance[], bans: readonly Ban[]) =>
  instances.every((i) => bans.every((b) => i.keeper.check(b.client).banned));

/** A fleet's bans: automatic, escalated (a second ban), manual and permanent. */
async function fleetBans(a: Instance, b: Instance, tag: number): Promise<Ban[]> {
  for (let k = 0; k < 8; k++) await autoBan(k % 2 ? a : b, `198.18.${tag}.${k + 1}`);
  await b.keeper.unban(`198.18.${tag}.1`);
  await autoBan(a, `198.18.${tag}.1`); // banCount 2: escalated to 40 min
  await a.keeper.ban(`198.18.${tag}.20`, { duration: '3h', reason: 'ticket 4411' });
  await b.keeper.ban(`198.18.${tag}.21`, { duration: 'permanent' });
  await a.keeper.ban(`2001:db8:${tag}::1`, { jail: 'login', duration: '2h' });
  return [...(await a.keeper.bans())];
}

describe('faults, timed from the moment Redis answers again', { skip: NO_REDIS }, () => {
  it('partition: the cut-off instance enforces the bans it missed, and its own bans reach Redis unchanged, within 1 s', async () => {
    const prefix = `jk14f-${process.pid}-${run++}:`;
    const proxy = new TcpProxy(bed.redis.port);
    const port = await proxy.listen();
    try {
      const a = instance(`redis://127.0.0.1:${port}`, prefix);
      const b = instance(bed.redis.url, prefix);
      await Promise.all([a.keeper.ready, b.keeper.ready]);
      const before = await fleetBans(a, b, 1);
      proxy.cut();
      await a.keeper.observe(fail('198.18.1.100')); // finds Redis gone
      await until(() => a.store.degraded, { within: 3000 });
      // Cut off: the fleet bans 20 clients A does not hear of; A bans 3 on its own.
      for (let k = 0; k < 20; k++) await autoBan(b, `198.18.2.${k + 1}`);
      const madeBefore = a.made.length;
      for (let k = 0; k < 3; k++) await autoBan(a, `198.18.3.${k + 1}`);
      const aLocal = a.made.slice(madeBefore);
      assert.equal(aLocal.length, 3);
      const missed = (await b.keeper.bans()).filter((x) => x.client.startsWith('198.18.2.'));
      assert.equal(missed.length, 20);
      assert.ok(!missed.some((x) => a.keeper.check(x.client).banned), 'A missed them');

      const admin = client(bed.redis.url);
      const answered = Date.now();
      proxy.restore();
      await until(
        async () =>
          enforcesAll([a], missed) && enforcesAll([b], aLocal) && (await holds(admin, prefix, aLocal)),
        { within: 5000, every: 5 },
      );
      const ms = Date.now() - answered;
      assert.ok(ms < 1000, `every instance enforced every ban ${ms} ms after Redis answered`);
      assert.ok(await holds(admin, prefix, [...before, ...missed]), 'no ban rewritten by the write-back');
      assert.ok(await holds(admin, prefix, aLocal), 'A’s bans kept their start, count, origin');
      console.log(`# partition: in step ${ms} ms after Redis answered`);
    } finally {
      await proxy.close();
    }
  });

  it('late start: an instance started while Redis was unreachable enforces the fleet’s bans within 1 s of Redis answering', async () => {
    const prefix = `jk14f-${process.pid}-${run++}:`;
    const a = instance(bed.redis.url, prefix);
    const b = instance(bed.redis.url, prefix);
    await Promise.all([a.keeper.ready, b.keeper.ready]);
    const fleet = await fleetBans(a, b, 4);
    const proxy = new TcpProxy(bed.redis.port);
    const port = await proxy.listen();
    proxy.cut();
    try {
      const late = instance(`redis://127.0.0.1:${port}`, prefix, 300);
      await late.keeper.ready;
      assert.equal(late.store.degraded, true);
      assert.ok(!fleet.some((x) => late.keeper.check(x.client).banned), 'none known yet');
      await autoBan(late, '198.18.5.1');
      const own = late.made.slice();
      const admin = client(bed.redis.url);
      const answered = Date.now();
      proxy.restore();
      await until(
        async () =>
          enforcesAll([late], fleet) && enforcesAll([a, b], own) && (await holds(admin, prefix, own)),
        { within: 5000, every: 5 },
      );
      const ms = Date.now() - answered;
      assert.ok(ms < 1000, `enforced ${ms} ms after Redis answered`);
      assert.ok(await holds(admin, prefix, fleet), 'the fleet’s bans unchanged');
      console.log(`# late start: in step ${ms} ms after Redis answered`);
    } finally {
      await proxy.close();
    }
  });

  it('FLUSHALL: every instance keeps enforcing; Redis holds every ban again, unchanged, and escalation is not inflated', async () => {
    const prefix = `jk14f-${process.pid}-${run++}:`;
    const a = instance(bed.redis.url, prefix);
    const b = instance(bed.redis.url, prefix);
    await Promise.all([a.keeper.ready, b.keeper.ready]);
    const fleet = await fleetBans(a, b, 6);
    const admin = client(bed.redis.url);
    assert.ok(await holds(admin, prefix, fleet));
    const flushed = Date.now();
    await admin.flushall();
    await admin.script('FLUSH');
    assert.ok(enforcesAll([a, b], fleet), 'enforced throughout');
    await until(() => holds(admin, prefix, fleet), { within: 5000, every: 5 });
    const ms = Date.now() - flushed;
    assert.ok(ms < 2000, `Redis held every ban again ${ms} ms after FLUSHALL (one reconcile: 1 s)`);
    assert.ok(enforcesAll([a, b], fleet));
    // Written back once, not once per instance: the escalated client's count is still 2, and its
    // next ban is the third, at 80 minutes: as if Redis had never lost anything.
    const escalated = (await inRedis(admin, prefix)).get('login|198.18.6.1');
    assert.deepEqual([escalated?.banCount, escalated?.manual], [2, false]);
    await a.keeper.unban('198.18.6.1');
    await autoBan(b, '198.18.6.1');
    const third = (await b.keeper.bans()).find((x) => x.client === '198.18.6.1');
    assert.deepEqual([third?.banCount, third && third.endMs - third.startMs], [3, 80 * 60_000]);
    // A new instance sees them all.
    const c = instance(bed.redis.url, prefix);
    await c.keeper.ready;
    assert.ok(
      enforcesAll(
        [c],
        fleet.filter((x) => x.client !== '198.18.6.1'),
      ),
    );
    console.log(`# FLUSHALL: Redis whole again ${ms} ms after it`);
  });

  it('restart empty: bans from before the restart and bans made while Redis was down, everywhere and unchanged, within 1 s', async (t) => {
    if (process.env.REDIS_URL) return t.skip('a shared external Redis is never restarted by the tests');
    const own = await startRedis();
    try {
      const prefix = `jk14f-${process.pid}-${run++}:`;
      const a = instance(own.url, prefix);
      const b = instance(own.url, prefix);
      await Promise.all([a.keeper.ready, b.keeper.ready]);
      const fleet = await fleetBans(a, b, 7);
      await own.kill();
      await a.keeper.observe(fail('198.18.8.100'));
      await b.keeper.observe(fail('198.18.8.101'));
      await until(() => a.store.degraded && b.store.degraded, { within: 3000 });
      const madeBefore = a.made.length;
      await autoBan(a, '198.18.8.1');
      await a.keeper.ban('198.18.8.2', { duration: '1h', reason: 'while down' });
      const whileDown = a.made.slice(madeBefore);
      assert.equal(whileDown.length, 2);
      await own.restart();
      const answered = Date.now();
      const admin = client(own.url);
      const all = [...fleet, ...whileDown];
      await until(async () => enforcesAll([a, b], all) && (await holds(admin, prefix, all)), {
        within: 5000,
        every: 5,
      });
      const ms = Date.now() - answered;
      assert.ok(
        ms < 1000,
        `every instance enforced every ban, and Redis held them, ${ms} ms after Redis answered`,
      );
      assert.equal((await inRedis(admin, prefix)).size, all.length, 'nothing more, nothing less');
      console.log(`# restart empty: in step ${ms} ms after Redis answered`);
    } finally {
      await own.stop();
    }
  });
});
