import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Agent } from 'node:http';
import { connect } from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  createJailkeeper,
  createMemoryStore,
  type FailureEvent,
  type JailkeeperOptions,
  type Store,
} from '@jailkeeper/core';
import { quietLogger } from '@jailkeeper/core/testing';
import WebSocket from 'ws';
import { type App, FRAMEWORKS, type Framework, send } from './adapters-harness.js';
import { SPOOFING_MATRIX, TRUST } from './spoofing-matrix.js';

const JAILS: JailkeeperOptions['jails'] = {
  login: {
    statuses: [401],
    paths: ['/login'],
    maxRetry: 3,
    banTime: '1h',
    pardon: { statuses: [200], maxRetry: 12 },
  },
  forbidden: { statuses: [403], maxRetry: 2, exempt: ['/ws', '/healthz'] },
  scan: { statuses: [404], maxRetry: 5000 },
  secret: { statuses: [401], methods: ['GET'], paths: ['/secret'], maxRetry: 2 },
  slow: { statuses: [401], paths: ['/slow'], maxRetry: 100 },
};

let next = 1;
/** A loopback address no other test uses: each test is its own client. */
const fresh = () => `127.77.${next >> 8}.${next++ & 255}`;

async function setup(framework: Framework, extra: Partial<JailkeeperOptions> = {}, adapter = {}) {
  const store = createMemoryStore();
  const keeper = createJailkeeper({ jails: JAILS, logger: quietLogger, store, ...extra });
  const failures: FailureEvent[] = [];
  keeper.on('failure', (f) => failures.push(f));
  const app = await framework.start(keeper, adapter);
  // Every admitted response counted and recorded: the event that proves the state, not a delay.
  const settle = () => keeper.idle();
  return { keeper, app, failures, store, settle };
}

const open: App[] = [];
after(async () => {
  await Promise.all(open.map((a) => a.close()));
});

