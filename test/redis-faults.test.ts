import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createJailkeeper, type Jailkeeper, type JailkeeperOptions } from '@jailkeeper/core';
import { quietLogger, until } from '@jailkeeper/core/testing';
import { createRedisStore } from '@jailkeeper/redis';
import { Redis } from 'ioredis';
import { NO_REDIS } from './needs.js';
import { activeIn } from './redis-bans.js';
import { QUICK_STORE, startRedis, type TestRedis } from './redis-server.js';

/**
 * A TCP proxy in front of Redis that holds Redis' replies back by `delayMs`, in order (each
 * chunk leaves no earlier than the one before it, so a changed delay never reorders the stream).
 */
class SlowProxy {
  delayMs = 0;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  constructor(upstreamPort: number) {
    this.#server = createServer((downstream) => {
      const upstream = connect(upstreamPort, '127.0.0.1');
      this.#sockets.add(downstream).add(upstream);
      let releaseAt = 0;
      downstream.on('data', (chunk) => upstream.write(chunk));
      upstream.on('data', (chunk) => {
        releaseAt = Math.max(Date.now() + this.delayMs, releaseAt);
        setTimeout(() => downstream.writable && downstream.write(chunk), releaseAt - Date.now());
      });
      const close = () => {
        upstream.destroy();
        downstream.destroy();
      };
      downstream.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
    });
  }

  async listen(): Promise<number> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    return (this.#server.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

let redis: TestRedis;
const clients: Redis[] = [];
const keepers: Jailkeeper[] = [];
const rejections: unknown[] = [];
const onRejection = (reason: unknown) => rejections.push(reason);

before(async () => {
  if (NO_REDIS) return;
  redis = await startRedis();
  process.on('unhandledRejection', onRejection);
});
after(async () => {
  await Promise.all(keepers.map((k) => k.close()));
  for (const c of clients) c.disconnect();
  await redis?.stop();
  process.off('unhandledRejection', onRejection);
});

const jails = { login: { statuses: [401], maxRetry: 3, banTime: '1h' } } satisfies JailkeeperOptions['jails'];
const fail = (ip: string) => ({ client: ip, method: 'POST', path: '/login', status: 401 });

function keeperOn(url: string, prefix: string) {
  const client = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
  client.on('error', () => {});
  clients.push(client);
  const store = createRedisStore({
    client,
    prefix,
    ...QUICK_STORE,
  });
  const keeper = createJailkeeper({ jails, logger: quietLogger, store });
  keepers.push(keeper);
  return { keeper, store };
}

describe('redis store under slowness and data loss', { skip: NO_REDIS }, () => {
  for (const [index, delayMs] of [50, 500, 5000].entries()) {
    it(`Redis slowed by ${delayMs} ms: known bans enforced, latency bounded, bans everywhere within 5 s of recovery`, async () => {
      const proxy = new SlowProxy(redis.port);
      const port = await proxy.listen();
      try {
        const prefix = `jkslow${process.pid}-${delayMs}:`;
        const slow = keeperOn(`redis://127.0.0.1:${port}`, prefix);
        const direct = keeperOn(redis.url, prefix);
        await Promise.all([slow.keeper.ready, direct.keeper.ready]);
        await slow.keeper.ban('203.0.113.40', { duration: '1h' });
        proxy.delayMs = delayMs;
        assert.equal(slow.keeper.check('203.0.113.40').banned, true, 'known ban enforced');
        const client = `203.0.113.${41 + index}`;
        for (let i = 0; i < 3; i++) {
          const started = Date.now();
          await slow.keeper.observe(fail(client));
          assert.ok(Date.now() - started < 400, `a failure took ${Date.now() - started} ms`);
        }
        assert.equal(slow.keeper.check(client).banned, true, 'banned, in Redis or locally');
        proxy.delayMs = 0;
        const ms = await until(() => direct.keeper.check(client).banned, { within: 5000 + delayMs });
        assert.ok(ms < 5000 + delayMs, `visible on the other instance after ${ms} ms`);
        await until(() => !slow.store.degraded, { within: 5000 + delayMs });
      } finally {
        await proxy.close();
      }
    });
  }

  it('Redis flushed (keys and scripts): live instances write their bans back, scripts reload', async () => {
    const prefix = `jkflush${process.pid}:`;
    const a = keeperOn(redis.url, prefix);
    const b = keeperOn(redis.url, prefix);
    await Promise.all([a.keeper.ready, b.keeper.ready]);
    await a.keeper.ban('203.0.113.50', { duration: '1h' });
    await until(() => b.keeper.check('203.0.113.50').banned, { within: 2000 });
    const admin = new Redis(redis.url);
    clients.push(admin);
    await admin.flushall();
    await admin.script('FLUSH');
    assert.equal(a.keeper.check('203.0.113.50').banned, true, 'still enforced in process');
    await until(async () => (await activeIn(admin, prefix, 'manual')).length === 1, { within: 5000 });
    for (let i = 0; i < 3; i++) await a.keeper.observe(fail('203.0.113.51'));
    await until(() => b.keeper.check('203.0.113.51').banned, { within: 2000 });
    assert.equal(a.store.degraded, false, 'NOSCRIPT was handled by reloading the script');
  });

  it('no zombie: a ban lifted while an instance missed the message is dropped at the next reconcile', async () => {
    const prefix = `jkzombie${process.pid}:`;
    const a = keeperOn(redis.url, prefix);
    await a.keeper.ready;
    await a.keeper.ban('203.0.113.60', { duration: '1h' });
    const admin = new Redis(redis.url);
    clients.push(admin);
    // Lifted as an unban lifts it (the entry gone, the shard's version moved on), but the message
    // never reaches this instance.
    const [bans] = await admin.keys(`${prefix}{s*}:b`);
    assert.ok(bans);
    await admin.eval(
      `local e, s = string.match(redis.call('GET', KEYS[2]), '^(.+):(%d+)$')
       redis.call('SET', KEYS[2], e .. ':' .. (tonumber(s) + 1), 'KEEPTTL')
       return redis.call('HDEL', KEYS[1], ARGV[1])`,
      2,
      bans,
      bans.replace(/:b$/, ':v'),
      '203.0.113.60',
    );
    await until(() => !a.keeper.check('203.0.113.60').banned, { within: 3000 });
  });

  it('no unhandled rejection on the way', () => {
    assert.deepEqual(rejections, []);
  });
});
