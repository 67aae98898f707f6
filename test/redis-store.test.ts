import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createJailkeeper, type JailkeeperOptions } from '@jailkeeper/core';
import { createManualClock } from '@jailkeeper/core/operator';
import { quietLogger, until } from '@jailkeeper/core/testing';
import { createRedisStore } from '@jailkeeper/redis';
import { Redis } from 'ioredis';
import { NO_REDIS } from './needs.js';
import { activeIn } from './redis-bans.js';
import { downPort, monitorRedis, redisTestBed, startRedis } from './redis-server.js';

const bed = redisTestBed();
const { clients, keepers } = bed;
let run = 0;

const JAILS: JailkeeperOptions['jails'] = {
  login: { statuses: [401], paths: ['/login'], maxRetry: 5, banTime: '1h' },
};

function client(url = bed.redis.url): Redis {
  const c = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  c.on('error', () => {});
  clients.push(c);
  return c;
}

async function keeper(prefix: string, extra: Partial<JailkeeperOptions> = {}, storeOptions = {}) {
  const store = createRedisStore({ client: client(), prefix, timeout: 500, ...storeOptions });
  const k = createJailkeeper({ jails: JAILS, logger: quietLogger, store, ...extra });
  keepers.push(k);
  await k.ready;
  return k;
}

const fail = (ip: string) => ({ client: ip, method: 'POST', route: '/login', path: '/login', status: 401 });