for (const framework of FRAMEWORKS) {
  describe(`adapter: ${framework.name}`, () => {
    it('the /ws incident: browsers refused on /ws by design are never banned', async () => {
      const { app, keeper } = await setup(framework);
      open.push(app);
      const alice = fresh();
      for (let i = 0; i < 10; i++) {
        const r = await send(app.port, { path: '/ws', from: alice });
        assert.equal(!r.dropped && r.status, 403);
      }
      const page = await send(app.port, { path: '/public', from: alice });
      assert.equal(!page.dropped && page.status, 200);
      assert.equal(keeper.check(alice).banned, false);
      // A scanner hitting a forbidden page is banned at maxRetry, and refused everywhere.
      const scanner = fresh();
      await send(app.port, { path: '/admin', from: scanner });
      await send(app.port, { path: '/admin', from: scanner });
      await keeper.idle();
      const refused = await send(app.port, { path: '/public', from: scanner });
      assert.equal(!refused.dropped && refused.status, 403);
      assert.equal(!refused.dropped && refused.headers['x-handler'], undefined, 'no handler ran');
    });

    it('login brute force: banned at maxRetry, refused before any handler with Retry-After', async () => {
      const { app, keeper, failures, settle } = await setup(framework);
      open.push(app);
      const mallory = fresh();
      for (let i = 0; i < 3; i++) {
        const r = await send(app.port, { method: 'POST', path: '/login', from: mallory });
        assert.equal(!r.dropped && r.status, 401);
      }
      await settle();
      assert.equal(failures.filter((f) => f.jail === 'login').length, 3);
      const r = await send(app.port, {
        method: 'POST',
        path: '/login',
        from: mallory,
        headers: { authorization: 'secret' },
      });
      assert.ok(!r.dropped);
      assert.equal(r.status, 403);
      assert.equal(r.headers['x-handler'], undefined);
      assert.ok(Number(r.headers['retry-after']) > 3500 && Number(r.headers['retry-after']) <= 3600);
      assert.equal(keeper.check(mallory).banned, true);
    });

    it('a store round trip cannot let a fast attacker past maxRetry: its next request waits for the count', async () => {
      // A memory store behind 40 ms of latency, like a remote Redis: without waiting, the 4th
      // attempt would arrive before the 3rd failure's ban has landed, and be served.
      const inner = createMemoryStore();
      const slow: Store = {
        name: 'slow',
        init: (ctx) => inner.init(ctx),
        recordFailure: async (rule, client, jitter) => {
          await sleep(40);
          return inner.recordFailure(rule, client, jitter);
        },
        recordPardon: (jail, client, forMs) => inner.recordPardon(jail, client, forMs),
        ban: (input) => inner.ban(input),
        unban: (client, jail) => inner.unban(client, jail),
        unbanAll: (jail) => inner.unbanAll(jail),
        bans: (jail) => inner.bans(jail),
        status: (jails) => inner.status(jails),
        sweep: () => inner.sweep(),
        close: () => inner.close(),
      };
      const { app, keeper } = await setup(framework, { store: slow });
      open.push(app);
      const mallory = fresh();
      for (let i = 0; i < 3; i++) {
        const r = await send(app.port, { method: 'POST', path: '/login', from: mallory });
        assert.equal(!r.dropped && r.status, 401);
      }
      const fourth = await send(app.port, { method: 'POST', path: '/login', from: mallory });
      assert.equal(!fourth.dropped && fourth.status, 403, 'refused at once, not a 4th attempt');
      assert.ok(keeper.check(mallory).banned);
      // a clean client meanwhile never waits on anyone else's count
      const alice = fresh();
      const page = await send(app.port, { path: '/public', from: alice });
      assert.equal(!page.dropped && page.status, 200);
    });

    it('pardon after a login: a higher threshold, not immunity', async () => {
      const { app, keeper, settle } = await setup(framework);
      open.push(app);
      const alice = fresh();
      await send(app.port, {
        method: 'POST',
        path: '/login',
        from: alice,
        headers: { authorization: 'secret' },
      });
      await settle();
      for (let i = 0; i < 11; i++) await send(app.port, { method: 'POST', path: '/login', from: alice });
      await settle();
      assert.equal(keeper.check(alice).banned, false, '11 < 12');
      await send(app.port, { method: 'POST', path: '/login', from: alice });
      await settle();
      assert.equal(keeper.check(alice).banned, true, 'banned at pardon.maxRetry');
    });

    it('an admin in ignoreIp is never counted', async () => {
      const admin = fresh();
      const { app, keeper, failures, settle } = await setup(framework, { ignoreIp: [admin] });
      open.push(app);
      for (let i = 0; i < 6; i++) await send(app.port, { method: 'POST', path: '/login', from: admin });
      await settle();
      assert.equal(failures.length, 0);
      assert.equal(keeper.check(admin).banned, false);
    });

    it('exemptions agree with the router: no spelling reaches another handler while counted as exempt', async () => {
      const { app, failures, settle } = await setup(framework, {
        jails: {
          ...JAILS,
          scan: { statuses: [404], maxRetry: 1000 },
          forbidden: { statuses: [403], maxRetry: 1000, exempt: ['/ws'] },
        },
      });
      open.push(app);
      const spellings = [
        '/ws',
        '/ws/',
        '/WS',
        '/%77s',
        '//ws',
        '/ws;x',
        '/ws/../admin',
        '/ws%2F..%2Fadmin',
        '/ws?x=1',
        '/./ws',
        '/ws%00',
      ];
      for (const path of spellings) {
        const client = fresh();
        const r = await send(app.port, { path, from: client });
        await settle();
        assert.ok(!r.dropped, path);
        const counted = failures.some((f) => f.ip === client);
        if (r.headers['x-handler'] === 'ws')
          assert.equal(counted, false, `${path} reached /ws and must be exempt`);
        else if (r.status === 403 || r.status === 404)
          assert.equal(
            counted,
            true,
            `${path} reached ${r.headers['x-handler'] ?? 'no route'} (${r.status}) and must count`,
          );
      }
    });

    it('per-route settings: exempt, and counted only in the named jails', async () => {
      const { app, failures, settle } = await setup(framework);
      open.push(app);
      const client = fresh();
      for (let i = 0; i < 3; i++) await send(app.port, { path: '/route-exempt', from: client });
      for (let i = 0; i < 3; i++) await send(app.port, { path: '/only-login', from: client });
      await settle();
      assert.deepEqual(failures, [], 'the forbidden jail counts neither route');
    });

    it('login spellings count as the route they reach', async () => {
      const { app, failures, settle } = await setup(framework, {
        jails: {
          ...JAILS,
          login: { statuses: [401], paths: ['/login'], maxRetry: 100 },
          scan: { statuses: [404], maxRetry: 100 },
        },
      });
      open.push(app);
      for (const path of ['/login', '/LOGIN', '/login/', '/login?x=1', '/%6Cogin']) {
        const client = fresh();
        const r = await send(app.port, { method: 'POST', path, from: client });
        await settle();
        assert.ok(!r.dropped);
        const jails = failures.filter((f) => f.ip === client).map((f) => f.jail);
        if (r.headers['x-handler'] === 'login') assert.deepEqual(jails, ['login'], path);
        else assert.deepEqual(jails, ['scan'], `${path} (${r.status}) reached no route`);
      }
    });

    it('unknown routes share one counter: 2,000 junk paths, one key', async () => {
      const { app, store, settle } = await setup(framework);
      open.push(app);
      const client = fresh();
      const agent = new Agent({ keepAlive: true, maxSockets: 8, localAddress: client } as never);
      await Promise.all(
        Array.from({ length: 2000 }, (_, i) =>
          send(app.port, { path: `/junk/${i}/${Math.random()}`, from: client, agent }),
        ),
      );
      agent.destroy();
      await settle();
      assert.equal(store.trackedClients.size, 1);
    });

    it('HEAD runs the GET route and is counted once, as GET', async () => {
      const { app, keeper, failures, settle } = await setup(framework);
      open.push(app);
      const client = fresh();
      await send(app.port, { method: 'HEAD', path: '/secret', from: client });
      await settle();
      assert.deepEqual(
        failures.map((f) => [f.jail, f.method]),
        [['secret', 'GET']],
      );
      await send(app.port, { method: 'HEAD', path: '/secret', from: client });
      await settle();
      assert.equal(keeper.check(client).banned, true);
    });

    it('OPTIONS preflights are not failures', async () => {
      const { app, failures, settle } = await setup(framework);
      open.push(app);
      await send(app.port, { method: 'OPTIONS', path: '/public', from: fresh() });
      await settle();
      assert.ok(
        failures.every((f) => f.method === 'OPTIONS' && f.jail === 'scan'),
        JSON.stringify(failures),
      );
    });

    it('a client that aborts after a failing status was set is counted', async () => {
      const { app, failures, keeper } = await setup(framework);
      open.push(app);
      const client = fresh();
      const r = await send(app.port, { path: '/slow', from: client, abortAfterMs: 50 });
      assert.equal(r.dropped, true);
      // The handler answers 300 ms after the client left; its response is counted when it closes.
      await keeper.idle();
      assert.deepEqual(
        failures.filter((f) => f.ip === client).map((f) => [f.jail, f.status]),
        [['slow', 401]],
      );
    });

    it('refusals never count, so a ban cannot feed itself', async () => {
      const { app, keeper, settle } = await setup(framework, { recidive: { maxRetry: 2 } });
      open.push(app);
      const client = fresh();
      await keeper.ban(client, { jail: 'forbidden', duration: '1h' });
      const before = (await keeper.status()).jails;
      for (let i = 0; i < 20; i++) {
        const r = await send(app.port, { path: '/admin', from: client });
        assert.equal(!r.dropped && r.status, 403);
      }
      await settle();
      const now = (await keeper.status()).jails;
      assert.equal(now.forbidden?.totalFailed, before.forbidden?.totalFailed);
      assert.equal(now.forbidden?.blocked, 20);
      assert.equal(now.recidive?.currentlyBanned, 0);
    });

    it('drop destroys the socket; behind a trusted proxy it falls back to 403', async () => {
      const proxy = fresh();
      const { app, keeper } = await setup(framework, { trustedProxies: [proxy] }, { block: 'drop' });
      open.push(app);
      const direct = fresh();
      await keeper.ban(direct);
      assert.deepEqual(await send(app.port, { path: '/public', from: direct }), { dropped: true });
      await keeper.ban('198.51.100.77');
      const viaProxy = await send(app.port, {
        path: '/public',
        from: proxy,
        headers: { 'x-forwarded-for': '198.51.100.77' },
      });
      assert.equal(!viaProxy.dropped && viaProxy.status, 403);
      const other = await send(app.port, {
        path: '/public',
        from: proxy,
        headers: { 'x-forwarded-for': '198.51.100.78' },
      });
      assert.equal(!other.dropped && other.status, 200, 'the proxy itself is not refused');
    });

    it('a banned client cannot open a WebSocket; an open one is closed when it is banned', async () => {
      const { app, keeper } = await setup(framework);
      open.push(app);
      const client = fresh();
      const ws = new WebSocket(`ws://127.0.0.1:${app.port}/live`, { localAddress: client });
      await once(ws, 'message');
      const closed = once(ws, 'close');
      await keeper.ban(client);
      await closed;
      const again = new WebSocket(`ws://127.0.0.1:${app.port}/live`, { localAddress: client });
      again.on('error', () => {}); // the refused handshake ends in an error once terminated
      const [, response] = (await once(again, 'unexpected-response')) as [unknown, { statusCode: number }];
      assert.equal(response.statusCode, 403);
      again.terminate();
    });

    it('an open keep-alive connection is closed when its client is banned', async () => {
      const { app, keeper } = await setup(framework);
      open.push(app);
      const client = fresh();
      const socket = connect({ host: '127.0.0.1', port: app.port, localAddress: client });
      await once(socket, 'connect');
      socket.write('GET /public HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
      await once(socket, 'data');
      const closed = once(socket, 'close');
      await keeper.ban(client);
      await closed;
    });

    it('keeper.guard drops a banned direct peer before any HTTP parsing', async () => {
      const { app, keeper } = await setup(framework);
      open.push(app);
      keeper.guard(app.server, { connection: true, upgrade: false });
      const client = fresh();
      await keeper.ban(client);
      const socket = connect({ host: '127.0.0.1', port: app.port, localAddress: client });
      const [closedEarly] = await Promise.race([
        once(socket, 'close').then(() => [true]),
        sleep(1000).then(() => [false]),
      ]);
      assert.equal(closedEarly, true);
      socket.destroy();
    });

    it('the spoofing matrix resolves the same client through the adapter as in core', async () => {
      const groups = new Map<string, (typeof SPOOFING_MATRIX)[number][]>();
      for (const row of SPOOFING_MATRIX) {
        const key = `${row.trust}|${row.header}`;
        groups.set(key, [...(groups.get(key) ?? []), row]);
      }
      let checked = 0;
      for (const rows of groups.values()) {
        const first = rows[0] as (typeof rows)[number];
        const { app, failures, settle } = await setup(framework, {
          jails: { ...JAILS, who: { statuses: [401], paths: ['/whoami'], maxRetry: 1_000_000 } },
          trustedProxies: [...TRUST[first.trust]],
          clientIpHeader: first.header,
        });
        for (const row of rows) {
          failures.length = 0;
          const r = await app.inject({ url: '/whoami', headers: row.headers, remoteAddress: row.peer });
          assert.equal(r.statusCode, 401);
          await settle();
          assert.equal(failures[0]?.ip, row.ip, row.name);
          checked++;
        }
        await app.close();
      }
      assert.equal(checked, SPOOFING_MATRIX.length);
    });
  });
}
