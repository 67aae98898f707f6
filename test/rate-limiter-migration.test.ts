/**
 * docs/coming-from-rate-limiters.md's worked migrations do what the page says, on the jails it
 * gives: successful sign-ins never count; the sixth attempt within the window is refused with the
 * status the page names and a Retry-After of the ban's seconds, right password or not (the
 * handler does not run); the Express login jail (scope 'jail') refuses only on /login, the Fastify
 * one everywhere. Counted by the handlers' runs, not by jailkeeper's verdicts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createJailkeeper, type JailkeeperOptions } from '@jailkeeper/core';
import { jailkeeper } from '@jailkeeper/express';
import { jailkeeperPlugin } from '@jailkeeper/fastify';
import express from 'express';
import Fastify from 'fastify';
import request from 'supertest';

const PASSWORD = 'the right one';

/** The Express page's login jail, as written there. */
const EXPRESS_JAILS: JailkeeperOptions['jails'] = {
  login: {
    statuses: [401],
    methods: ['POST'],
    paths: ['/login'],
    maxRetry: 5,
    findTime: '15m',
    banTime: '15m',
    scope: 'jail',
    headers: 'ratelimit',
  },
};

/** The Fastify page's login jail, as written there (with the memory store: the jail is the point). */
const FASTIFY_JAILS: JailkeeperOptions['jails'] = {
  login: {
    statuses: [401],
    methods: ['POST'],
    paths: ['/login'],
    maxRetry: 5,
    findTime: '15m',
    banTime: '1h',
    banTimeIncrement: { maxTime: '1w' },
    headers: 'ratelimit',
  },
};

describe('the express-rate-limit migration', () => {
  it('never counts successes, refuses the 6th attempt with 429 and the ban as Retry-After, only on /login', async () => {
    const keeper = createJailkeeper({ jails: EXPRESS_JAILS, trustedProxies: 'express' });
    await keeper.ready;
    const app = express();
    app.set('trust proxy', 'loopback');
    const jk = jailkeeper(keeper, {
      response: { status: 429, body: { error: 'Too many attempts, try again later.' } },
    });
    app.use(jk);
    let logins = 0;
    let homes = 0;
    app.post('/login', express.json(), (req, res) => {
      logins++;
      res.status(req.body?.password === PASSWORD ? 204 : 401).end();
    });
    app.get('/', (_req, res) => {
      homes++;
      res.send('home');
    });
    try {
      for (let i = 0; i < 12; i++) {
        await request(app).post('/login').send({ password: PASSWORD }).expect(204);
      }
      const left: Array<string | undefined> = [];
      for (let i = 0; i < 5; i++) {
        const r = await request(app).post('/login').send({ password: 'guess' }).expect(401);
        // standardHeaders: the policy, and this client's attempts left, this one counted.
        assert.equal(r.headers['ratelimit-policy'], '"login";q=5;w=900');
        left.push(r.headers.ratelimit);
      }
      assert.deepEqual(
        left,
        [4, 3, 2, 1, 0].map((n) => `"login";r=${n};t=900`),
      );
      assert.equal(logins, 17, 'twelve successes and five failures ran the handler');
      const refused = await request(app).post('/login').send({ password: PASSWORD });
      assert.equal(refused.status, 429);
      assert.deepEqual(refused.body, { error: 'Too many attempts, try again later.' });
      const retryAfter = Number(refused.headers['retry-after']);
      assert.ok(retryAfter > 890 && retryAfter <= 900, `Retry-After ${retryAfter}`);
      assert.equal(refused.headers.ratelimit, `"login";r=0;t=${retryAfter}`);
      assert.equal(logins, 17, 'the right password did not reach the handler');
      await request(app).get('/').expect(200);
      assert.equal(homes, 1, "scope 'jail': the rest of the app still serves the client");
    } finally {
      await keeper.close();
    }
  });
});

describe('the @fastify/rate-limit migration', () => {
  it('never counts successes, refuses the 6th attempt with 403 and about 3600 s, on every route', async () => {
    const keeper = createJailkeeper({ jails: FASTIFY_JAILS });
    await keeper.ready;
    const app = Fastify();
    await app.register(jailkeeperPlugin, { keeper });
    let logins = 0;
    let homes = 0;
    app.post('/login', async (req, reply) => {
      logins++;
      return reply.code((req.body as { password?: string })?.password === PASSWORD ? 204 : 401).send();
    });
    app.get('/', async () => {
      homes++;
      return 'home';
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    // A connection per request: the ban closes the banned client's keep-alive connections.
    const login = (password: string) =>
      fetch(`${base}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', connection: 'close' },
        body: JSON.stringify({ password }),
      });
    try {
      for (let i = 0; i < 12; i++) assert.equal((await login(PASSWORD)).status, 204);
      for (let i = 0; i < 5; i++) {
        const r = await login('guess');
        assert.equal(r.status, 401);
        // addHeaders: the policy, and this client's attempts left, this one counted.
        assert.equal(r.headers.get('ratelimit-policy'), '"login";q=5;w=900');
        assert.equal(r.headers.get('ratelimit'), `"login";r=${4 - i};t=900`);
      }
      assert.equal(logins, 17);
      // fastify.inject: the same headers on a request from another client, in process.
      const injected = await app.inject({ method: 'POST', url: '/login', remoteAddress: '127.0.0.9' });
      assert.equal(injected.statusCode, 401);
      assert.equal(injected.headers.ratelimit, '"login";r=4;t=900');
      const refused = await login(PASSWORD);
      assert.equal(refused.status, 403);
      const retryAfter = Number(refused.headers.get('retry-after'));
      assert.ok(retryAfter > 3590 && retryAfter <= 3600, `Retry-After ${retryAfter}`);
      assert.equal(refused.headers.get('ratelimit'), `"login";r=0;t=${retryAfter}`);
      assert.equal(logins, 18, 'the right password did not reach the handler');
      assert.equal(
        (await fetch(`${base}/`, { headers: { connection: 'close' } })).status,
        403,
        'an app-scope ban: every route refuses',
      );
      assert.equal(homes, 0);
    } finally {
      await app.close();
      await keeper.close();
    }
  });
});
