/**
 * Jails keyed by a function (`key: (facts) => string | undefined`), through every adapter, with
 * the memory store and a real Redis: a banned key is refused before any handler runs, whichever
 * address sends it; a key the client writes is only as good as that input (varying it escapes
 * the key's jail, and the address jail beside it bans the address); ignoreIp and exemptions still
 * apply; a function that returns a non-string or throws is warned about and never fails a request.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  createJailkeeper,
  createMemoryStore,
  type FailureEvent,
  type JailkeeperOptions,
  type KeyFacts,
  type Store,
} from '@jailkeeper/core';
import { createRedisStore } from '@jailkeeper/redis';
import { Redis } from 'ioredis';
import { type App, FRAMEWORKS, type Reply, send } from './adapters-harness.js';
import { NO_REDIS } from './needs.js';
import { startRedis, type TestRedis } from './redis-server.js';

const apiKey = (facts: KeyFacts) => {
  const value = facts.headers['x-api-key'];
  return typeof value === 'string' ? value : undefined;
};

const JAILS: JailkeeperOptions['jails'] = {
  // The key a client sends: every address that uses it shares its budget.
  // 403 too: the exempt route answers 403, which would count here if its exemption were not honoured.
  login: {
    statuses: [401, 403],
    paths: ['/login', '/route-exempt'],
    maxRetry: 3,
    banTime: '1h',
    key: apiKey,
  },
  // The pairing the docs recommend: the address's own budget, whatever key it sends.
  address: { statuses: [401], paths: ['/login'], maxRetry: 6, banTime: '1h' },
};

let next = 1;
const fresh = () => `127.89.${next >> 8}.${next++ & 255}`;
const IGNORED = '127.89.255.7';

let redis: TestRedis | undefined;
const clients: Redis[] = [];
const open: App[] = [];
before(async () => {
  if (!NO_REDIS) redis = await startRedis();
});
after(async () => {
  await Promise.all(open.map((a) => a.close()));
  for (const c of clients) c.disconnect();
  await redis?.stop();
});

let run = 0;
function storeOf(kind: 'memory' | 'redis'): Store {
  if (kind === 'memory') return createMemoryStore();
  const client = new Redis((redis as TestRedis).url, { maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  clients.push(client);
  return createRedisStore({ client, prefix: `jkkf${process.pid}-${run++}:`, timeout: 1000 });
}

/** The handler that answered, or undefined when none ran (refused before it). */
function handler(r: Reply): unknown {
  assert.equal(r.dropped, false);
  return r.dropped ? undefined : r.headers['x-handler'];
}
const status = (r: Reply) => (r.dropped ? 'dropped' : r.status);

async function start(framework: (typeof FRAMEWORKS)[number], kind: 'memory' | 'redis', jails = JAILS) {
  const warnings: Array<{ code: string; msg: string }> = [];
  const logger = {
    warn: (obj: { code?: string }, msg?: string) =>
      warnings.push({ code: String(obj?.code), msg: String(msg) }),
    info() {},
    error() {},
    debug() {},
  };
  const keeper = createJailkeeper({ jails, logger, store: storeOf(kind), ignoreIp: [IGNORED] });
  await keeper.ready;
  const failures: FailureEvent[] = [];
  keeper.on('failure', (f) => failures.push(f));
  const app = await framework.start(keeper);
  open.push(app);
  const stop = async () => {
    await app.close();
    open.splice(open.indexOf(app), 1);
    await keeper.close();
  };
  return { keeper, app, failures, warnings, stop };
}

