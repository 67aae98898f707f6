/**
 * The middleware as an Express user sees it, through supertest, on Express 4 and 5: a banned
 * client is refused before any handler (counted by the handlers themselves), and the route
 * helpers are honoured. The cross-package scenarios over real sockets are in test/adapters.test.ts.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type ClientRequest, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { createJailkeeper, type Jailkeeper } from '@jailkeeper/core';
import { quietLogger } from '@jailkeeper/core/testing';
import express5 from 'express';
import express4 from 'express4';
import request from 'supertest';
import { jailkeeper } from '../src/index.js';

function app(express: typeof express5, keeper: Jailkeeper) {
  const runs = { login: 0, ws: 0 };
  const jk = jailkeeper(keeper);
  const server = express();
  server.use(jk);
  server.post('/login', (_req, res) => {
    runs.login++;
    res.status(401).send('no');
  });
  server.get('/ws', jk.exempt(), (_req, res) => {
    runs.ws++;
    res.status(403).send('upgrade expected');
  });
  return { server, runs };
}

/** A POST to `path` whose answer's head has arrived (its body may still be open). */
function head(server: Server, path: string): Promise<{ res: IncomingMessage; req: ClientRequest }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port: (server.address() as AddressInfo).port,
      method: 'POST',
      path,
      agent: false,
    });
    req.on('response', (res) => resolve({ res, req }));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Three 401s whose bodies stay open, then a fourth guess: each 401 must settle at its status
 * (nothing held while the bodies are open), and the fourth is refused. `first`: a path answered
 * 401 in full before them.
 */
async function openAnswers(
  server: ReturnType<typeof express5>,
  path: string,
  keeper: Jailkeeper,
  first?: string,
): Promise<void> {
  const listening = server.listen(0, '127.0.0.1');
  await once(listening, 'listening');
  const open: { req: ClientRequest }[] = [];
  try {
    if (first !== undefined) {
      // A failure answered in full first: the client is then a suspect in app-wide jails.
      const answer = await head(listening, first);
      answer.res.resume();
      await once(answer.res, 'end');
      await keeper.idle();
    }
    for (let i = 0; i < 3; i++) {
      const answer = await head(listening, path);
      assert.equal(answer.res.statusCode, 401);
      open.push(answer);
    }
    assert.deepEqual(keeper.attempts().held, {}, 'the open answers hold no slot: settled at their status');
    const fourth = await head(listening, path);
    open.push(fourth);
    assert.equal(fourth.res.statusCode, 403, 'three 401s counted, the fourth refused');
  } finally {
    for (const { req } of open) req.destroy();
    listening.closeAllConnections();
    await new Promise((resolve) => listening.close(resolve));
  }
}

for (const [name, express] of [
  ['Express 5', express5],
  ['Express 4', express4 as unknown as typeof express5],
] as const) {
  describe(`jailkeeper() with supertest: ${name}`, () => {
    it('refuses at maxRetry before the handler runs, with Retry-After', async () => {
      const keeper = createJailkeeper({
        jails: { login: { statuses: [401], paths: ['/login'], maxRetry: 3, banTime: '1h' } },
        logger: quietLogger,
      });
      const { server, runs } = app(express, keeper);
      for (let i = 0; i < 3; i++) {
        await request(server).post('/login').expect(401);
        await keeper.idle();
      }
      const refused = await request(server).post('/login').expect(403);
      assert.equal(refused.headers['retry-after'], '3600');
      assert.deepEqual(refused.body, { error: 'Forbidden' });
      assert.equal(runs.login, 3, 'the handler ran for the counted attempts only');
      await keeper.close();
    });

    it('answers whose bodies stay open settle at their status: nothing held, the next guess refused', async () => {
      // An event stream, a long poll, a 401 streamed: the slot is freed when the status is
      // written, not when the body ends (test/attacks/account-lockout.test.ts, on real streams).
      const keeper = createJailkeeper({
        jails: { login: { statuses: [401], paths: ['/login'], maxRetry: 3, banTime: '1h' } },
        // The open answers stay open when the third bans (their bodies are the test's).
        closeConnectionsOnBan: false,
        logger: quietLogger,
      });
      const server = express();
      server.use(jailkeeper(keeper));
      let runs = 0;
      server.post('/login', (_req, res) => {
        runs++;
        res.status(401).write('no');
      });
      await openAnswers(server, '/login', keeper);
      assert.equal(runs, 3, 'the handler ran for the three counted guesses only');
      await keeper.close();
    });

    it('an exempt route never counts: twenty 403s on /ws ban nobody', async () => {
      const keeper = createJailkeeper({
        jails: { forbidden: { statuses: [403], maxRetry: 2 } },
        logger: quietLogger,
      });
      const { server, runs } = app(express, keeper);
      for (let i = 0; i < 20; i++) await request(server).get('/ws').expect(403);
      await keeper.idle();
      assert.equal(runs.ws, 20);
      assert.deepEqual(await keeper.bans(), []);
      await keeper.close();
    });
  });
}

describe('routeConfigOf: a config the route handler carries (frameworks declaring routes on Express)', () => {
  it('exempts and narrows the routes whose handlers carry a config, as jk.route() would', async () => {
    const keeper = createJailkeeper({
      jails: {
        forbidden: { statuses: [403], maxRetry: 100 },
        login: { statuses: [401, 403], maxRetry: 100 },
      },
      logger: quietLogger,
    });
    const failures: string[] = [];
    keeper.on('failure', (f) => failures.push(`${f.route} ${f.jail}`));
    const kConfig = Symbol('config');
    const handler = (config?: unknown) =>
      Object.assign((_req: unknown, res: { sendStatus(s: number): void }) => res.sendStatus(403), {
        [kConfig]: config,
      });
    const app = express5();
    app.use(jailkeeper(keeper, { routeConfigOf: (h) => (h as unknown as Record<symbol, never>)[kConfig] }));
    app.get('/exempt', handler(false));
    app.get('/only-login', handler({ jails: ['login'] }));
    app.get('/plain', handler());
    for (const path of ['/exempt', '/only-login', '/plain']) await request(app).get(path).expect(403);
    await keeper.idle();
    assert.deepEqual(failures.sort(), ['/only-login login', '/plain forbidden', '/plain login']);
    await keeper.close();
  });
});
