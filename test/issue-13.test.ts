/**
 * Issue 13, the cases the route conformance matrix does not run itself: the express-login example
 * pardoned a client for OPTIONS /login (answered 200 by Express itself), and a Fastify route
 * declared before the plugin finished registering had its config ignored and never validated.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, describe, it } from 'node:test';
import { createJailkeeper, type PardonEvent } from '@jailkeeper/core';
import { recordingLogger } from '@jailkeeper/core/testing';
import { start } from '@jailkeeper/example-express-login/app.js';
import { jailkeeperPlugin } from '@jailkeeper/fastify';
import fastify5 from 'fastify';
import fastify4 from 'fastify4';
import { rawRequest } from './route-conformance-harness.js';

const closers: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

describe('issue 13: a pardon needs a login', () => {
  it('express-login: OPTIONS and HEAD on /login pardon nobody; a good POST /login does', async () => {
    const app = await start({ port: 0 });
    closers.push(() => app.close());
    const port = Number(new URL(app.url).port);
    const pardons: PardonEvent[] = [];
    app.keeper.on('pardon', (p) => pardons.push(p));
    const client = '127.13.0.1';
    assert.equal(await rawRequest(port, client, { method: 'OPTIONS', target: '/login' }), 200);
    assert.equal(await rawRequest(port, client, { method: 'HEAD', target: '/login' }), 404);
    await app.keeper.idle();
    assert.equal(pardons.length, 0, 'no pardon');
    const body = JSON.stringify({ user: 'alice', password: 'correct horse' });
    const login = await new Promise<number>((resolve, reject) => {
      const headers = { 'content-type': 'application/json', 'content-length': String(body.length) };
      const r = request(
        `${app.url}/login`,
        { method: 'POST', localAddress: client, agent: false, headers },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      r.on('error', reject);
      r.end(body);
    });
    assert.equal(login, 200);
    await app.keeper.idle();
    assert.deepEqual(
      pardons.map((p) => [p.jail, p.ip]),
      [['login', client]],
    );
  });
});

for (const [name, fastify] of [
  ['fastify 5', fastify5],
  ['fastify 4', fastify4 as unknown as typeof fastify5],
] as const) {
  describe(`issue 13: ${name}, a route declared before the plugin`, () => {
    it('a mistake in its config fails its request with the code, and a warning says what to change', async () => {
      const logger = recordingLogger();
      const keeper = createJailkeeper({ jails: { login: { statuses: [401], paths: ['/login'] } }, logger });
      const app = fastify();
      closers.push(() => app.close());
      let ran = 0;
      app.post('/login', { config: { jailkeeper: { jails: ['nope'] } } }, async (_req, reply) => {
        ran++;
        reply.code(401);
        return 'login';
      });
      await app.register(jailkeeperPlugin, { keeper });
      const r = await app.inject({ method: 'POST', url: '/login' });
      assert.equal(r.statusCode, 500);
      assert.match(r.body, /JK_ERR_UNKNOWN_JAIL|"nope"/);
      assert.equal(ran, 0, 'the handler did not run');
      assert.ok(
        logger.lines.some((l) => l.code === 'JK_WRN_ROUTE_BEFORE_PLUGIN'),
        JSON.stringify(logger.lines),
      );
    });
  });
}