describe('redis store: one jail for every instance', { skip: NO_REDIS }, () => {
  it('failures spread over instances ban at exactly maxRetry, and every instance refuses', async () => {
    const prefix = `jks${process.pid}-${run++}:`;
    const [a, b, c] = [await keeper(prefix), await keeper(prefix), await keeper(prefix)];
    const order = [a, b, c, b, a];
    const actions: string[] = [];
    for (const k of order) actions.push((await k.observe(fail('203.0.113.5'))).jails[0]?.action ?? '');
    assert.deepEqual(actions, ['counted', 'counted', 'counted', 'counted', 'banned']);
    const ms = await until(() => b.check('203.0.113.5').banned && c.check('203.0.113.5').banned, {
      within: 2000,
    });
    assert.ok(ms < 500, `propagated in ${ms} ms`);
  });

  it('a manual unban on one instance reaches every instance', async () => {
    const prefix = `jks${process.pid}-${run++}:`;
    const [a, b] = [await keeper(prefix), await keeper(prefix)];
    await a.ban('203.0.113.6', { duration: '1h' });
    await until(() => b.check('203.0.113.6').banned, { within: 2000 });
    await b.unban('203.0.113.6');
    await until(() => !a.check('203.0.113.6').banned, { within: 2000 });
    assert.deepEqual(await a.bans(), []);
  });

  it('a clean request never touches Redis', async () => {
    const prefix = `jks${process.pid}-${run++}:`;
    const a = await keeper(prefix);
    // Every command Redis runs meanwhile, as MONITOR shows it. The keepers' own background work
    // goes on (the reconcile's versions, the watch of four shards every 100 ms): what must not
    // appear is a command for one of these clients.
    const monitor = await monitorRedis(bed.redis.url);
    const seen = monitor.commands;
    try {
      await client().ping(); // the commands before this one are not this test's
      await until(() => seen.some((args) => args[0]?.toLowerCase() === 'ping'));
      const from = seen.length;
      for (let i = 0; i < 10_000; i++) {
        const id = a.identify(`198.51.100.${i & 255}`);
        assert.ok(id);
        a.check(id);
        await a.observe({ client: id, method: 'GET', route: '/', path: '/', status: 200 });
      }
      await client().ping();
      await until(() => seen.slice(from).some((args) => args[0]?.toLowerCase() === 'ping'));
      seen.splice(0, from);
    } finally {
      monitor.close();
    }
    const touching = seen.filter((args) => args.some((arg) => arg.includes('198.51.100.')));
    assert.deepEqual(touching, [], 'commands naming a clean client');
    // A counting script builds its key names inside (a single Redis): MONITOR shows its own
    // commands on them, a failures list (:f:) or a reservation set (:r:) under this prefix.
    assert.deepEqual(
      seen.filter((args) => args.some((arg) => arg.startsWith(`${prefix}{s`) && /\}:[fr]:/.test(arg))),
      [],
      'a counting script run for this keeper',
    );
  });

  it('bans and their remaining time survive a restart of every instance, permanent ones included', async () => {
    const prefix = `jks${process.pid}-${run++}:`;
    const a = await keeper(prefix, { jails: { login: { ...JAILS.login, banTimeIncrement: true } } });
    for (let i = 0; i < 5; i++) await a.observe(fail('203.0.113.7'));
    await a.ban('203.0.113.8', { duration: 'permanent' });
    await a.close();
    const b = await keeper(prefix, { jails: { login: { ...JAILS.login, banTimeIncrement: true } } });
    assert.equal(b.check('203.0.113.7').banned, true, 'enforced from the start');
    const [timed] = (await b.bans()).filter((x) => x.client === '203.0.113.7');
    assert.ok(timed && timed.timeLeftMs > 3_500_000 && timed.timeLeftMs <= 3_600_000);
    const permanent = b.check('203.0.113.8');
    assert.equal(permanent.banned && permanent.untilMs, Number.POSITIVE_INFINITY);
    await b.unban('203.0.113.7');
    for (let i = 0; i < 5; i++) await b.observe(fail('203.0.113.7'));
    const [second] = (await b.bans()).filter((x) => x.client === '203.0.113.7');
    assert.equal(second?.banCount, 2, 'escalation history survived');
    assert.equal(second && second.endMs - second.startMs, 2 * 3_600_000);
  });

  it('time comes from Redis: a skewed app clock neither lengthens nor shortens a ban', async () => {
    const prefix = `jks${process.pid}-${run++}:`;
    const clock = createManualClock(Date.now() + 10 * 24 * 3_600_000); // ten days ahead
    const a = await keeper(prefix, { clock });
    for (let i = 0; i < 5; i++) await a.observe(fail('203.0.113.9'));
    const [ban] = await a.bans();
    assert.ok(ban && Math.abs(ban.startMs - Date.now()) < 5000, 'started at Redis time');
    assert.equal(ban && ban.endMs - ban.startMs, 3_600_000);
  });

  it('every key it writes has an expiry, but for a permanent ban', async () => {
    const prefix = `jks${process.pid}-${run++}:`;
    const a = await keeper(prefix, {
      jails: { login: { ...JAILS.login, banTimeIncrement: true, pardon: { statuses: [200] } } },
      recidive: true,
    });
    await a.observe({ ...fail('203.0.113.10'), status: 200 });
    for (let i = 0; i < 7; i++) await a.observe(fail(`203.0.113.${10 + (i % 2)}`));
    await a.ban('203.0.113.12', { duration: 'permanent' });
    const probe = client();
    const keys = await probe.keys(`${prefix}*`);
    assert.ok(keys.length >= 5, keys.join(' '));
    // The permanent ban, its history and its shard (the hash it is in, and the shard's version).
    const [permanentShard] = (await probe.keys(`${prefix}{s*}:h:203.0.113.12`)).map((k) =>
      k.slice(0, k.indexOf('}') + 1),
    );
    for (const key of keys) {
      const ttl = await probe.pttl(key);
      if (key.endsWith(':203.0.113.12') || key === `${permanentShard}:b` || key === `${permanentShard}:v`) {
        assert.equal(ttl, -1, `${key} lasts as long as the permanent ban`);
        continue;
      }
      if (key === `${prefix}jails`) continue; // renewed while instances run, a week otherwise
      assert.ok(ttl > 0, `${key} has a TTL (${ttl})`);
    }
    for (const key of keys) assert.ok(key.length < 128 && /^[\w:{}.\-/]+$/.test(key), key);
  });

  it("a client with ioredis' keyPrefix: the counting script's keys carry it, like every other key", async () => {
    // On a single Redis the counting script builds its key names; ioredis adds keyPrefix only to
    // the keys it is given. Both must land under the same names, or counts and bans part ways.
    const prefix = `jks${process.pid}-${run++}:`;
    const withPrefix = () => {
      const c = new Redis(bed.redis.url, { keyPrefix: 'tenant7:', maxRetriesPerRequest: 1 });
      c.on('error', () => {});
      clients.push(c);
      return c;
    };
    const make = async () => {
      const k = createJailkeeper({
        jails: JAILS,
        logger: quietLogger,
        store: createRedisStore({ client: withPrefix(), prefix, timeout: 500 }),
      });
      keepers.push(k);
      await k.ready;
      return k;
    };
    const [a, b] = [await make(), await make()];
    for (let i = 0; i < 4; i++) await (i % 2 ? b : a).observe(fail('203.0.113.40'));
    const probe = client();
    const keys = await probe.keys(`*${prefix}*`);
    assert.ok(keys.length > 0 && keys.every((k) => k.startsWith(`tenant7:${prefix}`)), keys.join(' '));
    assert.ok(
      keys.some((k) => k.endsWith(':f:login:203.0.113.40')),
      `the failures under the prefix: ${keys.join(' ')}`,
    );
    // The fifth failure, on the other instance, bans: the count was one list under one name.
    assert.equal((await b.observe(fail('203.0.113.40'))).jails[0]?.action, 'banned');
    // A new instance reads the ban from the shard (declared keys, prefixed by ioredis).
    const c = await make();
    assert.ok(c.check('203.0.113.40').banned, 'a new instance loads the ban');
  });
});

