/**
 * The defence's own machinery as the target: a stranger must never get an owner or a browser
 * refused. Each row attacks an account (or a browser) the way the attacker controls it (delivery
 * order, open streams, spellings, escalation) and counts what really happened: the password
 * checks the handler ran, and the statuses the owner and the browser got. Express 5, Fastify 5
 * and Hono, on the memory store and on Redis.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { serve } from '@hono/node-server';
import {
  createJailkeeper,
  type Jailkeeper,
  type JailkeeperOptions,
  type JailOptions,
} from '@jailkeeper/core';
import { quietLogger, until } from '@jailkeeper/core/testing';
import { jailkeeper } from '@jailkeeper/express';
import { jailkeeperPlugin } from '@jailkeeper/fastify';
import { jailkeeper as honoJailkeeper, type JailkeeperEnv } from '@jailkeeper/hono';
import { JailkeeperModule, JailkeeperService } from '@jailkeeper/nestjs';
import { createRedisStore } from '@jailkeeper/redis';
import { Controller, Get, HttpCode, Inject, Module, Post, Req, Res } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import express from 'express';
import fastify from 'fastify';
import { Hono } from 'hono';
import { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../redis-server.js';

const PASSWORD = 'pw-of-alice';
/** The app's users, and how it resolves a login name: case, dots, +tags, accents, invisible characters. */
const USERS = new Map([['alice@example.com', 'u-1']]);
function lookUp(name: string): string | undefined {
  const plain = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f\u200b-\u200d\u2060\ufeff]/g, '')
    .trim()
    .toLowerCase();
  const [local = '', domain = ''] = plain.split('@');
  const canonical = `${local.split('+')[0]?.replaceAll('.', '')}@${domain}`;
  return USERS.get(canonical) ?? (canonical === 'alice@example.com' ? 'u-1' : undefined);
}

interface App {
  readonly port: number;
  /** Password checks the handler ran, per account the app resolved. */
  readonly checks: Map<string, number>;
  close(): Promise<void>;
}
type Start = (keeper: Jailkeeper) => Promise<App>;

/** The login every app runs: the app resolves the name to its user id and names that account. */
async function loginHandler(
  checks: Map<string, number>,
  body: { user?: string; password?: string } | undefined,
  account: (name: unknown) => Promise<boolean>,
): Promise<number | undefined> {
  const name = String(body?.user ?? '');
  const id = lookUp(name) ?? name;
  if (!(await account(id))) return undefined;
  checks.set(id, (checks.get(id) ?? 0) + 1);
  await sleep(10); // an async password hash
  return body?.password === PASSWORD && lookUp(name) !== undefined ? 200 : 401;
}

function served(server: Server, checks: Map<string, number>): App {
  return {
    port: (server.address() as AddressInfo).port,
    checks,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * Express, its routes on the app itself or (`sub`) in a sub-app mounted at '/' that mounts the
 * middleware too, as the Express README says for sub-apps (the response then takes the sub-app's
 * prototype, which jailkeeper's writeHead on the app's prototype is not on).
 */
const expressApp =
  (sub: boolean): Start =>
  async (keeper) => {
    const checks = new Map<string, number>();
    const jk = jailkeeper(keeper);
    const root = express();
    root.use(jk);
    const app = sub ? express() : root;
    if (sub) {
      app.use(jk);
      root.use(app);
    }
    app.post('/login', express.json(), async (req, res) => {
      const status = await loginHandler(checks, req.body, (name) => jk.account(req, name));
      if (status !== undefined) res.status(status).json({ ok: status === 200 });
    });
    app.get('/events', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': open\n\n');
    });
    app.get('/private', (_req, res) => {
      res.status(401).end();
    });
    app.get('/assets/:name', (_req, res) => {
      res.type('text/css').send('/* */');
    });
    const server = root.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return served(server, checks);
  };
const startExpress = expressApp(false);

