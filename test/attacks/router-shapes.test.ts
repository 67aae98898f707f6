/**
 * Parallel guesses at a login however Express declares it: a string, a RegExp, an array, a route
 * in a mounted router, a handler mounted with app.use, a RegExp in a mounted router, a sub-app
 * that mounts the middleware again and one that does not, an app handed to a router's `use`, a
 * sub-app that folds case under a parent that does not, a method override into a sub-app; and
 * spellings Express routes to the same handler (an absolute-form target, a fragment). Twenty
 * guesses from one client, each on its own connection, all sent before any answer (the password
 * check takes 30 ms), twice per shape: the handler, which counts its own runs, must run at most
 * maxRetry times each time (once more in the burst that first enters a sub-app without the
 * middleware, which jailkeeper learns from its first request), and the client ends up banned.
 *
 * Where the router gives no pattern text (a RegExp route), the request takes its slots by its
 * path, read as Express routes it; before, it took none there and the path kept the target's
 * scheme and host, or its fragment: all twenty guesses ran, and some were never counted at all.
 * Sub-apps without the middleware, an app handed to a router's use, a method override into a
 * sub-app and a case-folding sub-app under a case-sensitive parent ran all twenty too. The
 * memory store: the shapes are the adapter's, not the store's. Legitimate traffic through sub-apps
 * is checked at the end: an exempt long poll's parallel requests are never held or refused.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createJailkeeper, type Jailkeeper } from '@jailkeeper/core';
import { quietLogger } from '@jailkeeper/core/testing';
import { jailkeeper } from '@jailkeeper/express';
import express5 from 'express';
import express4 from 'express4';
import { freshClient } from './traffic.js';

const MAX_RETRY = 5;
const GUESSES = 20;
const OVERRIDE = 'x-http-method-override: PUT\r\n';

/** Each shape: what is sent (the request target, extra header lines), and the handler it reaches. */
/**
 * `learned`: the levels of sub-apps without the middleware in them that the first burst enters for
 * the first time: jailkeeper learns each from the first request that enters it, which takes no
 * slot (at most maxRetry + levels handler runs in the first burst, once per process); the requests
 * after it do.
 */
const SHAPES: ReadonlyArray<{
  shape: string;
  target: string;
  headers?: string;
  handler: string;
  learned?: number;
}> = [
  { shape: 'a string route', target: '/login', handler: '/login' },
  { shape: 'a RegExp route', target: '/rx-login', handler: '/rx-login' },
  { shape: 'a RegExp route, absolute-form', target: 'http://127.0.0.1/rx-login', handler: '/rx-login' },
  { shape: 'a RegExp route, with a fragment', target: '/rx-login#x', handler: '/rx-login' },
  { shape: 'an array route', target: '/signin', handler: '/signin' },
  { shape: 'a route in a router mounted at /auth', target: '/auth/login', handler: '/auth/login' },
  { shape: 'a handler mounted with app.use', target: '/use-login', handler: '/use-login' },
  { shape: 'a RegExp route in a router mounted at /rxr', target: '/rxr/login', handler: '/rxr/login' },
  { shape: 'a sub-app that mounts the middleware too', target: '/sub/login', handler: '/sub/login' },
  { shape: 'a sub-app that does not', target: '/bare-sub/login', handler: '/bare-sub/login', learned: 1 },
  {
    shape: 'a sub-app that does not, absolute-form',
    target: 'http://127.0.0.1/bare-sub/login',
    handler: '/bare-sub/login',
  },
  {
    shape: 'a sub-app that does not, with a fragment',
    target: '/bare-sub/login#x',
    handler: '/bare-sub/login',
  },
  { shape: "an app handed to a router's use", target: '/r/sub/login', handler: '/r/sub/login' },
  {
    shape: 'a sub-app in a sub-app, neither with the middleware',
    target: '/outer/inner/login',
    handler: '/outer/inner/login',
    learned: 2,
  },
  {
    shape: 'a sub-app at / that every other request passed through first',
    target: '/root-sub-login',
    handler: '/root-sub-login',
    learned: 1,
  },
  {
    shape: 'a sub-app that folds case, under a case-sensitive parent',
    target: '/cs/LOGIN',
    handler: '/cs/login',
    learned: 1,
  },
  {
    shape: 'a method override (PUT) into a sub-app',
    target: '/mo/password',
    headers: OVERRIDE,
    handler: '/mo/password',
    learned: 1,
  },
];

