/**
 * Issue 12, the Redis side: a ban is reported as `local` by exactly the instance whose call made
 * it, whatever order its script's reply and the pub/sub echo arrive in; and while Redis is away,
 * a client's local count starts from the last count the instance saw in Redis, so an outage does
 * not hand an attacker at 4/5 a fresh budget on every instance.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type BanEvent, createJailkeeper, type Jailkeeper, type JailkeeperOptions } from '@jailkeeper/core';
import { quietLogger, until } from '@jailkeeper/core/testing';
import { createRedisStore, type RedisStore } from '@jailkeeper/redis';
import { Redis } from 'ioredis';
import { NO_REDIS } from './needs.js';
import { redisTestBed } from './redis-server.js';
import { TcpProxy } from './tcp-proxy.js';

const bed = redisTestBed();
const { clients, keepers } = bed;
let run = 0;

const JAILS: JailkeeperOptions['jails'] = {
  login: { statuses: [401], paths: ['/login'], maxRetry: 5, banTime: '1h' },
};
const fail = (ip: string) => ({ client: ip, method: 'POST', route: '/login', path: '/login', status: 401 });

function instance(url: string, prefix: string): { keeper: Jailkeeper; store: RedisStore } {
  const c = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
  clients.push(c);
  // A generous deadline: these tests are about the order of replies and messages, not timeouts.
  const store = createRedisStore({ client: c, prefix, timeout: 2000 });
  const keeper = createJailkeeper({ jails: JAILS, logger: quietLogger, store });
  keepers.push(keeper);
  return { keeper, store };
}

describe('origin: local on exactly one instance', { skip: NO_REDIS }, () => {
  it('200 concurrent bans over 3 instances: each reported local exactly once fleet-wide', async (t) => {
    const prefix = `jk12-${process.pid}-${run++}:`;
    // Each instance's script replies come 20 ms after its pub/sub messages: the echo of its own
    // ban always arrives first, the order that made about a third of the bans 'remote'.
    const proxies = [
      new TcpProxy(bed.redis.port),
      new TcpProxy(bed.redis.port),
      new TcpProxy(bed.redis.port),
    ];
    const fleet: ReturnType<typeof instance>[] = [];
    for (const proxy of proxies) {
      proxy.firstConnectionDelayMs = 20;
      fleet.push(instance(`redis://127.0.0.1:${await proxy.listen()}`, prefix));
    }
    t.after(() => Promise.all(proxies.map((p) => p.close())));
    await Promise.all(fleet.map((i) => i.keeper.ready));
    const local = new Map<string, number>();
    const remote = new Map<string, number>();
    for (const { keeper } of fleet) {
      keeper.on('ban', (b: BanEvent) => {
        const map = b.origin === 'local' ? local : remote;
        map.set(b.client, (map.get(b.client) ?? 0) + 1);
      });
    }
    const addresses = Array.from({ length: 200 }, (_, i) => `198.19.${i >> 8}.${i & 255}`);
    // Every client's five failures spread over the three instances, all at once.
    await Promise.all(
      addresses.flatMap((ip, n) =>
        Array.from({ length: 5 }, (_, k) =>
          (fleet[(n + k) % 3] as (typeof fleet)[number]).keeper.observe(fail(ip)),
        ),
      ),
    );
    await until(() => addresses.every((ip) => fleet.every((i) => i.keeper.check(ip).banned)), {
      within: 5000,
    });
    await until(() => [...remote.values()].reduce((a, b) => a + b, 0) >= 400, { within: 5000 });
    assert.equal(local.size, 200, 'every ban reported local somewhere');
    assert.ok(
      [...local.values()].every((n) => n === 1),
      `reported local more than once: ${[...local].filter(([, n]) => n > 1).length}`,
    );
    assert.ok(
      [...remote.values()].every((n) => n === 2),
      'and remote on the two others',
    );
  });
});

describe('degraded: the local count starts from the last count seen in Redis', { skip: NO_REDIS }, () => {
  it('an attacker at 4/5 when Redis stops answering is banned by its next failure, not given five more per instance', async () => {
    const prefix = `jk12-${process.pid}-${run++}:`;
    const proxy = new TcpProxy(bed.redis.port);
    const port = await proxy.listen();
    try {
      const a = instance(`redis://127.0.0.1:${port}`, prefix);
      const b = instance(`redis://127.0.0.1:${port}`, prefix);
      await Promise.all([a.keeper.ready, b.keeper.ready]);
      // Failures alternate: A saw counts 1 and 3, B saw 2 and 4.
      const counts: number[] = [];
      for (let k = 0; k < 4; k++) {
        const result = await (k % 2 ? b : a).keeper.observe(fail('203.0.113.90'));
        counts.push(result.jails[0]?.count ?? 0);
      }
      assert.deepEqual(counts, [1, 2, 3, 4]);
      proxy.cut();
      // B last saw 4: its next failure is the 5th, and bans.
      const onB = await b.keeper.observe(fail('203.0.113.90'));
      assert.equal(b.store.degraded, true);
      assert.deepEqual([onB.jails[0]?.action, onB.jails[0]?.count], ['banned', 5]);
      // A last saw 3: two more.
      const onA = [
        await a.keeper.observe(fail('203.0.113.90')),
        await a.keeper.observe(fail('203.0.113.90')),
      ];
      assert.equal(a.store.degraded, true);
      assert.deepEqual(
        onA.map((r) => [r.jails[0]?.action, r.jails[0]?.count]),
        [
          ['counted', 4],
          ['banned', 5],
        ],
      );
      // Fleet-wide, the outage gave the attacker 3 failures: (5 - 4) on B + (5 - 3) on A, the
      // bound of docs/security.md; without seeding it was 2 × 5 = 10.
    } finally {
      await proxy.close();
    }
  });

  it('a count older than findTime is not carried over', async () => {
    const prefix = `jk12-${process.pid}-${run++}:`;
    const proxy = new TcpProxy(bed.redis.port);
    const port = await proxy.listen();
    try {
      const c = new Redis(`redis://127.0.0.1:${port}`, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
      clients.push(c);
      const store = createRedisStore({ client: c, prefix, timeout: 200 });
      const keeper = createJailkeeper({
        jails: { login: { ...JAILS.login, findTime: 300 } },
        logger: quietLogger,
        store,
      });
      keepers.push(keeper);
      await keeper.ready;
      for (let k = 0; k < 4; k++) await keeper.observe(fail('203.0.113.91'));
      await new Promise((resolve) => setTimeout(resolve, 400)); // the window has passed
      proxy.cut();
      const r = await keeper.observe(fail('203.0.113.91'));
      assert.deepEqual([store.degraded, r.jails[0]?.count], [true, 1]);
    } finally {
      await proxy.close();
    }
  });
});