const startFastify: Start = async (keeper) => {
  const checks = new Map<string, number>();
  const app = fastify();
  await app.register(jailkeeperPlugin, { keeper });
  app.post('/login', async (request, reply) => {
    const status = await loginHandler(checks, request.body as { user?: string; password?: string }, (name) =>
      request.jailkeeper.account(name),
    );
    if (status === undefined) return reply;
    reply.code(status);
    return { ok: status === 200 };
  });
  app.get('/events', (_request, reply) => {
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream' });
    reply.raw.write(': open\n\n');
  });
  app.get('/private', async (_request, reply) => reply.code(401).send());
  app.get('/assets/:name', async (_request, reply) => reply.type('text/css').send('/* */'));
  await app.listen({ port: 0, host: '127.0.0.1' });
  return served(app.server, checks);
};

const startHono: Start = async (keeper) => {
  const checks = new Map<string, number>();
  const app = new Hono<JailkeeperEnv>();
  app.use(honoJailkeeper(keeper));
  app.post('/login', async (c) => {
    const body = (await c.req.json()) as { user?: string; password?: string };
    const jk = c.var.jailkeeper;
    const status = await loginHandler(checks, body, (name) => jk?.account(name) ?? Promise.resolve(true));
    if (status === undefined) return c.res;
    return c.json({ ok: status === 200 }, status as 200 | 401);
  });
  app.get('/events', () => {
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(': open\n\n'));
      },
    });
    return new Response(stream, { headers: { 'content-type': 'text/event-stream' } });
  });
  app.get('/private', (c) => c.body(null, 401));
  app.get('/assets/:name', (c) => c.text('/* */'));
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
  await once(server, 'listening');
  return served(server, checks);
};

/** Applies decorators the way TypeScript's emit does (the tests run without decorator syntax). */
function decorate(target: object, name: string, ...decorators: MethodDecorator[]): void {
  Reflect.decorate(decorators, target, name, Object.getOwnPropertyDescriptor(target, name));
}

const startNest: Start = async (keeper) => {
  const checks = new Map<string, number>();
  type Res = express.Response;
  class Routes {
    constructor(readonly jailkeeper: JailkeeperService) {}
    async login(req: express.Request, res: Res) {
      const status = await loginHandler(checks, req.body, (name) => this.jailkeeper.account(req, name));
      if (status !== undefined) res.status(status).json({ ok: status === 200 });
    }
    events(res: Res) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': open\n\n');
    }
    private(res: Res) {
      res.status(401).end();
    }
    assets(res: Res) {
      res.type('text/css').send('/* */');
    }
  }
  const p = Routes.prototype;
  decorate(p, 'login', Post('login'), HttpCode(200));
  Req()(p, 'login', 0);
  Res()(p, 'login', 1);
  for (const [name, path] of [
    ['events', 'events'],
    ['private', 'private'],
    ['assets', 'assets/:name'],
  ] as const) {
    decorate(p, name, Get(path));
    Res()(p, name, 0);
  }
  Inject(JailkeeperService)(Routes, undefined as never, 0);
  Controller()(Routes);
  class AppModule {}
  Module({ imports: [JailkeeperModule.forRoot({ keeper })], controllers: [Routes] })(AppModule);
  const app = await NestFactory.create(AppModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  const server = app.getHttpServer() as Server;
  return {
    port: (server.address() as AddressInfo).port,
    checks,
    async close() {
      server.closeAllConnections();
      await app.close();
    },
  };
};

const FRAMEWORKS: ReadonlyArray<[string, Start]> = [
  ['express 5', startExpress],
  ['express 5, routes in a sub-app', expressApp(true)],
  ['fastify 5', startFastify],
  ['hono', startHono],
  ['nestjs 11 (express)', startNest],
];

/** One request from `from` (a loopback address), on a fresh connection. */
function send(
  port: number,
  from: string,
  method: string,
  path: string,
  body?: object,
): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method,
        localAddress: from,
        agent: false,
        headers: payload === undefined ? {} : { 'content-type': 'application/json' },
      },
      (res: IncomingMessage) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const login = (port: number, from: string, user: string, password: string) =>
  send(port, from, 'POST', '/login', { user, password });