/** One POST from `from` on its own connection: its status (0: the connection closed first). */
function send(port: number, target: string, from: string, headers = '', method = 'POST'): Promise<number> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: from });
    let received = '';
    socket.setEncoding('latin1');
    socket.on('connect', () =>
      socket.write(
        `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n${headers}Connection: close\r\n\r\n`,
      ),
    );
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(received)?.[1] ?? 0)));
  });
}

for (const [name, express] of [
  ['Express 5', express5],
  ['Express 4', express4 as unknown as typeof express5],
] as const) {
  describe(`${name}: parallel guesses at a login, however it is declared`, () => {
    let keeper: Jailkeeper;
    let server: Server;
    const runs = new Map<string, number>();

    before(async () => {
      keeper = createJailkeeper({
        jails: {
          login: {
            statuses: [401],
            paths: [...new Set(SHAPES.filter((s) => s.headers === undefined).map((s) => s.handler))],
            methods: ['POST'],
            maxRetry: MAX_RETRY,
            banTime: '1h',
          },
          password: { statuses: [401], paths: ['/mo/password'], methods: ['PUT'], maxRetry: MAX_RETRY },
          api: { statuses: [401], paths: ['/api/**', '/bare-api/**', '/parent-api/**'], maxRetry: MAX_RETRY },
        },
        attempts: { wait: '1s' },
        logger: quietLogger,
      });
      await keeper.ready;
      const jk = jailkeeper(keeper);
      const handler =
        (name: string, status: number, ms: number) =>
        async (req: express5.Request, res: express5.Response) => {
          const key = `${req.socket.remoteAddress} ${name}`;
          runs.set(key, (runs.get(key) ?? 0) + 1);
          await sleep(ms); // the password check, or a long poll
          res.status(status).send(status === 200 ? 'ok' : 'no');
        };
      const login = (name: string) => handler(name, 401, 30);
      const app = express();
      app.set('case sensitive routing', true);
      app.use(jk);
      app.use((req, _res, next) => {
        const override = req.headers['x-http-method-override'];
        if (req.method === 'POST' && typeof override === 'string') req.method = override.toUpperCase();
        next();
      });
      // Mounted at '/' before everything: every other request enters it and passes through.
      const atRoot = express();
      atRoot.post('/root-sub-login', login('/root-sub-login'));
      app.use(atRoot);
      // Also at '/', and never entered for good: every request passes through it.
      const passedThrough = express();
      passedThrough.get('/never-asked', handler('/never-asked', 200, 0));
      app.use(passedThrough);
      app.post('/login', login('/login'));
      app.post(/^\/rx-login\/?$/i, login('/rx-login'));
      app.post(['/log-in', '/signin'], login('/signin'));
      const auth = express.Router();
      auth.post('/login', login('/auth/login'));
      app.use('/auth', auth);
      app.use('/use-login', login('/use-login'));
      const rxr = express.Router();
      rxr.post(/^\/login$/, login('/rxr/login'));
      app.use('/rxr', rxr);
      const sub = express();
      sub.use(jk);
      sub.post('/login', login('/sub/login'));
      app.use('/sub', sub);
      const bareSub = express();
      bareSub.post('/login', login('/bare-sub/login'));
      app.use('/bare-sub', bareSub);
      const routed = express();
      routed.post('/login', login('/r/sub/login'));
      const r = express.Router();
      r.use('/sub', routed);
      app.use('/r', r);
      // Its router is made before it is mounted: it folds case, whatever its parent does.
      const folding = express();
      folding.post('/login', login('/cs/login'));
      app.use('/cs', folding);
      const outer = express();
      const inner = express();
      inner.post('/login', login('/outer/inner/login'));
      outer.use('/inner', inner);
      app.use('/outer', outer);
      const override = express();
      override.put('/password', login('/mo/password'));
      app.use('/mo', override);
      // An exempt long poll in a sub-app, with and without the middleware mounted in it.
      const api = express();
      api.use(jk);
      api.get('/poll', jk.exempt(), handler('/api/poll', 200, 300));
      app.use('/api', api);
      const bareApi = express();
      bareApi.get('/poll', jk.exempt(), handler('/bare-api/poll', 200, 300));
      app.use('/bare-api', bareApi);
      app.get('/parent-api/poll', jk.exempt(), handler('/parent-api/poll', 200, 300));
      server = app.listen(0, '127.0.0.1');
      await once(server, 'listening');
    });
    after(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await keeper.close();
    });

    for (const { shape, target, headers, handler, learned } of SHAPES) {
      it(`${shape} (${target}): at most ${MAX_RETRY} handler runs of ${GUESSES} parallel guesses, twice${learned ? ` (the first burst ${learned} more)` : ''}`, async () => {
        const port = (server.address() as AddressInfo).port;
        for (const burst of ['first', 'second']) {
          const client = freshClient();
          const statuses = await Promise.all(
            Array.from({ length: GUESSES }, () => send(port, target, client, headers)),
          );
          await keeper.idle();
          const ran = runs.get(`${client} ${handler}`) ?? 0;
          const seen = `${burst} burst: ${ran} handler runs; answers ${statuses.join(',')}`;
          assert.ok(ran >= 1, `the guesses never reached the handler: ${seen}`);
          const bound = burst === 'first' ? MAX_RETRY + (learned ?? 0) : MAX_RETRY;
          assert.ok(ran <= bound, `${seen} (maxRetry ${MAX_RETRY}, bound ${bound})`);
          // The unslotted runs of a learned first burst may end after the ban, which closes their
          // connections before they answer.
          const answered = statuses.filter((s) => s === 401).length;
          assert.ok(
            answered <= ran && answered >= ran - (bound - MAX_RETRY),
            `every run answered 401: ${seen}`,
          );
          assert.ok(keeper.check(client).banned, `the client is banned: ${seen}`);
        }
      });
    }

    it('one app object mounted in two places is not learned as the other mount: a covered login bans, an uncovered one never counts', async () => {
      // Express notes only an app's last mount (its parent, mountpath, request prototype): taken
      // as the app of its other mount, a first version judged /o/b/login as /o/login.
      const two = createJailkeeper({
        jails: {
          login: {
            statuses: [401],
            paths: ['/a/login', '/o/b/login'],
            methods: ['POST'],
            maxRetry: MAX_RETRY,
          },
        },
        logger: quietLogger,
      });
      const jk = jailkeeper(two);
      const local = new Map<string, number>();
      const guess = (name: string) => async (req: express5.Request, res: express5.Response) => {
        const key = `${req.socket.remoteAddress} ${name}`;
        local.set(key, (local.get(key) ?? 0) + 1);
        await sleep(30);
        res.status(401).send('no');
      };
      const app = express();
      app.use(jk);
      const shared = express();
      shared.post('/login', guess('shared'));
      const other = express();
      other.post('/login', guess('other'));
      other.use('/b', shared);
      app.use('/a', shared);
      app.use('/o', other);
      const listening = app.listen(0, '127.0.0.1');
      await once(listening, 'listening');
      try {
        const port = (listening.address() as AddressInfo).port;
        for (const round of [1, 2]) {
          const covered = freshClient();
          await Promise.all(Array.from({ length: GUESSES }, () => send(port, '/o/b/login', covered)));
          const uncovered = freshClient();
          await Promise.all(Array.from({ length: GUESSES }, () => send(port, '/o/login', uncovered)));
          await two.idle();
          assert.ok(
            two.check(covered).banned,
            `round ${round}: /o/b/login is counted (${local.get(`${covered} shared`)} runs)`,
          );
          assert.equal(two.check(uncovered).banned, false, `round ${round}: /o/login is not a jail's`);
          assert.equal(local.get(`${uncovered} other`), GUESSES, `round ${round}: /o/login never held`);
        }
      } finally {
        listening.closeAllConnections();
        await new Promise((resolve) => listening.close(resolve));
        await two.close();
      }
    });

    for (const mount of ['/api', '/bare-api', '/parent-api']) {
      it(`an exempt long poll (${mount}, past two sub-apps at '/'): eight in parallel from one browser, none held or refused`, async () => {
        const port = (server.address() as AddressInfo).port;
        // The first request shows jailkeeper the sub-app; until then a request is judged by its
        // path (docs/security.md), and the routes' own configs are not known.
        assert.equal(await send(port, `${mount}/poll`, freshClient(), '', 'GET'), 200);
        const browser = freshClient();
        const polls = Promise.all(
          Array.from({ length: 8 }, () => send(port, `${mount}/poll`, browser, '', 'GET')),
        );
        // While the polls wait in their handlers (300 ms): all eight are in, none holds a slot.
        await sleep(150);
        const inHandlers = runs.get(`${browser} ${mount}/poll`);
        const held = keeper.attempts();
        assert.deepEqual(await polls, Array(8).fill(200));
        assert.equal(inHandlers, 8, 'all eight polls reached the handler at once');
        assert.deepEqual(held.held, {}, 'an exempt route holds no slot');
        assert.equal(held.admitting, 0, 'no poll waited for admission');
      });
    }
  });
}
