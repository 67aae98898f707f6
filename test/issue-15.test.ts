/**
 * Issue 15, what an adopter expects on day one, on Express 4 and 5 and Fastify 4 and 5: refusals
 * the app renders (onRefused), a skip predicate, failures marked by the app (fail()), the resolved
 * client in the app's hands, 503 while a store fails closed, upgrades refused with the configured
 * response. Ground truth: the handlers count their own runs.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { after, describe, it } from 'node:test';
import { serve } from '@hono/node-server';
import {
  createJailkeeper,
  createMemoryStore,
  type Jailkeeper,
  JailkeeperError,
  type JailkeeperOptions,
  type Store,
} from '@jailkeeper/core';
import type { AdapterOptions, RefusalInfo } from '@jailkeeper/core/adapter';
import type { ClientIdentity } from '@jailkeeper/core/operator';
import { quietLogger } from '@jailkeeper/core/testing';
import { jailkeeper } from '@jailkeeper/express';
import { jailkeeperPlugin } from '@jailkeeper/fastify';
import { jailkeeper as honoJailkeeper, type JailkeeperEnv } from '@jailkeeper/hono';
import { JailkeeperModule, JailkeeperService } from '@jailkeeper/nestjs';
import { Controller, Get, HttpCode, Inject, Module, Post, Req, UnauthorizedException } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import express5 from 'express';
import express4 from 'express4';
import fastify5 from 'fastify';
import fastify4 from 'fastify4';
import { Hono } from 'hono';
import { decorate } from './adapters-harness.js';

const JAILS: JailkeeperOptions['jails'] = {
  graphql: { statuses: [401], paths: ['/graphql'], maxRetry: 3, banTime: '1h' },
  login: { statuses: [401], paths: ['/login'], maxRetry: 3, banTime: '1h' },
};

interface Probe {
  readonly port: number;
  readonly runs: Record<string, number>;
  /** The client each handler saw through jailkeeper, last request. */
  readonly seen: { client?: ClientIdentity; error?: unknown };
  close(): Promise<void>;
}

type Options = AdapterOptions<unknown, unknown>;
type Start = (keeper: Jailkeeper, options: Options) => Promise<Probe>;

function expressApp(express: typeof express5): Start {
  return async (keeper, options) => {
    const runs: Record<string, number> = { graphql: 0, login: 0, health: 0 };
    const seen: Probe['seen'] = {};
    const jk = jailkeeper(keeper, options as never);
    const app = express();
    app.use(jk);
    app.post('/graphql', (req, res) => {
      runs.graphql = (runs.graphql ?? 0) + 1;
      seen.client = jk.client(req);
      // A GraphQL error answers 200: the app says it failed.
      if (req.headers.authorization !== 'good') jk.fail(req);
      res.json({ errors: req.headers.authorization === 'good' ? undefined : [{ message: 'denied' }] });
    });
    app.post('/login', (_req, res) => {
      runs.login = (runs.login ?? 0) + 1;
      res.status(401).send('no');
    });
    app.get('/health', (_req, res) => {
      runs.health = (runs.health ?? 0) + 1;
      res.send('ok');
    });
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    jk.guard(server);
    return probe(server, runs, seen);
  };
}