/** An open event stream with a wrong login for `user` pipelined behind it, in one write. */
function streamThenGuess(port: number, from: string, user: string): Promise<Socket> {
  const body = JSON.stringify({ user, password: 'guess' });
  const socket = connect({ host: '127.0.0.1', port, localAddress: from });
  socket.on('error', () => {});
  socket.resume();
  return new Promise((resolve) => {
    socket.on('connect', () => {
      socket.write(
        'GET /events HTTP/1.1\r\nHost: x\r\n\r\n' +
          `POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      resolve(socket);
    });
  });
}

/** A login whose body is sent only in part: the request stays open, its body arriving. */
function slowBody(port: number, from: string): Promise<Socket> {
  const body = JSON.stringify({ user: 'alice@example.com', password: 'guess' });
  const socket = connect({ host: '127.0.0.1', port, localAddress: from });
  socket.on('error', () => {});
  socket.resume();
  return new Promise((resolve) => {
    socket.on('connect', () => {
      socket.write(
        `POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, 8)}`,
      );
      resolve(socket);
    });
  });
}

/** An open event stream from `from`: the socket, once its headers arrived. */
function openStream(port: number, from: string): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port, localAddress: from });
  socket.on('error', () => {});
  return new Promise((resolve) => {
    socket.once('data', () => {
      socket.resume();
      resolve(socket);
    });
    socket.on('connect', () => socket.write('GET /events HTTP/1.1\r\nHost: x\r\n\r\n'));
  });
}

const ACCOUNT_JAIL: JailOptions & { maxRetry: number } = {
  key: 'account',
  statuses: [401],
  paths: ['/login'],
  methods: ['POST'],
  maxRetry: 5,
  banTime: '5m',
};

let redis: TestRedis | undefined;
let redisClients: Redis[] = [];
let prefixes = 0;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await Promise.all(redisClients.map((c) => c.quit()));
  redisClients = [];
  await redis?.stop();
});

const STORES: ReadonlyArray<[string, () => Partial<JailkeeperOptions>]> = [
  ['memory store', () => ({})],
  [
    'Redis',
    () => {
      const client = new Redis((redis as TestRedis).url, { maxRetriesPerRequest: 1 });
      redisClients.push(client);
      return { store: createRedisStore({ client, prefix: `jklock${process.pid}-${prefixes++}:` }) };
    },
  ],
];

async function withApp(
  start: Start,
  store: () => Partial<JailkeeperOptions>,
  options: JailkeeperOptions,
  body: (app: App, keeper: Jailkeeper) => Promise<void>,
): Promise<void> {
  const keeper = createJailkeeper({ ...options, ...store(), logger: quietLogger });
  await keeper.ready;
  const app = await start(keeper);
  try {
    await body(app, keeper);
  } finally {
    await app.close();
    await keeper.close();
  }
}

for (const [framework, start] of FRAMEWORKS) {
  for (const [storeName, store] of STORES) {
    describe(`${framework}, ${storeName}: strangers cannot lock out an owner or a browser`, () => {
      it('guesses queued behind open event streams settle at their 401: the account locks, the owner logs in within 1 s', async () => {
        await withApp(start, store, { jails: { account: ACCOUNT_JAIL } }, async (app, keeper) => {
          const owner = '127.0.30.1';
          assert.equal((await login(app.port, owner, 'alice@example.com', PASSWORD)).status, 200);
          const sockets = await Promise.all(
            [1, 2, 3, 4, 5].map((i) => streamThenGuess(app.port, `127.0.31.${i}`, 'alice@example.com')),
          );
          try {
            // The five 401s are decided, though queued behind the streams: counted, the account locked.
            await until(() => keeper.check('acct:u-1').banned, { within: 2000 });
            assert.equal(app.checks.get('u-1'), 6, 'the owner’s login, then five guesses');
            const status = await keeper.status();
            assert.equal(status.jails.account?.heldSlots, 0, 'no slot is held by a decided answer');
            // The owner, from her own address: answered at once, not held, not refused.
            const mine = await login(app.port, owner, 'alice@example.com', PASSWORD);
            assert.equal(mine.status, 200);
            assert.ok(mine.ms < 1000, `the owner waited ${mine.ms.toFixed(0)} ms`);
            // A stranger, even with the right password, is refused while the account is locked.
            assert.equal((await login(app.port, '127.0.32.1', 'alice@example.com', PASSWORD)).status, 403);
            assert.equal(app.checks.get('u-1'), 7, 'the stranger never reached the check');
            // The operator lifts the lock: the stranger's right password works again.
            await keeper.unban('acct:u-1');
            assert.equal((await login(app.port, '127.0.32.1', 'alice@example.com', PASSWORD)).status, 200);
          } finally {
            for (const s of sockets) s.destroy();
          }
        });
      });

      it('a browser with one failure in an app-wide jail and two open streams is never held', async () => {
        await withApp(start, store, { jails: { app: { statuses: [401], maxRetry: 3 } } }, async (app) => {
          const browser = '127.0.33.1';
          assert.equal((await send(app.port, browser, 'GET', '/private')).status, 401);
          const streams = [await openStream(app.port, browser), await openStream(app.port, browser)];
          try {
            for (const name of ['a.css', 'b.css', 'c.css', 'd.css', 'e.css']) {
              const asset = await send(app.port, browser, 'GET', `/assets/${name}`);
              assert.equal(asset.status, 200, name);
              assert.ok(asset.ms < 1000, `${name} waited ${asset.ms.toFixed(0)} ms`);
            }
            const mine = await login(app.port, browser, 'alice@example.com', PASSWORD);
            assert.equal(mine.status, 200);
            assert.ok(mine.ms < 1000, `the login waited ${mine.ms.toFixed(0)} ms`);
          } finally {
            for (const s of streams) s.destroy();
          }
        });
      });

      it('slow bodies from a shared address hold no slot: a NAT-mate logs in within 1 s', async () => {
        await withApp(
          start,
          store,
          { jails: { login: { statuses: [401], paths: ['/login'], methods: ['POST'], maxRetry: 5 } } },
          async (app, keeper) => {
            const nat = '127.0.39.1';
            const slow = await Promise.all([1, 2, 3, 4, 5].map(() => slowBody(app.port, nat)));
            try {
              await until(() => app.checks.size === 0 && keeper.attempts().admitting === 0, { within: 1000 });
              const mate = await login(app.port, nat, 'alice@example.com', PASSWORD);
              assert.equal(mate.status, 200);
              assert.ok(mate.ms < 1000, `the NAT-mate waited ${mate.ms.toFixed(0)} ms`);
            } finally {
              for (const s of slow) s.destroy();
            }
          },
        );
      });

      // Nest parses bodies app-wide, before any route: a body that never arrives waits in Nest's
      // parser (the server's requestTimeout ends it), and never reaches admission at all.
      const parsesFirst = framework.startsWith('nestjs');
      it('a body that never arrives is answered 408 after attempts.wait, its handler never run', {
        skip: parsesFirst && 'Nest reads the body before routing',
      }, async () => {
        await withApp(
          start,
          store,
          {
            attempts: { wait: 200 },
            jails: { login: { statuses: [401], paths: ['/login'], methods: ['POST'], maxRetry: 5 } },
          },
          async (app) => {
            const socket = await slowBody(app.port, '127.0.39.9');
            let received = '';
            socket.setEncoding('latin1');
            socket.on('data', (chunk: string) => {
              received += chunk;
            });
            await once(socket, 'close');
            assert.match(received, /^HTTP\/1\.1 408 /);
            assert.equal(app.checks.size, 0, 'no password check ran');
          },
        );
      });

      it('slots taken in two steps (address, then account) leave nothing held once answered', async () => {
        await withApp(
          start,
          store,
          {
            jails: {
              login: { statuses: [401], paths: ['/login'], methods: ['POST'], maxRetry: 50 },
              account: ACCOUNT_JAIL,
            },
          },
          async (app, keeper) => {
            for (let i = 1; i <= 20; i++) {
              assert.equal((await login(app.port, '127.0.42.1', 'alice@example.com', PASSWORD)).status, 200);
            }
            await keeper.idle();
            assert.deepEqual(keeper.attempts().held, {}, 'no slot left on the books');
          },
        );
      });

      it('escalation is driven by strangers only: over 3 rounds the owner is always let in', async () => {
        await withApp(
          start,
          store,
          {
            jails: {
              // Bans long enough that a loaded machine cannot outlast them between the strangers'
              // guesses and the checks below; each round lifts its ban, which keeps its count.
              account: { ...ACCOUNT_JAIL, banTime: '1m', banTimeIncrement: { factor: 1, maxTime: '1h' } },
            },
          },
          async (app, keeper) => {
            const owner = '127.0.34.1';
            assert.equal((await login(app.port, owner, 'alice@example.com', PASSWORD)).status, 200);
            let lastCount = 0;
            for (let round = 1; round <= 3; round++) {
              for (let i = 1; i <= 6; i++) {
                await login(app.port, `127.0.35.${round * 10 + i}`, 'alice@example.com', 'guess');
              }
              const verdict = keeper.check('acct:u-1');
              assert.ok(verdict.banned, `round ${round}: the account is locked for strangers`);
              const count = verdict.banned ? verdict.ban.banCount : 0;
              assert.ok(count > lastCount, `round ${round}: the strangers escalate it (${count})`);
              lastCount = count;
              assert.equal(
                (await login(app.port, owner, 'alice@example.com', PASSWORD)).status,
                200,
                `round ${round}: the owner's usual address`,
              );
              assert.equal(
                (await login(app.port, '127.0.36.1', 'alice@example.com', PASSWORD)).status,
                403,
                `round ${round}: a stranger`,
              );
              assert.equal(
                keeper.check(`acct:u-1|${owner}`).banned,
                false,
                'the owner’s pair is never banned',
              );
              await keeper.unbanAll({ jail: 'account' });
              assert.equal(keeper.check('acct:u-1').banned, false, `round ${round}: lifted`);
            }
          },
        );
      });

      it('15 spellings of one account: at most maxRetry password checks when the app names its user id', async () => {
        await withApp(start, store, { jails: { account: ACCOUNT_JAIL } }, async (app) => {
          const spellings = [
            'alice@example.com',
            'Alice@example.com',
            'ALICE@EXAMPLE.COM',
            ' alice@example.com',
            'a.lice@example.com',
            'al.ice@example.com',
            'alice+x@example.com',
            'alice+login@example.com',
            'álice@example.com',
            'alicé@example.com',
            'al\u200bice@example.com',
            'ali\u200dce@example.com',
            'a.l.i.c.e@example.com',
            'alice\ufeff@example.com',
            'Al.Ice+promo@Example.com',
          ];
          let from = 1;
          for (const spelling of spellings) {
            for (let i = 0; i < 5; i++) await login(app.port, `127.0.37.${from++}`, spelling, 'guess');
          }
          assert.equal(app.checks.get('u-1'), ACCOUNT_JAIL.maxRetry, 'every spelling is one account');
        });
      });

      it('a recidive ban of an account is enforced on strangers, never on its owner', async () => {
        await withApp(
          start,
          store,
          { jails: { account: ACCOUNT_JAIL }, recidive: true },
          async (app, keeper) => {
            const owner = '127.0.38.1';
            assert.equal((await login(app.port, owner, 'alice@example.com', PASSWORD)).status, 200);
            await keeper.ban('acct:u-1', { jail: 'recidive', duration: '1h' });
            assert.equal((await login(app.port, '127.0.38.2', 'alice@example.com', PASSWORD)).status, 403);
            assert.equal((await login(app.port, owner, 'alice@example.com', PASSWORD)).status, 200);
          },
        );
      });
    });
  }
}