describe('redis store: when Redis fails', { skip: NO_REDIS }, () => {
  it('down at start: the app starts, counts and bans locally, and writes back on recovery', async () => {
    const down = await downPort();
    const { port, url } = down;
    const warnings: string[] = [];
    const store = createRedisStore({
      client: client(url),
      prefix: 'jkdown:',
      timeout: 100,
      probeInterval: 100,
    });
    const k = createJailkeeper({
      jails: JAILS,
      store,
      logger: { ...quietLogger, warn: (o: { code?: string }) => warnings.push(String(o.code)) },
    });
    keepers.push(k);
    await k.ready;
    assert.equal(store.degraded, true);
    assert.deepEqual(warnings, ['JK_WRN_STORE_DEGRADED']);
    const started = Date.now();
    for (let i = 0; i < 5; i++) await k.observe(fail('203.0.113.20'));
    assert.ok(Date.now() - started < 1000, 'no request waits for a dead Redis');
    assert.equal(k.check('203.0.113.20').banned, true);
    // Redis comes up on that port: the store recovers and writes its ban back.
    await down.release();
    const server = await startRedis({ port });
    try {
      await until(() => !store.degraded, { within: 5000 });
      const probe = client(url);
      await until(async () => (await activeIn(probe, 'jkdown:', 'login')).length === 1, { within: 5000 });
      assert.equal(k.check('203.0.113.20').banned, true);
    } finally {
      await server.stop();
    }
  });

  it('killed mid-run: known bans stay enforced, new failures count locally, nothing hangs; restarted empty, bans are written back', async () => {
    const own = await startRedis();
    if (process.env.REDIS_URL) {
      await own.stop();
      return; // a shared external Redis is never killed by the tests
    }
    try {
      const store = createRedisStore({
        client: client(own.url),
        prefix: 'jkkill:',
        timeout: 100,
        probeInterval: 100,
        reconcileInterval: 200,
      });
      const k = createJailkeeper({ jails: JAILS, store, logger: quietLogger });
      keepers.push(k);
      await k.ready;
      await k.ban('203.0.113.30', { duration: '1h' });
      // Under load: 400 concurrent failures from 100 clients and clean checks, Redis killed midway.
      const load = Array.from({ length: 400 }, async (_, i) => {
        if (i === 200) await own.kill();
        const started = Date.now();
        const result = await k.observe(fail(`198.18.1.${i % 100}`));
        k.check(`198.18.2.${i % 100}`);
        return { ms: Date.now() - started, action: result.jails[0]?.action };
      });
      const settled = await Promise.allSettled(load);
      assert.ok(
        settled.every((r) => r.status === 'fulfilled'),
        'no operation rejected',
      );
      const slowest = Math.max(...settled.map((r) => (r.status === 'fulfilled' ? r.value.ms : 0)));
      assert.ok(slowest < 2000, `every failure settled, the slowest in ${slowest} ms`);
      assert.equal(k.check('203.0.113.30').banned, true);
      const started = Date.now();
      for (let i = 0; i < 5; i++) await k.observe(fail('203.0.113.31'));
      assert.ok(Date.now() - started < 1500, `bounded: ${Date.now() - started} ms`);
      assert.equal(store.degraded, true);
      assert.equal(k.check('203.0.113.31').banned, true, 'counted and banned locally');
      await own.restart(); // empty: no persistence
      await until(() => !store.degraded, { within: 5000 });
      const probe = client(own.url);
      await until(async () => (await activeIn(probe, 'jkkill:', 'login')).length === 1, { within: 5000 });
      await until(async () => (await activeIn(probe, 'jkkill:', 'manual')).length === 1, { within: 5000 });
      assert.equal(k.check('203.0.113.30').banned, true);
    } finally {
      await own.stop();
    }
  });
});

