/**
 * A heal interrupted by a second data loss (issue 25): an instance takes the 1,024 versions while
 * a shard it holds bans in has just been recreated (a new epoch, another instance's new ban in it),
 * and reads that shard only after Redis lost it again (a kill -9 or a FLUSHALL arriving during a
 * long pass), while another instance holds the restore lease. Once the lease ends, the bans it
 * holds there must be written back: nothing else ever will (a new instance would not know them).
 * Seen in the recovery test at load 4.7-7.6: three whole shards, 262 bans, missing for good, each
 * instance still enforcing them. The moment is forced here: the shard is deleted and the lease
 * taken just before the store's read of that shard is sent.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createJailkeeper, type Jailkeeper } from '@jailkeeper/core';
import { quietLogger, until } from '@jailkeeper/core/testing';
import { createRedisStore } from '@jailkeeper/redis';
import { Redis } from 'ioredis';
import { NO_REDIS } from './needs.js';
import { holdsBanOf, seedBans, shardOf } from './redis-bans.js';
import { startRedis, type TestRedis } from './redis-server.js';

let redis: TestRedis;
const connections: Redis[] = [];
const keepers: Jailkeeper[] = [];

before(async () => {
  if (NO_REDIS) return;
  redis = await startRedis();
});
after(async () => {
  await Promise.all(keepers.map((k) => k.close()));
  for (const c of connections) c.disconnect();
  await redis?.stop();
});

/** Queued commands of an ioredis pipeline (its internal queue: what exec() is about to send). */
type Queued = { args: unknown[] };

describe('a heal interrupted by a second data loss', { skip: NO_REDIS }, () => {
  it('a renewed shard read while absent, the lease held elsewhere: its bans are written back once the lease ends', async () => {
    const prefix = `jkinterrupt${process.pid}:`;
    const admin = new Redis(redis.url);
    connections.push(admin);
    // Ten clients of one shard, banned before the instance starts (it loads them).
    const candidates = Array.from(
      { length: 30_000 },
      (_, i) => `10.${70 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
    );
    const n = shardOf(candidates[0] as string);
    const held = candidates.filter((c) => shardOf(c) === n).slice(0, 10);
    const other = candidates.filter((c) => shardOf(c) === n)[10] as string;
    assert.equal(held.length, 10);
    await seedBans(admin, prefix, 'login', held, 3_600_000);
    const bansKey = `${prefix}{s${n}}:b`;
    const versionKey = `${prefix}{s${n}}:v`;

    // The instance's client: its bulk connection (a duplicate) gets a hook that runs just before
    // a pipeline reading shard n is sent, once armed.
    let hook: (() => Promise<void>) | undefined;
    let fired = 0;
    const client = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    client.on('error', () => {});
    connections.push(client);
    const duplicate = client.duplicate.bind(client);
    client.duplicate = ((...args: Parameters<Redis['duplicate']>) => {
      const copy = duplicate(...args);
      connections.push(copy);
      const pipeline = copy.pipeline.bind(copy);
      copy.pipeline = ((...p: Parameters<Redis['pipeline']>) => {
        const pipe = pipeline(...p);
        const exec = pipe.exec.bind(pipe);
        pipe.exec = (async (...e: Parameters<typeof pipe.exec>) => {
          const queue = (pipe as unknown as { _queue: Queued[] })._queue;
          const run = hook;
          if (run !== undefined && queue.some((q) => q.args.includes(bansKey))) {
            hook = undefined;
            await run();
            fired++;
          }
          return exec(...e);
        }) as typeof pipe.exec;
        return pipe;
      }) as typeof copy.pipeline;
      return copy;
    }) as typeof client.duplicate;

    const store = createRedisStore({
      client,
      prefix,
      timeout: 100,
      probeInterval: 100,
      reconcileInterval: 200,
    });
    const keeper = createJailkeeper({
      jails: { login: { statuses: [401], maxRetry: 3, banTime: '1h' } },
      logger: quietLogger,
      store,
    });
    keepers.push(keeper);
    await keeper.ready;
    await until(() => held.every((c) => keeper.check(c).banned), {
      within: 5000,
      what: 'the seeded bans loaded',
    });

    // Just before the instance reads the shard: Redis loses it again, and another instance holds
    // the restore lease (its restore under way) for a moment.
    hook = async () => {
      await admin.del(bansKey, versionKey);
      await admin.set(`${prefix}restore`, 'another-instance', 'PX', 300);
    };
    // The shard recreated in a new epoch, holding only another client's ban (another instance's
    // new ban after a data loss): this instance finds it renewed and reads it.
    const now = Number((await admin.time())[0]) * 1000;
    await admin.del(bansKey, versionKey);
    await admin.hset(
      bansKey,
      other,
      `login|${now}|${now + 3_600_000}|1|0|maxRetry (3) failures`,
      '#x',
      now + 3_600_000,
    );
    await admin.set(versionKey, `${now}123:1`);
    await admin.pexpire(bansKey, 7_200_000);
    await admin.pexpire(versionKey, 7_200_000);

    await until(() => fired === 1, { within: 5000, what: 'the read of the renewed shard' });
    assert.ok(
      held.every((c) => keeper.check(c).banned),
      'the instance still enforces its bans',
    );
    // The lease ends 300 ms later; then every ban the instance holds is back in Redis.
    await until(
      async () => (await Promise.all(held.map((c) => holdsBanOf(admin, prefix, c)))).every(Boolean),
      {
        within: 5000,
        what: "the instance's bans back in Redis",
      },
    );
    const ttl = await admin.pttl(bansKey);
    assert.ok(ttl > 0, `the restored shard has an expiry (${ttl})`);
    assert.equal(store.degraded, false);
  });
});
