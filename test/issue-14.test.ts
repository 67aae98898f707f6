/**
 * Issue 14 on a real Redis: 20,000 active bans loaded in batches by a restarted instance and
 * enforced from its first request; the store's clock; requests held until the bans are loaded;
 * outages reported once each, with their end, their cause, and counted in the metrics. The fault
 * timings are in issue-14-faults.test.ts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { request as httpRequest, type Server } from 'node:http';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createJailkeeper, type Jailkeeper, type JailkeeperOptions } from '@jailkeeper/core';
import { quietLogger, recordingLogger, until } from '@jailkeeper/core/testing';
import { jailkeeper } from '@jailkeeper/express';
import { createMetrics } from '@jailkeeper/ops';
import { createRedisStore, type RedisStore } from '@jailkeeper/redis';
import express from 'express';
import { Redis } from 'ioredis';
import { NO_REDIS } from './needs.js';
import { freePort, redisTestBed } from './redis-server.js';
import { TcpProxy } from './tcp-proxy.js';

const bed = redisTestBed();
const { clients, keepers } = bed;
let run = 0;

const JAILS: JailkeeperOptions['jails'] = {
  login: { statuses: [401], paths: ['/login'], maxRetry: 5, banTime: '1h' },
};
const fail = (ip: string) => ({ client: ip, method: 'POST', route: '/login', path: '/login', status: 401 });

/** A client as the README sets it up: quick to reconnect, one retry per command. */
function client(url = bed.redis.url): Redis {
  const c = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
  clients.push(c);
  return c;
}

function keeper(
  prefix: string,
  options: Partial<JailkeeperOptions> = {},
  store: Partial<Parameters<typeof createRedisStore>[0]> = {},
): { keeper: Jailkeeper; store: RedisStore } {
  const s = createRedisStore({ client: client(), prefix, timeout: 500, ...store });
  const k = createJailkeeper({ jails: JAILS, logger: quietLogger, store: s, ...options });
  keepers.push(k);
  return { keeper: k, store: s };
}

/** POST /login to an app, from a loopback address of our choice (the client the app sees). */
async function post(app: express.Express, from: string): Promise<number> {
  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  try {
    return await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port, method: 'POST', path: '/login', localAddress: from },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
  } finally {
    server.close();
  }
}

/** 10,000 IPv4 and 10,000 IPv6 clients. */
const address = (i: number) =>
  i % 2 === 0
    ? `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
    : `2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::1`;

describe('20,000 active bans', { skip: NO_REDIS }, () => {
  it('a restarted instance loads them in batches, enforces every one from its first request, and bans a new attacker at exactly maxRetry', async () => {
    const prefix = `jk14-${process.pid}-${run++}:`;
    const first = keeper(prefix);
    await first.keeper.ready;
    const N = 20_000;
    await first.keeper.ban('127.0.0.4', { jail: 'login', duration: '1h' });
    for (let i = 0; i < N; i += 200) {
      await Promise.all(
        Array.from({ length: 200 }, (_, k) =>
          first.keeper.ban(address(i + k), { jail: 'login', duration: '1h' }),
        ),
      );
    }
    await first.keeper.close();

    // The restart. A banned client's request arrives at once, before `ready`: the adapter holds it
    // until the bans are loaded, and it is refused; no handler runs.
    const started = Date.now();
    const next = keeper(prefix);
    let runs = 0;
    const app = express();
    app.use(jailkeeper(next.keeper));
    app.post('/login', (_req, res) => {
      runs++;
      res.status(401).end();
    });
    const firstAnswer = await post(app, '127.0.0.4'); // address(4) is banned: see below
    await next.keeper.ready;
    const readyMs = Date.now() - started;
    assert.equal(firstAnswer, 403);
    assert.equal(runs, 0, 'the handler never ran for the banned client’s first request');
    assert.equal(next.store.degraded, false, 'a healthy Redis never degrades an instance');
    let enforced = 0;
    for (let i = 0; i < N; i++) if (next.keeper.check(address(i)).banned) enforced++;
    assert.equal(enforced, N, 'every ban enforced');
    assert.ok(readyMs < 10_000, `ready in ${readyMs} ms`);
    console.log(`# 20,000 bans: a restarted instance was ready in ${readyMs} ms`);

    // A new attacker: counted 1 to 4, banned by the 5th.
    const actions: string[] = [];
    for (let i = 0; i < 6; i++)
      actions.push((await next.keeper.observe(fail('198.51.100.77'))).jails[0]?.action ?? '');
    assert.deepEqual(actions, ['counted', 'counted', 'counted', 'counted', 'banned', 'alreadyBanned']);
    const other = keeper(prefix);
    await other.keeper.ready;
    assert.equal(other.keeper.check('198.51.100.77').banned, true);
  });
});

