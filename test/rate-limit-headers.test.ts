/**
 * The opt-in RateLimit-Policy and RateLimit header fields (`headers: 'ratelimit'`), through every
 * adapter, with the memory store and a real Redis: what they show (this client's attempts left in
 * the jail's window, the ban's remaining time on a refusal) and where they never appear (off by
 * default, untargeted and exempt routes, other jails, ignored clients).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  createJailkeeper,
  createMemoryStore,
  type Jailkeeper,
  type JailkeeperOptions,
  type Store,
} from '@jailkeeper/core';
import { quietLogger } from '@jailkeeper/core/testing';
import { createRedisStore } from '@jailkeeper/redis';
import { Redis } from 'ioredis';
import { type App, FRAMEWORKS, send } from './adapters-harness.js';
import { NO_REDIS } from './needs.js';
import { startRedis, type TestRedis } from './redis-server.js';

const JAILS: JailkeeperOptions['jails'] = {
  login: {
    statuses: [401],
    paths: ['/login'],
    maxRetry: 3,
    findTime: '10m',
    banTime: '1h',
    headers: 'ratelimit',
  },
  // Targets /secret too, but shows nothing: headers are per jail.
  secret: { statuses: [401], methods: ['GET'], paths: ['/secret'], maxRetry: 2 },
  forbidden: { statuses: [403], maxRetry: 50, exempt: ['/ws'] },
};

let next = 1;
const fresh = () => `127.88.${next >> 8}.${next++ & 255}`;

let redis: TestRedis | undefined;
const clients: Redis[] = [];
const open: App[] = [];
// Keepers a failed test left open: their Redis stores' own connections (subscriber, bulk work)
// would retry the stopped server for ever and hold the file's process.
const keepers: Jailkeeper[] = [];
before(async () => {
  if (!NO_REDIS) redis = await startRedis();
});
after(async () => {
  await Promise.all(open.map((a) => a.close()));
  await Promise.all(keepers.map((k) => k.close()));
  for (const c of clients) c.disconnect();
  await redis?.stop();
});

let run = 0;
function storeOf(kind: 'memory' | 'redis'): Store {
  if (kind === 'memory') return createMemoryStore();
  const client = new Redis((redis as TestRedis).url, { maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  clients.push(client);
  return createRedisStore({ client, prefix: `jkrl${process.pid}-${run++}:`, timeout: 1000 });
}

function header(r: Awaited<ReturnType<typeof send>>, name: string): unknown {
  assert.equal(r.dropped, false);
  return r.dropped ? undefined : r.headers[name];
}

for (const kind of ['memory', 'redis'] as const) {
  describe(`RateLimit header fields (${kind} store)`, { skip: kind === 'redis' && NO_REDIS }, () => {
    for (const framework of FRAMEWORKS) {
      it(`${framework.name}: remaining attempts on the jail's routes, the ban's time on refusal, nothing elsewhere`, async () => {
        const keeper = createJailkeeper({
          jails: JAILS,
          logger: quietLogger,
          store: storeOf(kind),
          ignoreIp: ['127.88.255.1'],
        });
        keepers.push(keeper);
        await keeper.ready;
        const app = await framework.start(keeper);
        open.push(app);
        const mallory = fresh();
        const remaining: unknown[] = [];
        for (let i = 0; i < 3; i++) {
          const r = await send(app.port, { method: 'POST', path: '/login', from: mallory });
          assert.equal(!r.dropped && r.status, 401);
          assert.equal(header(r, 'ratelimit-policy'), '"login";q=3;w=600');
          remaining.push(header(r, 'ratelimit'));
          await keeper.idle();
        }
        // Each attempt counted as the failure it may be: 3 → 2, 1, 0 left after it.
        assert.deepEqual(remaining, ['"login";r=2;t=600', '"login";r=1;t=600', '"login";r=0;t=600']);
        // Banned: the refusal says the ban's remaining time (1h), as Retry-After does.
        const refused = await send(app.port, { method: 'POST', path: '/login', from: mallory });
        assert.equal(!refused.dropped && refused.status, 403);
        assert.equal(header(refused, 'x-handler'), undefined, 'no handler ran');
        assert.equal(header(refused, 'ratelimit-policy'), '"login";q=3;w=600');
        const banned = String(header(refused, 'ratelimit'));
        const t = Number(/^"login";r=0;t=(\d+)$/.exec(banned)?.[1]);
        assert.ok(t > 3590 && t <= 3600, banned);
        assert.equal(Number(header(refused, 'retry-after')), t);

        // Another client's count is its own: a fresh client sees the full budget.
        const alice = fresh();
        const first = await send(app.port, { method: 'POST', path: '/login', from: alice });
        assert.equal(header(first, 'ratelimit'), '"login";r=2;t=600');
        // A success still shows what the attempt knew when it was admitted.
        const ok = await send(app.port, {
          method: 'POST',
          path: '/login',
          from: alice,
          headers: { authorization: 'secret' },
        });
        assert.equal(!ok.dropped && ok.status, 200);
        assert.equal(header(ok, 'ratelimit'), '"login";r=1;t=600');
        await keeper.idle();

        // Never on a route the jail does not target, an exempt route, nor a jail without headers.
        for (const path of ['/public', '/ws', '/route-exempt', '/secret', '/users/2']) {
          const r = await send(app.port, { path, from: alice });
          assert.equal(header(r, 'ratelimit'), undefined, path);
          assert.equal(header(r, 'ratelimit-policy'), undefined, path);
        }
        // An ignored client has no limit to show.
        const ignored = await send(app.port, { method: 'POST', path: '/login', from: '127.88.255.1' });
        assert.equal(!ignored.dropped && ignored.status, 401);
        assert.equal(header(ignored, 'ratelimit'), undefined);
        await keeper.idle();
        await app.close();
        open.splice(open.indexOf(app), 1);
        await keeper.close();
      });
    }
  });
}

describe('RateLimit header fields: off by default', () => {
  for (const framework of FRAMEWORKS) {
    it(`${framework.name}: no header without headers: 'ratelimit'`, async () => {
      const jails = { login: { ...JAILS.login, headers: undefined } };
      const keeper = createJailkeeper({ jails, logger: quietLogger });
      const app = await framework.start(keeper);
      open.push(app);
      const mallory = fresh();
      for (let i = 0; i < 4; i++) {
        const r = await send(app.port, { method: 'POST', path: '/login', from: mallory });
        assert.equal(header(r, 'ratelimit'), undefined);
        assert.equal(header(r, 'ratelimit-policy'), undefined);
        await keeper.idle();
      }
      assert.equal(keeper.check(mallory).banned, true);
      await app.close();
      open.splice(open.indexOf(app), 1);
      await keeper.close();
    });
  }
});

describe('RateLimit header fields: configuration', () => {
  it('accepts "ratelimit" or false, in a jail or in defaults', () => {
    const keeper = createJailkeeper({
      jails: { a: { statuses: [401], paths: ['/a'] }, b: { statuses: [401], paths: ['/b'], headers: false } },
      defaults: { headers: 'ratelimit' },
    });
    assert.equal(keeper.options.jailsByName.get('a')?.headers, true);
    assert.equal(keeper.options.jailsByName.get('b')?.headers, false);
    void keeper.close();
  });

  it('refuses another value, naming the option', () => {
    assert.throws(
      () => createJailkeeper({ jails: { a: { statuses: [401], headers: 'draft-8' as never } } }),
      (e: Error & { code?: string }) =>
        e.code === 'JK_ERR_INVALID_OPTION' &&
        e.message.startsWith('jails.a.headers must be "ratelimit" or false'),
    );
  });

  it("refuses headers in a jail keyed by account: a stranger would read the account's failures", () => {
    assert.throws(
      () => createJailkeeper({ jails: { a: { statuses: [401], key: 'account', headers: 'ratelimit' } } }),
      (e: Error & { code?: string }) =>
        e.code === 'JK_ERR_INVALID_OPTION' &&
        /jails\.a\.headers must be off in a jail keyed by "account"/.test(e.message),
    );
  });
});
