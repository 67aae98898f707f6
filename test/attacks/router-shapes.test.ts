/**
 * Parallel guesses at a login however Express declares it: a string, a RegExp, an array, a route
 * in a mounted router, a handler mounted with app.use, a RegExp in a mounted router, a sub-app
 * that mounts the middleware again and one that does not. Twenty guesses from one client, each on
 * its own connection, all sent before any answer (the password check takes 30 ms): the handler,
 * which counts its own runs, must run at most maxRetry times, and the client ends up banned.
 *
 * Where the router gives no pattern text (a RegExp, a sub-app whose routes jailkeeper does not
 * know), the request is judged by its path; before it also took its slots by its path, all
 * twenty guesses ran there. The memory store: the shapes are the adapter's, not the store's.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
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

/** Each shape, and the path a guess at it is sent to. */
const SHAPES: ReadonlyArray<[string, string]> = [
  ['a string route', '/login'],
  ['a RegExp route', '/rx-login'],
  ['an array route', '/signin'],
  ['a route in a router mounted at /auth', '/auth/login'],
  ['a handler mounted with app.use', '/use-login'],
  ['a RegExp route in a router mounted at /rxr', '/rxr/login'],
  ['a sub-app that mounts the middleware too', '/sub/login'],
  ['a sub-app that does not', '/bare-sub/login'],
];

/** One guess from `from` on its own connection: its status (0: the connection closed first). */
function guess(port: number, path: string, from: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, method: 'POST', path, agent: false, localAddress: from },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(0));
    req.end();
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
            paths: SHAPES.map(([, path]) => path),
            methods: ['POST'],
            maxRetry: MAX_RETRY,
            banTime: '1h',
          },
        },
        logger: quietLogger,
      });
      await keeper.ready;
      const jk = jailkeeper(keeper);
      const login = async (req: express5.Request, res: express5.Response) => {
        const key = `${req.socket.remoteAddress} ${req.originalUrl}`;
        runs.set(key, (runs.get(key) ?? 0) + 1);
        await sleep(30); // the password check
        res.status(401).send('no');
      };
      const app = express();
      app.use(jk);
      app.post('/login', login);
      app.post(/^\/rx-login\/?$/i, login);
      app.post(['/log-in', '/signin'], login);
      const auth = express.Router();
      auth.post('/login', login);
      app.use('/auth', auth);
      app.use('/use-login', login);
      const rxr = express.Router();
      rxr.post(/^\/login$/, login);
      app.use('/rxr', rxr);
      const sub = express();
      sub.use(jk);
      sub.post('/login', login);
      app.use('/sub', sub);
      const bareSub = express();
      bareSub.post('/login', login);
      app.use('/bare-sub', bareSub);
      server = app.listen(0, '127.0.0.1');
      await once(server, 'listening');
    });
    after(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await keeper.close();
    });

    for (const [shape, path] of SHAPES) {
      it(`${shape} (${path}): at most ${MAX_RETRY} handler runs of ${GUESSES} parallel guesses`, async () => {
        const client = freshClient();
        const port = (server.address() as AddressInfo).port;
        const statuses = await Promise.all(Array.from({ length: GUESSES }, () => guess(port, path, client)));
        await keeper.idle();
        const ran = runs.get(`${client} ${path}`) ?? 0;
        const seen = `${ran} handler runs; answers ${statuses.join(',')}`;
        assert.ok(ran >= 1, `the guesses never reached the handler: ${seen}`);
        assert.ok(ran <= MAX_RETRY, `${seen} (maxRetry ${MAX_RETRY})`);
        assert.equal(statuses.filter((s) => s === 401).length, ran, `every run answered 401: ${seen}`);
        assert.ok(keeper.check(client).banned, `the client is banned: ${seen}`);
      });
    }
  });
}