describe('the store’s clock', { skip: NO_REDIS }, () => {
  for (const [name, skewMs] of [
    ['2 h ahead', 2 * 3_600_000],
    ['2 h behind', -2 * 3_600_000],
  ] as const) {
    it(`an instance whose clock runs ${name} of Redis enforces a 1 h ban made elsewhere, for 1 h`, async () => {
      const prefix = `jk14-${process.pid}-${run++}:`;
      const maker = keeper(prefix);
      const skewed = keeper(prefix, { clock: { now: () => Date.now() + skewMs } });
      await Promise.all([maker.keeper.ready, skewed.keeper.ready]);
      await maker.keeper.ban('203.0.113.140', { jail: 'login', duration: '1h' });
      await until(() => skewed.keeper.check('203.0.113.140').banned, { within: 2000 });
      const verdict = skewed.keeper.check('203.0.113.140');
      const left = verdict.banned ? verdict.untilMs - skewed.keeper.banClock.now() : 0;
      assert.ok(Math.abs(left - 3_600_000) < 2000, `time left ${left} ms, as Redis counts it`);
      const [listed] = await skewed.keeper.bans();
      assert.ok(
        listed && Math.abs(listed.timeLeftMs - 3_600_000) < 2000,
        `bans() says ${listed?.timeLeftMs}`,
      );
      // A 1.5 s ban ends after 1.5 s of Redis time on the skewed instance too.
      await maker.keeper.ban('203.0.113.141', { jail: 'login', duration: 1500 });
      await until(() => skewed.keeper.check('203.0.113.141').banned, { within: 2000 });
      const ms = await until(() => !skewed.keeper.check('203.0.113.141').banned, { within: 5000, every: 20 });
      assert.ok(ms < 3000, `ended after ${ms} ms`);
    });
  }
});

describe('before ready', { skip: NO_REDIS }, () => {
  it('with Redis slowed by 80 ms, a banned client’s first request is refused (the adapter waits for the bans)', async () => {
    const prefix = `jk14-${process.pid}-${run++}:`;
    const maker = keeper(prefix);
    await maker.keeper.ready;
    await maker.keeper.ban('127.0.0.9', { jail: 'login', duration: '1h' });
    const proxy = new TcpProxy(bed.redis.port);
    const port = await proxy.listen();
    proxy.delayMs = 80;
    try {
      const store = createRedisStore({ client: client(`redis://127.0.0.1:${port}`), prefix, timeout: 500 });
      const slow = createJailkeeper({ jails: JAILS, logger: quietLogger, store, ignoreIp: [] });
      keepers.push(slow);
      let runs = 0;
      const app = express();
      app.use(jailkeeper(slow));
      app.post('/login', (_req, res) => {
        runs++;
        res.status(401).end();
      });
      assert.equal(await post(app, '127.0.0.9'), 403, 'refused, not judged against no bans');
      assert.equal(runs, 0, 'no handler ran');
      assert.equal(await post(app, '127.0.0.10'), 401, 'a clean client goes on');
    } finally {
      await proxy.close();
    }
  });
});

