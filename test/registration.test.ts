/**
 * Two mistakes a plausible config makes, caught at startup: the adapter registered twice on one
 * app (each copy took its own slot, so logins waited and got 429 instead of a ban), and a rule
 * that names a path no route has while routes below it exist (`exempt: ['/ws']` beside
 * `/ws/:room`: the seed incident again).
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { serve } from '@hono/node-server';
import { createJailkeeper, type JailkeeperOptions } from '@jailkeeper/core';
import { jailkeeper } from '@jailkeeper/express';
import { jailkeeperPlugin } from '@jailkeeper/fastify';
import { jailkeeper as honoJailkeeper } from '@jailkeeper/hono';
import express from 'express';
import fastify from 'fastify';
import { Hono } from 'hono';
import request from 'supertest';

const quiet = { info() {}, warn() {}, error() {} };
const JAILS: JailkeeperOptions['jails'] = {
  forbidden: { statuses: [403], exempt: ['/ws', '/health'] },
};
const keeperWith = () => createJailkeeper({ logger: quiet, jails: JAILS });
const warningsOf = (keeper: ReturnType<typeof keeperWith>) => {
  const seen: Array<{ code: string; message: string }> = [];
  keeper.on('warning', (w) => seen.push(w));
  return seen;
};

describe('registered twice', () => {
  it('Fastify: a second register() is refused at startup with JK_ERR_REGISTERED_TWICE', async () => {
    const keeper = keeperWith();
    const app = fastify();
    await app.register(jailkeeperPlugin, { keeper });
    await assert.rejects(
      async () => {
        await app.register(jailkeeperPlugin, { keeper });
      },
      { code: 'JK_ERR_REGISTERED_TWICE' },
    );
    await app.close();
    await keeper.close();
  });

  it('Express: app.use(jk) twice fails the request with JK_ERR_REGISTERED_TWICE, the handler never run', async () => {
    const keeper = keeperWith();
    const jk = jailkeeper(keeper);
    const app = express();
    let runs = 0;
    let code: string | undefined;
    app.use(jk);
    app.use(jk);
    app.get('/', (_req, res) => {
      runs++;
      res.end('ok');
    });
    app.use((error: { code?: string }, _req: express.Request, res: express.Response, _next: unknown) => {
      code = error.code;
      res.status(500).end();
    });
    const res = await request(app).get('/');
    assert.equal(res.status, 500);
    assert.equal(code, 'JK_ERR_REGISTERED_TWICE');
    assert.equal(runs, 0);
    await keeper.close();
  });

  it('Express: mounted once and again in a sub-app is fine', async () => {
    const keeper = keeperWith();
    const jk = jailkeeper(keeper);
    const app = express();
    const sub = express();
    sub.use(jk);
    sub.get('/x', (_req, res) => {
      res.end('sub');
    });
    app.use(jk);
    app.use('/sub', sub);
    const res = await request(app).get('/sub/x');
    assert.equal(res.status, 200);
    await keeper.close();
  });

  it('Hono: the middleware twice on one path fails the request with JK_ERR_REGISTERED_TWICE', async () => {
    const keeper = keeperWith();
    const jk = honoJailkeeper(keeper);
    const app = new Hono();
    let code: string | undefined;
    app.use(jk);
    app.use(jk);
    app.get('/', (c) => c.text('ok'));
    app.onError((error, c) => {
      code = (error as { code?: string }).code;
      return c.text('error', 500);
    });
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
    await new Promise((resolve) => server.once('listening', resolve));
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    assert.equal(res.status, 500);
    assert.equal(code, 'JK_ERR_REGISTERED_TWICE');
    server.close();
    await keeper.close();
  });
});

describe('a rule that names no route while routes below it exist', () => {
  it('Fastify: reported when the app is ready, with the rule that would cover them', async () => {
    const keeper = keeperWith();
    const warnings = warningsOf(keeper);
    const app = fastify();
    await app.register(jailkeeperPlugin, { keeper });
    app.get('/ws/:room', async () => 'room');
    app.get('/health', async () => 'ok');
    await app.ready();
    const found = warnings.filter((w) => w.code === 'JK_WRN_PATTERN_MISSES_ROUTES');
    assert.equal(found.length, 1, JSON.stringify(warnings));
    assert.match(found[0]?.message ?? '', /'\/ws'.*'\/ws\/:room'.*'\/ws\/\*\*'/);
    await app.close();
    await keeper.close();
  });

  it('Express: reported when the router is first walked; a covered rule is not', async () => {
    const keeper = createJailkeeper({
      logger: quiet,
      jails: { forbidden: { statuses: [403], exempt: ['/ws', '/ws/**', '/admin'] } },
    });
    const warnings = warningsOf(keeper);
    const app = express();
    app.use(jailkeeper(keeper));
    const rooms = express.Router();
    rooms.get('/:room', (_req, res) => {
      res.end('room');
    });
    app.use('/ws', rooms);
    app.get('/admin/users', (_req, res) => {
      res.end('users');
    });
    await request(app).get('/ws/lobby');
    const found = warnings.filter((w) => w.code === 'JK_WRN_PATTERN_MISSES_ROUTES');
    assert.deepEqual(
      found.map((w) => /names '([^']+)'/.exec(w.message)?.[1]),
      ['/admin'],
      'only the rule nothing covers',
    );
    await keeper.close();
  });

  it("Express, the middleware only in a sub-app: a rule naming the full path ('/api/login') is reported with the rule to write", async () => {
    // The middleware reads the routes of the app it runs in, without that app's mount: a jail on
    // '/api/login' never counted there, silently (found 2026-12-07: 6 failed logins, no ban).
    const keeper = createJailkeeper({
      logger: quiet,
      jails: { login: { statuses: [401], paths: ['/v1/api/login'], methods: ['POST'], maxRetry: 3 } },
    });
    const warnings = warningsOf(keeper);
    const top = express();
    const v1 = express();
    const sub = express();
    sub.use(jailkeeper(keeper));
    sub.post('/login', (_req, res) => {
      res.status(401).end();
    });
    sub.get('/ws/:room', (_req, res) => {
      res.end('room');
    });
    v1.use('/api', sub);
    top.use('/v1', v1);
    top.get('/health', (_req, res) => {
      res.end('ok');
    });
    assert.equal((await request(top).post('/v1/api/login')).status, 401);
    const found = warnings.filter((w) => w.code === 'JK_WRN_PATTERN_MISSES_ROUTES');
    assert.deepEqual(
      found.map((w) => [/names '([^']+)'/.exec(w.message)?.[1], /Write '([^']+)'/.exec(w.message)?.[1]]),
      [['/v1/api/login', '/login']],
    );
    assert.match(found[0]?.message ?? '', /mounted at '\/v1\/api'/);
    await keeper.close();
  });

  it('the check with a mount: full paths under it, globs too, by the case the router reads; nothing outside it', () => {
    const keeper = createJailkeeper({
      logger: quiet,
      jails: {
        forbidden: {
          statuses: [403],
          exempt: ['/API/ws/**', '/api/login', '/api/nothing', '/health', '/login'],
        },
      },
    });
    const found = keeper.checkRoutes(['/login', '/ws/:room'], true, '/api');
    assert.deepEqual(
      found.map((u) => [u.pattern, u.cover, u.mount]),
      [['/API/ws/**', '/ws/**', '/api']],
      "'/api/login' is reported only where '/login' is not covered, '/api/nothing' names no route",
    );
    assert.deepEqual(
      keeper.checkRoutes(['/login', '/ws/:room'], false, '/api').map((u) => u.pattern),
      [],
      'case-sensitive: /API is not /api',
    );
    void keeper.close();
  });

  it('Express, the middleware only in a sub-app: rules written as its routes, or outside its mount, are not reported', async () => {
    const keeper = createJailkeeper({
      logger: quiet,
      jails: { login: { statuses: [401], paths: ['/login', '/other/login'], methods: ['POST'] } },
    });
    const warnings = warningsOf(keeper);
    const parent = express();
    const sub = express();
    sub.use(jailkeeper(keeper));
    sub.post('/login', (_req, res) => {
      res.status(401).end();
    });
    parent.use('/api', sub);
    await request(parent).post('/api/login');
    // mounted at a pattern: what it matched is not one path, so nothing is said
    const tenants = express();
    const keeper2 = createJailkeeper({
      logger: quiet,
      jails: { login: { statuses: [401], paths: ['/t/acme/login'], methods: ['POST'] } },
    });
    const warnings2 = warningsOf(keeper2);
    const sub2 = express();
    sub2.use(jailkeeper(keeper2));
    sub2.post('/login', (_req, res) => {
      res.status(401).end();
    });
    tenants.use('/t/:tenant', sub2);
    await request(tenants).post('/t/acme/login');
    assert.deepEqual(
      [...warnings, ...warnings2].filter((w) => w.code === 'JK_WRN_PATTERN_MISSES_ROUTES'),
      [],
    );
    await keeper.close();
    await keeper2.close();
  });

  it('the check itself: prefixes, not substrings, and exact routes count as covered', () => {
    const keeper = createJailkeeper({
      logger: quiet,
      jails: { forbidden: { statuses: [403], exempt: ['/ws', '/api', '/health'] } },
    });
    const found = keeper.checkRoutes(['/wsx', '/api', '/api/:id', '/health/live']);
    assert.deepEqual(
      found.map((u) => [u.pattern, u.cover]),
      [['/health', '/health/**']],
    );
    void keeper.close();
  });
});
