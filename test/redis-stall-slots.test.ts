/**
 * A Redis stall must not leave an owner's budget taken by attempts that ended long ago. A login
 * whose reservation was sent just as Redis stopped (SIGSTOP) misses the deadline and is answered
 * by the instance's local count; the reservation still sits on the connection, and runs when
 * Redis resumes, taking a slot that the attempt's settle (answered locally, during the outage)
 * never frees. Each such slot held its client's budget for `attempts.hold` (a minute): with three
 * instances and maxRetry 3, the owner's next login after the stall waited 5 s and was refused
 * with 429, with no ban to lift. The store now releases those slots once Redis answers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createJailkeeper } from '@jailkeeper/core';
import { contextFor, quietLogger, rule as testRule, until } from '@jailkeeper/core/testing';
import { jailkeeper } from '@jailkeeper/express';
import { createRedisStore, type RedisStore } from '@jailkeeper/redis';
import express from 'express';
import { Redis } from 'ioredis';
import request from 'supertest';
import { NO_REDIS } from './needs.js';
import { redisTestBed } from './redis-server.js';

const bed = redisTestBed();
const PASSWORD = 'correct horse';

function instance(url: string, prefix: string) {
  const client = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
  bed.clients.push(client);
  const store = createRedisStore({ client, prefix, timeout: 100 });
  const keeper = createJailkeeper({
    logger: quietLogger,
    jails: { login: { statuses: [401], paths: ['/login'], methods: ['POST'], maxRetry: 3, banTime: '1h' } },
    store,
  });
  bed.keepers.push(keeper);
  const app = express();
  app.use(express.json());
  app.use(jailkeeper(keeper));
  let runs = 0;
  app.post('/login', (req, res) => {
    runs++;
    res.status(req.body?.password === PASSWORD ? 200 : 401).end();
  });
  return { keeper, store: store as RedisStore, app, runs: () => runs };
}

const login = (app: express.Express) =>
  request(app).post('/login').set('content-type', 'application/json').send({ password: PASSWORD });

describe('slots after a Redis stall', { skip: NO_REDIS }, () => {
  it("an owner's logins sent as Redis stopped hold no slot once it resumes: her next logins go through", async () => {
    const { redis } = bed;
    const prefix = `jkstall${process.pid}:`;
    const fleet = [instance(redis.url, prefix), instance(redis.url, prefix), instance(redis.url, prefix)];
    await Promise.all(fleet.map((i) => i.keeper.ready));
    const admin = new Redis(redis.url);
    bed.clients.push(admin);
    const open = async () => {
      let n = 0;
      for (const key of await admin.keys(`${prefix}*:r:login:*`)) n += await admin.zcard(key);
      return n;
    };
    // A login on each instance while Redis runs: settled in Redis (a settle may linger 20 ms for
    // company), no slot left.
    for (const i of fleet) assert.equal((await login(i.app)).status, 200);
    await until(async () => (await open()) === 0, { what: 'no slot open before the stall' });

    redis.pause();
    try {
      // One login on each instance as Redis stops: each answered locally, after the deadline.
      const during = await Promise.all(fleet.map((i) => login(i.app)));
      assert.deepEqual(
        during.map((r) => r.status),
        [200, 200, 200],
      );
      await sleep(200);
    } finally {
      redis.resume();
    }
    await until(() => fleet.every((i) => !i.store.degraded), {
      within: 10_000,
      what: 'every instance out of the degraded state',
    });
    // The reservations queued on the connections ran as Redis resumed; their slots are released.
    await until(async () => (await open()) === 0, { what: 'no slot open in Redis' });

    // The owner's next logins, three at once on each instance: every one reaches its handler.
    const before = fleet.map((i) => i.runs());
    const started = performance.now();
    const after = await Promise.all(fleet.flatMap((i) => [login(i.app), login(i.app), login(i.app)]));
    const took = performance.now() - started;
    assert.deepEqual(
      after.map((r) => r.status),
      after.map(() => 200),
      `statuses after the stall (${took.toFixed(0)} ms)`,
    );
    assert.deepEqual(
      fleet.map((i, k) => i.runs() - (before[k] ?? 0)),
      [3, 3, 3],
    );
    await until(async () => (await open()) === 0, { what: 'no slot open once they settled' });
  });

  it('a reservation refused by the local count, whose call ran late in Redis, leaves no slot there', async (t) => {
    const { redis } = bed;
    const prefix = `jkstall${process.pid}b:`;
    const rule = testRule(); // login, maxRetry 3
    const connection = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    const admin = new Redis(redis.url);
    bed.clients.push(connection, admin);
    const store = createRedisStore({ client: connection, prefix, timeout: 100 });
    t.after(() => store.close());
    await store.init(contextFor());
    const client = '198.51.100.77';
    // Two failures seen by this instance; then Redis' count of them goes (their list deleted):
    // Redis now admits more than the instance's local count, which starts from the count it saw.
    await store.recordFailure(rule, client, 0);
    await store.recordFailure(rule, client, 0);
    for (const key of await admin.keys(`${prefix}*:f:login:${client}`)) await admin.del(key);
    const slots = async () => {
      let n = 0;
      for (const key of await admin.keys(`${prefix}*:r:login:${client}`)) n += await admin.zcard(key);
      return n;
    };
    redis.pause();
    try {
      // Two attempts at once, in one call that misses the deadline: the local count (2 seen)
      // admits one and refuses the other. In Redis (count 0) the late call admits both.
      const [first, second] = await Promise.all([
        store.reserve(rule, client, 'late-a', 60_000),
        store.reserve(rule, client, 'late-b', 60_000),
      ]);
      assert.equal(first.admitted, true);
      assert.equal(second.admitted, false);
      await store.settle(rule, client, 'late-a', false, 0); // answered locally, Redis away
      await sleep(200);
    } finally {
      redis.resume();
    }
    await until(() => !store.degraded, { within: 10_000, what: 'the store out of the degraded state' });
    await until(async () => (await slots()) === 0, { what: 'no slot left in Redis for the refused attempt' });
  });
});