function fastifyApp(fastify: typeof fastify5): Start {
  return async (keeper, options) => {
    const runs: Record<string, number> = { graphql: 0, login: 0, health: 0 };
    const seen: Probe['seen'] = {};
    const app = fastify();
    await app.register(jailkeeperPlugin, { keeper, ...(options as object) } as never);
    app.post('/graphql', async (request, reply) => {
      runs.graphql = (runs.graphql ?? 0) + 1;
      seen.client = request.jailkeeper.client;
      if (request.headers.authorization !== 'good') reply.jailkeeper.fail();
      return { errors: request.headers.authorization === 'good' ? undefined : [{ message: 'denied' }] };
    });
    app.post('/login', async (_request, reply) => {
      runs.login = (runs.login ?? 0) + 1;
      reply.code(401);
      return 'no';
    });
    app.get('/health', async () => {
      runs.health = (runs.health ?? 0) + 1;
      return 'ok';
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    return probe(app.server, runs, seen, () => app.close());
  };
}

function nestApp(platform: 'express' | 'fastify'): Start {
  return async (keeper, options) => {
    const runs: Record<string, number> = { graphql: 0, login: 0, health: 0 };
    const seen: Probe['seen'] = {};
    class Routes {
      constructor(readonly jk: JailkeeperService) {}
      graphql(req: { headers: Record<string, string> }) {
        runs.graphql = (runs.graphql ?? 0) + 1;
        seen.client = this.jk.client(req);
        if (req.headers.authorization !== 'good') this.jk.fail(req);
        return { errors: req.headers.authorization === 'good' ? undefined : [{ message: 'denied' }] };
      }
      login() {
        runs.login = (runs.login ?? 0) + 1;
        throw new UnauthorizedException();
      }
      health() {
        runs.health = (runs.health ?? 0) + 1;
        return 'ok';
      }
      nope(req: unknown) {
        try {
          this.jk.fail(req, { jails: ['nope'] });
        } catch (error) {
          seen.error = error;
        }
        return 'x';
      }
    }
    decorate(Routes.prototype, 'graphql', Post('graphql'), HttpCode(200));
    Req()(Routes.prototype, 'graphql', 0);
    decorate(Routes.prototype, 'login', Post('login'));
    decorate(Routes.prototype, 'health', Get('health'));
    decorate(Routes.prototype, 'nope', Get('nope'));
    Req()(Routes.prototype, 'nope', 0);
    Inject(JailkeeperService)(Routes, undefined as never, 0);
    Controller()(Routes);
    class AppModule {}
    Module({ imports: [JailkeeperModule.forRoot({ keeper, ...options })], controllers: [Routes] })(AppModule);
    const app =
      platform === 'fastify'
        ? await NestFactory.create(AppModule, new FastifyAdapter(), { logger: false })
        : await NestFactory.create(AppModule, { logger: false });
    await app.listen(0, '127.0.0.1');
    return probe(app.getHttpServer(), runs, seen, () => app.close());
  };
}

/** Hono's onRefused returns a Response: the test's (req, res, info) writer is run against a recorder. */
function honoApp(): Start {
  return async (keeper, options) => {
    const runs: Record<string, number> = { graphql: 0, login: 0, health: 0 };
    const seen: Probe['seen'] = {};
    const { onRefused, skip, ...rest } = options;
    const jk = honoJailkeeper(keeper, {
      ...rest,
      ...(skip === undefined ? {} : { skip: (c) => skip({ url: c.req.path }) }),
      ...(onRefused === undefined
        ? {}
        : {
            onRefused: (c, info) => {
              const written = { status: 200, headers: {} as Record<string, string>, body: '' };
              onRefused(
                c.req.raw,
                {
                  header: (n: string, v: string) => (written.headers[n] = v),
                  code: (s: number) => (written.status = s),
                  send: (b: string) => (written.body = b),
                },
                info,
              );
              return new Response(written.body, { status: written.status, headers: written.headers });
            },
          }),
    });
    const app = new Hono<JailkeeperEnv>();
    app.use(jk);
    app.post('/graphql', (c) => {
      runs.graphql = (runs.graphql ?? 0) + 1;
      seen.client = c.var.jailkeeper?.client;
      if (c.req.header('authorization') !== 'good') c.var.jailkeeper?.fail();
      return c.json({
        errors: c.req.header('authorization') === 'good' ? undefined : [{ message: 'denied' }],
      });
    });
    app.post('/login', (c) => {
      runs.login = (runs.login ?? 0) + 1;
      return c.text('no', 401);
    });
    app.get('/health', (c) => {
      runs.health = (runs.health ?? 0) + 1;
      return c.text('ok');
    });
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
    await once(server, 'listening');
    jk.guard(server);
    return probe(server, runs, seen);
  };
}

function probe(
  server: Server,
  runs: Record<string, number>,
  seen: Probe['seen'],
  stop?: () => Promise<unknown>,
): Probe {
  // A WebSocket library listens for upgrades (without one, Node answers them as plain requests).
  server.on('upgrade', (_req, socket) => {
    runs.upgrade = (runs.upgrade ?? 0) + 1;
    socket.destroy();
  });
  return {
    port: (server.address() as AddressInfo).port,
    runs,
    seen,
    async close() {
      server.closeAllConnections();
      if (stop) await stop();
      else await new Promise((resolve) => server.close(resolve));
    },
  };
}

const FRAMEWORKS: ReadonlyArray<[string, Start]> = [
  ['Express 5', expressApp(express5)],
  ['Express 4', expressApp(express4 as unknown as typeof express5)],
  ['Fastify 5', fastifyApp(fastify5)],
  ['Fastify 4', fastifyApp(fastify4 as unknown as typeof fastify5)],
  ['NestJS 11 (Express)', nestApp('express')],
  ['NestJS 11 (Fastify)', nestApp('fastify')],
  ['Hono 4', honoApp()],
];

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function send(
  port: number,
  method: string,
  path: string,
  from: string,
  headers: Record<string, string> = {},
) {
  return new Promise<Answer>((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, method, path, localAddress: from, agent: false, headers },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

let next = 1;
const fresh = () => `127.15.${next >> 8}.${next++ & 255}`;
const open: Array<{ close(): Promise<void> }> = [];
after(async () => {
  for (const o of open) await o.close();
});

async function setup(start: Start, options: Options = {}, extra: Partial<JailkeeperOptions> = {}) {
  const keeper = createJailkeeper({ jails: JAILS, logger: quietLogger, ...extra });
  const app = await start(keeper, options);
  open.push(app, keeper);
  return { keeper, app };
}

for (const [name, start] of FRAMEWORKS) {
  describe(`issue 15 on ${name}`, () => {
    it('fail(): GraphQL errors answered 200 count, and ban at maxRetry; the right answer does not', async () => {
      const { keeper, app } = await setup(start);
      const attacker = fresh();
      for (let i = 0; i < 3; i++) {
        assert.equal((await send(app.port, 'POST', '/graphql', attacker)).status, 200);
        await keeper.idle();
      }
      assert.equal((await send(app.port, 'POST', '/graphql', attacker)).status, 403, 'banned after three');
      assert.equal(app.runs.graphql, 3, 'the handler ran three times, not four');
      const user = fresh();
      for (let i = 0; i < 5; i++) await send(app.port, 'POST', '/graphql', user, { authorization: 'good' });
      await keeper.idle();
      assert.equal(keeper.check(user).banned, false);
    });

    it('the resolved client is in the app’s hands', async () => {
      const { app } = await setup(start);
      const client = fresh();
      await send(app.port, 'POST', '/graphql', client, { authorization: 'good' });
      assert.deepEqual(app.seen.client && { ip: app.seen.client.ip, key: app.seen.client.key }, {
        ip: client,
        key: client,
      });
    });

    it('onRefused renders the refusal (an RFC 9457 problem document) with why and what', async () => {
      const infos: RefusalInfo[] = [];
      const onRefused = (_req: unknown, res: unknown, info: RefusalInfo) => {
        infos.push(info);
        const body = JSON.stringify({ type: 'about:blank', title: 'Banned', status: info.status });
        const r = res as {
          raw?: unknown;
          code?: (s: number) => unknown;
          header: (n: string, v: string) => unknown;
          send: (b: string) => unknown;
          status?: (s: number) => unknown;
        };
        if (typeof r.code === 'function') r.code(info.status);
        else (r as unknown as { statusCode: number }).statusCode = info.status;
        r.header('content-type', 'application/problem+json');
        if (info.retryAfter) r.header('retry-after', info.retryAfter);
        r.send(body);
      };
      const { keeper, app } = await setup(start, { onRefused });
      const client = fresh();
      await keeper.ban(client, { jail: 'login', duration: '2m' });
      const refused = await send(app.port, 'POST', '/login', client);
      assert.equal(refused.status, 403);
      assert.match(String(refused.headers['content-type']), /^application\/problem\+json/);
      assert.equal(JSON.parse(refused.body).title, 'Banned');
      assert.equal(refused.headers['retry-after'], '120');
      assert.equal(infos[0]?.reason, 'banned');
      assert.equal(infos[0]?.ban?.jail, 'login');
      assert.equal(app.runs.login, 0);
    });

    it('an onRefused that throws falls back to the configured refusal', async () => {
      const { keeper, app } = await setup(start, {
        onRefused: () => {
          throw new Error('template missing');
        },
      });
      const client = fresh();
      await keeper.ban(client);
      const refused = await send(app.port, 'GET', '/health', client);
      assert.equal(refused.status, 403);
      assert.deepEqual(JSON.parse(refused.body), { error: 'Forbidden' });
      assert.equal(app.runs.health, 0);
    });

    it('skip: requests it picks are neither refused nor counted', async () => {
      const skip = (req: unknown) => ((req as { url?: string }).url ?? '').startsWith('/health');
      const { keeper, app } = await setup(start, { skip });
      const client = fresh();
      await keeper.ban(client);
      assert.equal((await send(app.port, 'GET', '/health', client)).status, 200, 'the health check runs');
      assert.equal((await send(app.port, 'POST', '/login', client)).status, 403);
      assert.equal(app.runs.health, 1);
    });

    it('a store that is down and fails closed answers 503 with Retry-After, not 403', async () => {
      const inner = createMemoryStore();
      const down: Store = Object.assign(Object.create(Object.getPrototypeOf(inner)) as Store, inner, {
        name: 'down',
        refusing: true,
        init: (ctx: Parameters<Store['init']>[0]) => inner.init(ctx),
        recordFailure: inner.recordFailure.bind(inner),
        recordPardon: inner.recordPardon.bind(inner),
        ban: inner.ban.bind(inner),
        unban: inner.unban.bind(inner),
        unbanAll: inner.unbanAll.bind(inner),
        bans: inner.bans.bind(inner),
        status: inner.status.bind(inner),
        sweep: inner.sweep.bind(inner),
        close: inner.close.bind(inner),
      });
      const { app } = await setup(start, {}, { store: down });
      const refused = await send(app.port, 'GET', '/health', fresh());
      assert.equal(refused.status, 503);
      assert.ok(Number(refused.headers['retry-after']) >= 1);
      assert.equal(app.runs.health, 0);
    });

    it('a banned client’s WebSocket upgrade gets the configured response and Retry-After', async () => {
      const { keeper, app } = await setup(start, {
        response: { status: 429, body: 'slow down', headers: { 'x-why': 'banned' } },
      });
      const client = fresh();
      await keeper.ban(client, { duration: '90s' });
      const socket = connect({ host: '127.0.0.1', port: app.port, localAddress: client });
      socket.write(
        'GET /health HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      );
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (c) => {
        text += c;
      });
      await once(socket, 'close');
      assert.match(text, /^HTTP\/1\.1 429 /);
      assert.match(text, /\r\nx-why: banned\r\n/i);
      assert.match(text, /\r\nretry-after: 90\r\n/i);
      assert.match(text, /\r\n\r\nslow down$/);
      assert.equal(app.runs.upgrade ?? 0, 0, 'no upgrade handler ran');
    });

    it('fail() names a jail that is not configured: a coded error', async () => {
      const keeper = createJailkeeper({ jails: JAILS, logger: quietLogger });
      open.push(keeper);
      if (name.startsWith('Hono')) {
        const jk = honoJailkeeper(keeper);
        assert.throws(
          () => jk.fail({ get: () => undefined } as never, { jails: ['nope'] }),
          (e: JailkeeperError) => e.code === 'JK_ERR_UNKNOWN_JAIL',
        );
      } else if (name.startsWith('NestJS')) {
        const app = await start(keeper, {});
        open.push(app);
        assert.equal((await send(app.port, 'GET', '/nope', fresh())).status, 200);
        const caught = app.seen.error;
        assert.ok(caught instanceof JailkeeperError && caught.code === 'JK_ERR_UNKNOWN_JAIL');
      } else if (name.startsWith('Express')) {
        const jk = jailkeeper(keeper);
        assert.throws(
          () => jk.fail({ res: { locals: {} } } as never, { jails: ['nope'] }),
          (e: JailkeeperError) => e.code === 'JK_ERR_UNKNOWN_JAIL',
        );
      } else {
        const app = fastify5();
        await app.register(jailkeeperPlugin, { keeper });
        let caught: unknown;
        app.get('/x', async (request) => {
          try {
            request.jailkeeper.fail({ jails: ['nope'] });
          } catch (error) {
            caught = error;
          }
          return 'x';
        });
        await app.inject({ url: '/x' });
        await app.close();
        assert.ok(caught instanceof JailkeeperError && caught.code === 'JK_ERR_UNKNOWN_JAIL');
      }
    });
  });
}

describe('issue 15: the engine’s runtime API refuses bad input with codes', () => {
  const keeper = createJailkeeper({ jails: JAILS, logger: quietLogger });
  after(() => keeper.close());

  it('check(null) and check({}) throw JK_ERR_INVALID_ARGUMENT', () => {
    for (const bad of [null, undefined, {}, 5]) {
      assert.throws(
        () => keeper.check(bad as never),
        (e: JailkeeperError) => e.code === 'JK_ERR_INVALID_ARGUMENT',
      );
    }
  });

  it('observe() with a client that is not one, or without a method: ignored with a warning, never a ban of "undefined"', async () => {
    const warnings: string[] = [];
    keeper.on('warning', (w) => warnings.push(w.code));
    for (let i = 0; i < 10; i++) {
      const a = await keeper.observe({ client: {} as never, method: 'POST', path: '/login', status: 401 });
      assert.equal(a.ignored, 'invalidEvent');
      const b = await keeper.observe({ client: '203.0.113.1', path: '/login', status: 401 } as never);
      assert.equal(b.ignored, 'invalidEvent');
    }
    assert.deepEqual(await keeper.bans(), []);
    assert.deepEqual(warnings, ['JK_WRN_INVALID_EVENT'], 'warned once');
  });

  it('ignore.has(5) and ban() with an object as reason throw coded errors', async () => {
    assert.throws(
      () => keeper.ignore.has(5 as never),
      (e: JailkeeperError) => e.code === 'JK_ERR_INVALID_IP',
    );
    await assert.rejects(
      keeper.ban('203.0.113.2', { reason: { text: 'x' } as never }),
      (e: JailkeeperError) => e.code === 'JK_ERR_INVALID_ARGUMENT',
    );
  });
});