describe('redis store: onStoreError', { skip: NO_REDIS }, () => {
  it("'deny' refuses every client but the ignored ones while Redis is down, and stops on recovery", async () => {
    const down = await downPort();
    const { port, url } = down;
    const store = createRedisStore({
      client: client(url),
      prefix: 'jkdeny:',
      timeout: 100,
      probeInterval: 100,
      onStoreError: 'deny',
    });
    const k = createJailkeeper({ jails: JAILS, store, logger: quietLogger, ignoreIp: ['192.0.2.1'] });
    keepers.push(k);
    await k.ready;
    const verdict = k.check('198.51.100.200');
    assert.equal(verdict.banned && verdict.jail, 'store-unavailable');
    assert.equal(k.check('192.0.2.1').banned, false, 'the admin keeps access');
    await down.release();
    const server = await startRedis({ port });
    try {
      await until(() => !store.degraded, { within: 5000 });
      assert.equal(k.check('198.51.100.200').banned, false);
    } finally {
      await server.stop();
    }
  });

  it("'allow' counts nothing while Redis is down, but keeps known bans", async () => {
    const down = await downPort();
    try {
      const store = createRedisStore({
        client: client(down.url),
        prefix: 'jkallow:',
        timeout: 100,
        onStoreError: 'allow',
      });
      const k = createJailkeeper({ jails: JAILS, store, logger: quietLogger });
      keepers.push(k);
      await k.ready;
      for (let i = 0; i < 10; i++) await k.observe(fail('198.51.100.201'));
      assert.equal(k.check('198.51.100.201').banned, false);
      assert.equal(k.check('198.51.100.202').banned, false, 'not fail-closed');
    } finally {
      await down.release();
    }
  });
});

describe('redis store: the runtime ignore list is shared', { skip: NO_REDIS }, () => {
  it('an entry added on one instance protects the client on every instance, and its removal too', async () => {
    const prefix = `jk-ign${++run}:`;
    const a = await keeper(prefix);
    const b = await keeper(prefix, { ignoreIp: ['192.0.2.0/24'] });
    assert.deepEqual(await a.ignore.addShared('198.51.100.0/24'), ['198.51.100.0/24']);
    await until(() => b.ignore.has('198.51.100.7'), { within: 2000 });
    for (let i = 0; i < 6; i++) await b.observe(fail('198.51.100.7'));
    assert.equal(b.check('198.51.100.7').banned, false, 'counted nowhere: ignored');
    // an instance started later loads the list at start
    const c = await keeper(prefix);
    assert.ok(c.ignore.has('198.51.100.7'));
    await b.ignore.removeShared('198.51.100.0/24');
    await until(() => !a.ignore.has('198.51.100.7') && !c.ignore.has('198.51.100.7'), { within: 2000 });
    // the configured entry of b is not in Redis, and stays on b alone
    assert.ok(b.ignore.has('192.0.2.1'));
    assert.ok(!a.ignore.has('192.0.2.1'));
  });

  it('reconciling drops a shared entry removed while this instance missed the message', async () => {
    const prefix = `jk-ign${++run}:`;
    const a = await keeper(prefix, {}, { reconcileInterval: 100 });
    await a.ignore.addShared('203.0.113.0/24');
    assert.ok(a.ignore.has('203.0.113.5'));
    // removed behind its back: no message
    await client().srem(`${prefix}ignore`, '203.0.113.0/24');
    await until(() => !a.ignore.has('203.0.113.5'), { within: 3000 });
  });
});