describe('outages: visible, each one', { skip: NO_REDIS }, () => {
  it('warns at the start of every outage, says what happened, logs its end with its length, counts store errors', async () => {
    const prefix = `jk14-${process.pid}-${run++}:`;
    const proxy = new TcpProxy(bed.redis.port);
    const port = await proxy.listen();
    const logger = recordingLogger();
    const store = createRedisStore({
      client: client(`redis://127.0.0.1:${port}`),
      prefix,
      timeout: 200,
      probeInterval: 100,
    });
    const k = createJailkeeper({ jails: JAILS, logger, store });
    keepers.push(k);
    const metrics = createMetrics(k);
    const downs: string[] = [];
    const recoveries: number[] = [];
    k.on('storeDown', (e) => downs.push(e.reason));
    k.on('storeRecovered', (e) => recoveries.push(e.durationMs));
    await k.ready;
    try {
      for (let outage = 0; outage < 2; outage++) {
        proxy.cut();
        await k.observe(fail(`203.0.113.${150 + outage}`)); // the call that finds Redis gone
        await until(() => store.degraded, { within: 3000 });
        proxy.restore();
        await until(() => recoveries.length === outage + 1, { within: 3000, what: 'the recovery' });
      }
      assert.equal(downs.length, 2, 'a warning at the start of each outage');
      assert.ok(
        downs.every((reason) => /connection (reset|closed)|did not answer/.test(reason)),
        downs.join('; '),
      );
      const warned = logger.lines.filter((l) => l.code === 'JK_WRN_STORE_DEGRADED');
      assert.equal(warned.length, 2);
      const ends = logger.lines.filter((l) => l.event === 'storeRecovered');
      assert.equal(ends.length, 2, 'an info line at the end of each');
      assert.match(ends[0]?.msg ?? '', /answers again after \d+(ms|s)/);
      assert.ok(
        recoveries.every((ms) => ms > 0 && ms < 5000),
        recoveries.join(' '),
      );
      const errors = Number(/jailkeeper_store_errors_total (\d+)/.exec(metrics.text())?.[1]);
      assert.ok(errors >= 2, `store errors counted: ${errors}`);
    } finally {
      metrics.close();
      await proxy.close();
    }
  });

  it('a refused connection is reported as refused; start-up waits for the first connection instead of degrading', async () => {
    const port = await freePort();
    const logger = recordingLogger();
    const k = createJailkeeper({
      jails: JAILS,
      logger,
      store: createRedisStore({
        client: client(`redis://127.0.0.1:${port}`),
        prefix: 'jk14-refused:',
        startTimeout: 300,
      }),
    });
    keepers.push(k);
    await k.ready;
    const [warning] = logger.lines.filter((l) => l.code === 'JK_WRN_STORE_DEGRADED');
    assert.match(warning?.msg ?? '', new RegExp(`connection refused, 127\\.0\\.0\\.1:${port}`));
    // Two instances starting on a Redis that answers slowly (300 ms) do not degrade at boot.
    const proxy = new TcpProxy(bed.redis.port);
    const slowPort = await proxy.listen();
    proxy.delayMs = 300;
    try {
      const a = keeper(
        `jk14-${process.pid}-${run++}:`,
        {},
        { client: client(`redis://127.0.0.1:${slowPort}`), timeout: 100 },
      );
      const b = keeper(
        `jk14-${process.pid}-${run}:`,
        {},
        { client: client(`redis://127.0.0.1:${slowPort}`), timeout: 100 },
      );
      await Promise.all([a.keeper.ready, b.keeper.ready]);
      assert.equal(a.store.degraded || b.store.degraded, false);
    } finally {
      await proxy.close();
    }
  });

  it('the README’s client logs an outage through jailkeeper, never as ioredis’ "Unhandled error event"', async () => {
    const port = await freePort();
    const script = `
      import { createJailkeeper } from '@jailkeeper/core';
      import { createRedisStore } from '@jailkeeper/redis';
      import { Redis } from 'ioredis';
      const redis = new Redis('redis://127.0.0.1:${port}', { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
      const keeper = createJailkeeper({
        jails: { login: { statuses: [401] } },
        store: createRedisStore({ client: redis, startTimeout: 200 }),
      });
      await keeper.ready;
      await new Promise((r) => setTimeout(r, 1000));
      await keeper.close();
      await new Promise((r) => setTimeout(r, 500));
      redis.disconnect();
    `;
    const stderr = await new Promise<string>((resolve) => {
      execFile(
        process.execPath,
        ['--input-type=module', '-e', script],
        { cwd: fileURLToPath(new URL('.', import.meta.url)), timeout: 20_000 },
        (_error, _stdout, err) => resolve(err),
      );
    });
    assert.doesNotMatch(stderr, /Unhandled error event/);
    assert.equal(
      stderr.match(/Warning: The shared store is unreachable \(connection refused/g)?.length,
      1,
      stderr,
    );
  });
});