for (const kind of ['memory', 'redis'] as const) {
  describe(`key function (${kind} store)`, { skip: kind === 'redis' && NO_REDIS }, () => {
    for (const framework of FRAMEWORKS) {
      it(`${framework.name}: a banned key is refused before any handler, from any address`, async () => {
        const { keeper, app, failures, stop } = await start(framework, kind);
        // Three addresses share one stolen key's budget.
        for (let i = 0; i < 3; i++) {
          const r = await send(app.port, {
            method: 'POST',
            path: '/login',
            from: fresh(),
            headers: { 'x-api-key': 'k-123' },
          });
          assert.equal(status(r), 401);
          assert.equal(handler(r), 'login');
          await keeper.idle();
        }
        assert.deepEqual(
          failures.filter((f) => f.jail === 'login').map((f) => f.client),
          ['key:k-123', 'key:k-123', 'key:k-123'],
          JSON.stringify(failures),
        );
        // A fourth address with the key: refused, no handler ran; without it, served.
        const stranger = fresh();
        const refused = await send(app.port, {
          method: 'POST',
          path: '/login',
          from: stranger,
          headers: { 'x-api-key': 'k-123' },
        });
        assert.equal(status(refused), 403);
        assert.equal(handler(refused), undefined, 'no handler ran');
        assert.ok(Number(!refused.dropped && refused.headers['retry-after']) > 3500);
        const other = await send(app.port, { method: 'POST', path: '/login', from: stranger });
        assert.equal(handler(other), 'login');
        // The address is not what was banned.
        assert.equal(keeper.check(stranger).banned, false);
        // An ignored address is never refused nor counted, whatever key it sends.
        const ignored = await send(app.port, {
          method: 'POST',
          path: '/login',
          from: IGNORED,
          headers: { 'x-api-key': 'k-123' },
        });
        assert.equal(handler(ignored), 'login');
        // The operator lifts the key like any client.
        await keeper.unban('key:k-123');
        const lifted = await send(app.port, {
          method: 'POST',
          path: '/login',
          from: stranger,
          headers: { 'x-api-key': 'k-123' },
        });
        assert.equal(handler(lifted), 'login');
        await keeper.idle();
        await stop();
      });

      it(`${framework.name}: a key the client writes is only as good as that input; the address jail beside it bans`, async () => {
        const { keeper, app, failures, stop } = await start(framework, kind);
        const mallory = fresh();
        let served = 0;
        for (let i = 0; i < 10; i++) {
          const r = await send(app.port, {
            method: 'POST',
            path: '/login',
            from: mallory,
            headers: { 'x-api-key': `guess-${i}` },
          });
          if (handler(r) === 'login') served++;
          await keeper.idle();
        }
        // Each varied key had a budget of its own (never banned there): the bypass is real...
        assert.equal(failures.filter((f) => f.jail === 'login' && f.count > 1).length, 0);
        // ...and the address jail banned the address at its maxRetry (6): 6 handler runs, no more.
        assert.equal(served, 6);
        assert.equal(keeper.check(mallory).banned, true);
        await stop();
      });

      it(`${framework.name}: exempt routes and requests without a key are not counted in the key's jail`, async () => {
        const { keeper, app, failures, stop } = await start(framework, kind);
        const from = fresh();
        for (let i = 0; i < 4; i++) {
          await send(app.port, { path: '/route-exempt', from, headers: { 'x-api-key': 'k-exempt' } });
          await send(app.port, { method: 'POST', path: '/login', from: fresh() });
        }
        await keeper.idle();
        assert.equal(failures.filter((f) => f.jail === 'login').length, 0);
        const r = await send(app.port, {
          method: 'POST',
          path: '/login',
          from,
          headers: { 'x-api-key': 'k-exempt' },
        });
        assert.equal(handler(r), 'login');
        await keeper.idle();
        await stop();
      });

      it(`${framework.name}: a key function that returns a non-string or throws warns, and the request is served uncounted`, async () => {
        const jails: JailkeeperOptions['jails'] = {
          login: { statuses: [401], paths: ['/login'], maxRetry: 1, key: (() => 42) as never },
          throws: {
            statuses: [401],
            paths: ['/login'],
            maxRetry: 1,
            key: () => {
              throw new Error('boom');
            },
          },
        };
        const { keeper, app, failures, warnings, stop } = await start(framework, kind, jails);
        const from = fresh();
        for (let i = 0; i < 3; i++) {
          const r = await send(app.port, { method: 'POST', path: '/login', from });
          assert.equal(status(r), 401);
          assert.equal(handler(r), 'login');
        }
        await keeper.idle();
        assert.equal(failures.length, 0);
        const codes = warnings.filter((w) => w.code === 'JK_WRN_KEY_FUNCTION');
        assert.ok(codes.length >= 1, JSON.stringify(warnings));
        assert.match(codes.map((w) => w.msg).join('\n'), /jails\.(login|throws)\.key/);
        await stop();
      });
    }
  });
}

describe('key function: attempts in flight', () => {
  for (const framework of FRAMEWORKS) {
    it(`${framework.name}: parallel attempts with one key, from many addresses, never pass maxRetry`, async () => {
      const jails: JailkeeperOptions['jails'] = {
        login: { statuses: [401], paths: ['/login'], maxRetry: 1000 },
        slow: { statuses: [401], paths: ['/slow'], maxRetry: 3, banTime: '1h', key: apiKey },
      };
      const { app, keeper, stop } = await start(framework, 'memory', jails);
      const replies = await Promise.all(
        Array.from({ length: 10 }, () =>
          send(app.port, { path: '/slow', from: fresh(), headers: { 'x-api-key': 'shared' } }),
        ),
      );
      await keeper.idle();
      const answered = replies.filter((r) => status(r) === 401).length;
      // The handler answers 401 after 300 ms: at most maxRetry of them ran, the rest were refused.
      assert.ok(answered <= 3, `${answered} handler runs`);
      assert.ok(answered >= 1);
      assert.equal(
        replies.filter((r) => status(r) === 401 || status(r) === 403 || status(r) === 429).length,
        10,
      );
      assert.equal(keeper.check({ ip: '127.0.0.1', key: 'key:shared' }).banned, true);
      await stop();
    });
  }
});

describe('key function: facts', () => {
  for (const framework of FRAMEWORKS) {
    it(`${framework.name}: the function sees the address, method, path without query and headers`, async () => {
      const seen: KeyFacts[] = [];
      const jails: JailkeeperOptions['jails'] = {
        login: {
          statuses: [401],
          paths: ['/login'],
          key: (facts) => {
            seen.push(facts);
            return 'x';
          },
        },
      };
      const { app, keeper, stop } = await start(framework, 'memory', jails);
      const from = fresh();
      await send(app.port, { method: 'POST', path: '/login?next=/', from, headers: { 'x-tenant': 't1' } });
      await keeper.idle();
      assert.equal(seen.length, 1, 'asked once per request');
      const facts = seen[0] as KeyFacts;
      assert.equal(facts.ip, from);
      assert.equal(facts.method, 'POST');
      assert.equal(facts.path, '/login');
      assert.equal(facts.headers['x-tenant'], 't1');
      assert.ok(Object.isFrozen(facts));
      await stop();
    });
  }
});

describe('key function: configuration', () => {
  it('accepts a function, in a jail or in defaults', () => {
    const keeper = createJailkeeper({ jails: { a: { statuses: [401], key: apiKey } } });
    assert.equal(keeper.options.jailsByName.get('a')?.key, 'function');
    void keeper.close();
  });

  for (const bad of [42, 'ip', 'header', null]) {
    it(`refuses key: ${JSON.stringify(bad)} at startup, naming the option`, () => {
      assert.throws(
        () => createJailkeeper({ jails: { a: { statuses: [401], key: bad as never } } }),
        (e: Error & { code?: string }) =>
          e.code === 'JK_ERR_INVALID_OPTION' &&
          e.message.startsWith('jails.a.key must be "address", "account", "account+address" or a function'),
      );
    });
  }

  it('refuses owners in a jail keyed by a function', () => {
    assert.throws(
      () => createJailkeeper({ jails: { a: { statuses: [401], key: apiKey, owners: {} } } }),
      (e: Error & { code?: string }) =>
        e.code === 'JK_ERR_INVALID_OPTION' && /jails\.a\.owners/.test(e.message),
    );
  });
});
