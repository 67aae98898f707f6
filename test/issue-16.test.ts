/**
 * Issue 16, what NestJS and Hono users expect beyond the shared scenario table: parallel guesses
 * held to maxRetry (the handler counts its runs), refusal before Nest's guards, exceptions counted
 * like any response, controller decorators, fail() from an exception filter, options from a
 * ConfigService, the admin API behind its token, and Hono's sub-apps and route helpers.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { serve } from '@hono/node-server';
import {
  createJailkeeper,
  type FailureEvent,
  Jailkeeper,
  type JailkeeperError,
  type JailkeeperOptions,
} from '@jailkeeper/core';
import { quietLogger } from '@jailkeeper/core/testing';
import { jailkeeper as honoJailkeeper, type JailkeeperEnv } from '@jailkeeper/hono';
import { JailkeeperExempt, JailkeeperJails, JailkeeperModule, JailkeeperService } from '@jailkeeper/nestjs';
import { jailkeeperAdmin as honoAdmin } from '@jailkeeper/ops/hono';
import { JailkeeperAdminModule } from '@jailkeeper/ops/nestjs';
import {
  type ArgumentsHost,
  Catch,
  Controller,
  type ExceptionFilter,
  Get,
  HttpException,
  Inject,
  Module,
  Post,
  UnauthorizedException,
} from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { APP_FILTER, APP_GUARD, NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Hono } from 'hono';
import { decorate } from './adapters-harness.js';

const JAILS: JailkeeperOptions['jails'] = {
  login: { statuses: [401], paths: ['/login', '/api/login'], maxRetry: 3, banTime: '1h' },
  forbidden: { statuses: [403, 429], maxRetry: 2, banTime: '1h' },
  guarded: { statuses: [401], paths: ['/private'], maxRetry: 3, banTime: '1h' },
  domain: { statuses: [400], paths: ['/transfer'], maxRetry: 2, banTime: '1h' },
};
const TOKEN = 'issue-16-admin-token-0123456789';

interface Answer {
  status: number;
  body: string;
}

function send(
  port: number,
  method: string,
  path: string,
  from: string,
  headers: Record<string, string> = {},
) {
  return new Promise<Answer | null>((resolve) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, method, path, localAddress: from, agent: false, headers },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', () => resolve(null)); // dropped
    req.end();
  });
}

let serial = 1;
const fresh = () => `127.16.${serial >> 8}.${serial++ & 255}`;
const closers: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

function keeperFor(extra: Partial<JailkeeperOptions> = {}) {
  const keeper = createJailkeeper({ jails: JAILS, logger: quietLogger, ...extra });
  const failures: FailureEvent[] = [];
  keeper.on('failure', (f) => failures.push(f));
  closers.push(() => keeper.close());
  return { keeper, failures };
}

/** 40 wrong guesses sent at once: the handler may run at most maxRetry times. */
async function parallelGuesses(port: number, path: string, runs: () => number) {
  const from = fresh();
  const answers = await Promise.all(Array.from({ length: 40 }, () => send(port, 'POST', path, from)));
  const statuses = answers.map((a) => a?.status ?? 0);
  assert.ok(runs() <= 3, `the handler ran ${runs()} times for 40 parallel guesses (maxRetry 3)`);
  assert.equal(statuses.filter((s) => s === 401).length, runs(), 'every run answered 401');
  assert.ok(
    statuses.every((s) => s === 401 || s === 403 || s === 429),
    statuses.join(','),
  );
}

// ---------------------------------------------------------------------------------------------
// NestJS

class DomainError extends Error {}

function nestRoutes(runs: Record<string, number>) {
  class Routes {
    constructor(readonly jk: JailkeeperService) {}
    login() {
      runs.login = (runs.login ?? 0) + 1;
      throw new UnauthorizedException();
    }
    private() {
      runs.private = (runs.private ?? 0) + 1;
      return 'secret';
    }
    slowDown() {
      throw new HttpException('slow down', 429);
    }
    transfer() {
      runs.transfer = (runs.transfer ?? 0) + 1;
      throw new DomainError('insufficient funds');
    }
  }
  const p = Routes.prototype;
  decorate(p, 'login', Post('login'));
  decorate(p, 'private', Get('private'));
  decorate(p, 'slowDown', Get('slow-down'));
  decorate(p, 'transfer', Post('transfer'));
  Inject(JailkeeperService)(Routes, undefined as never, 0);
  Controller()(Routes);

  // A controller exempt as a whole (a handshake refused by design), one handler counted anyway.
  class Handshake {
    refuse() {
      throw new HttpException('not on the whitelist', 403);
    }
    admin() {
      throw new HttpException('no', 403);
    }
  }
  decorate(Handshake.prototype, 'refuse', Get('refuse'));
  decorate(Handshake.prototype, 'admin', Get('admin'), JailkeeperJails('forbidden'));
  Controller('handshake')(Handshake);
  JailkeeperExempt()(Handshake);
  return [Routes, Handshake];
}

/** A global guard (registered like an auth guard): 401 on /private without the header. */
function authGuard(runs: Record<string, number>) {
  class AuthGuard {
    canActivate(context: {
      switchToHttp(): { getRequest(): { url: string; headers: Record<string, string> } };
    }) {
      const req = context.switchToHttp().getRequest();
      if (!req.url.startsWith('/private')) return true;
      runs.guard = (runs.guard ?? 0) + 1;
      if (req.headers.authorization !== 'yes') throw new UnauthorizedException();
      return true;
    }
  }
  return AuthGuard;
}

/** An exception filter that answers a domain error with 400 and marks the request failed. */
function domainFilter() {
  class DomainFilter implements ExceptionFilter {
    constructor(readonly jk: JailkeeperService) {}
    catch(_error: DomainError, host: ArgumentsHost) {
      const http = host.switchToHttp();
      const req = http.getRequest();
      const res = http.getResponse();
      this.jk.fail(req, { jails: ['domain'] });
      res.status(400).send('{"error":"insufficient funds"}');
    }
  }
  Inject(JailkeeperService)(DomainFilter, undefined as never, 0);
  Catch(DomainError)(DomainFilter);
  return DomainFilter;
}

async function nestApp(platform: 'express' | 'fastify', root: object, listen = true) {
  const options = { logger: false, abortOnError: false } as const;
  const app =
    platform === 'fastify'
      ? await NestFactory.create(root as never, new FastifyAdapter(), options)
      : await NestFactory.create(root as never, options);
  if (listen) await app.listen(0, '127.0.0.1');
  closers.push(() => app.close());
  return app;
}

for (const platform of ['express', 'fastify'] as const) {
  describe(`issue 16: NestJS 11 on ${platform}`, () => {
    async function start(extra: Partial<JailkeeperOptions> = {}) {
      const { keeper, failures } = keeperFor(extra);
      const runs: Record<string, number> = {};
      class AppModule {}
      Module({
        imports: [
          JailkeeperModule.forRoot({ keeper }),
          JailkeeperAdminModule.register({ path: '/_jailkeeper', token: TOKEN }),
        ],
        controllers: nestRoutes(runs),
        providers: [
          { provide: APP_GUARD, useClass: authGuard(runs) },
          { provide: APP_FILTER, useClass: domainFilter() },
        ],
      })(AppModule);
      const app = await nestApp(platform, AppModule);
      const port = (app.getHttpServer().address() as AddressInfo).port;
      return { keeper, failures, runs, port, app };
    }

    it('40 parallel wrong logins: the handler runs at most maxRetry times', async () => {
      const { port, runs } = await start();
      await parallelGuesses(port, '/login', () => runs.login ?? 0);
    });

    it('refused before guards: a guard’s 401s count, and a banned client never reaches the guard', async () => {
      const { port, runs, keeper, failures } = await start();
      const client = fresh();
      for (let i = 0; i < 3; i++) assert.equal((await send(port, 'GET', '/private', client))?.status, 401);
      await keeper.idle();
      assert.deepEqual(
        failures.map((f) => [f.jail, f.route]),
        Array.from({ length: 3 }, () => ['guarded', '/private']),
      );
      assert.equal((await send(port, 'GET', '/private', client, { authorization: 'yes' }))?.status, 403);
      assert.equal(runs.guard, 3, 'the guard ran for the three failures, not for the refused request');
      assert.equal(runs.private, undefined, 'no handler ran');
    });

    it('an HttpException answered 429 counts like any response', async () => {
      const { port, keeper } = await start();
      const client = fresh();
      for (let i = 0; i < 2; i++) assert.equal((await send(port, 'GET', '/slow-down', client))?.status, 429);
      await keeper.idle();
      assert.equal(keeper.check(client).banned, true);
    });

    it('a controller exempt as a whole; its handler decorated with jails counts there', async () => {
      const { port, keeper, failures } = await start();
      const client = fresh();
      for (let i = 0; i < 5; i++)
        assert.equal((await send(port, 'GET', '/handshake/refuse', client))?.status, 403);
      await keeper.idle();
      assert.equal(failures.length, 0, 'the exempt controller never counts');
      await send(port, 'GET', '/handshake/admin', client);
      await keeper.idle();
      assert.deepEqual(
        failures.map((f) => [f.jail, f.route]),
        [['forbidden', '/handshake/admin']],
      );
    });

    it('fail() from an exception filter: a domain error answered 400 counts in the named jail', async () => {
      const { port, keeper, failures, runs } = await start();
      const client = fresh();
      for (let i = 0; i < 2; i++) assert.equal((await send(port, 'POST', '/transfer', client))?.status, 400);
      await keeper.idle();
      assert.deepEqual(
        failures.map((f) => f.jail),
        ['domain', 'domain'],
      );
      assert.equal((await send(port, 'POST', '/transfer', client))?.status, 403);
      assert.equal(runs.transfer, 2);
    });

    it('the admin API answers behind its token, and wrong tokens count', async () => {
      const { port, keeper } = await start({
        // Express names a handler mounted with app.use by its mount ('/_jailkeeper'); Fastify's
        // admin routes are '/_jailkeeper/*': one rule for each.
        jails: {
          ...JAILS,
          admin: { statuses: [401], paths: ['/_jailkeeper', '/_jailkeeper/*'], maxRetry: 50 },
        },
      });
      const ok = await send(port, 'GET', '/_jailkeeper/status', '127.0.0.1', {
        authorization: `Bearer ${TOKEN}`,
      });
      assert.equal(ok?.status, 200);
      assert.ok('jails' in JSON.parse(ok?.body ?? '{}'));
      const client = fresh();
      const wrong = await send(port, 'GET', '/_jailkeeper/status', client, { authorization: 'Bearer nope' });
      assert.equal(wrong?.status, 401);
      await keeper.idle();
      assert.equal((await keeper.status()).jails.admin?.totalFailed, 1);
    });

    it('forRootAsync: the keeper from a ConfigService, created and closed by the module', async () => {
      const config = () => ({
        jailkeeper: { jails: { login: { statuses: [401], paths: ['/login'], maxRetry: 1 } } },
      });
      const runs: Record<string, number> = {};
      class AppModule {}
      Module({
        imports: [
          ConfigModule.forRoot({ load: [config], ignoreEnvFile: true }),
          JailkeeperModule.forRootAsync({
            imports: [ConfigModule],
            inject: [ConfigService],
            useFactory: (c: ConfigService) => ({
              keeper: { ...(c.get('jailkeeper') as JailkeeperOptions), logger: quietLogger },
            }),
          }),
        ],
        controllers: nestRoutes(runs).slice(0, 1),
      })(AppModule);
      const app = await nestApp(platform, AppModule);
      const keeper = app.get(Jailkeeper);
      assert.ok(keeper instanceof Jailkeeper);
      const port = (app.getHttpServer().address() as AddressInfo).port;
      const client = fresh();
      await send(port, 'POST', '/login', client);
      await keeper.idle();
      assert.equal((await send(port, 'POST', '/login', client))?.status, 403, 'maxRetry 1, from the config');
      await app.close();
      await assert.rejects(keeper.ban('203.0.113.9'), (e: JailkeeperError) => e.code === 'JK_ERR_CLOSED');
    });

    it('bad module options fail at startup with a coded error naming the option', async () => {
      class AppModule {}
      const { keeper } = keeperFor();
      Module({ imports: [JailkeeperModule.forRoot({ keeper, block: 'kick' as never })] })(AppModule);
      await assert.rejects(
        (async () => {
          const app = await nestApp(platform, AppModule, false);
          await app.init();
        })(),
        (e: JailkeeperError) => e.code === 'JK_ERR_INVALID_OPTION' && /block/.test(e.message),
      );
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Hono

describe('issue 16: Hono 4 on @hono/node-server', () => {
  async function start(extra: Partial<JailkeeperOptions> = {}) {
    const { keeper, failures } = keeperFor(extra);
    const runs: Record<string, number> = {};
    const jk = honoJailkeeper(keeper);
    const app = new Hono<JailkeeperEnv>();
    app.use(jk);
    app.post('/login', (c) => {
      runs.login = (runs.login ?? 0) + 1;
      return c.text('no', 401);
    });
    // A sub-app: its routes are matched under their full pattern.
    const api = new Hono();
    api.post('/login', (c) => {
      runs.api = (runs.api ?? 0) + 1;
      return c.text('no', 401);
    });
    app.route('/api', api);
    // A config for everything below /panel, set by middleware rather than per route.
    app.use('/panel/*', jk.route({ jails: ['login'] }));
    app.get('/panel/users', (c) => c.text('no', 403));
    app.all('/_jailkeeper/*', honoAdmin(keeper, { token: TOKEN }));
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
    await once(server, 'listening');
    closers.push(() => new Promise((resolve) => server.close(resolve)));
    const port = (server.address() as AddressInfo).port;
    return { keeper, failures, runs, port, app };
  }

  it('40 parallel wrong logins: the handler runs at most maxRetry times', async () => {
    const { port, runs } = await start();
    await parallelGuesses(port, '/login', () => runs.login ?? 0);
  });

  it('the same on a sub-app’s route, counted under its full pattern', async () => {
    const { port, runs, failures, keeper } = await start();
    await parallelGuesses(port, '/api/login', () => runs.api ?? 0);
    await keeper.idle();
    assert.ok(failures.length > 0 && failures.every((f) => f.route === '/api/login'));
  });

  it('jk.route() mounted with app.use() configures the routes below it', async () => {
    const { port, keeper, failures } = await start();
    const client = fresh();
    for (let i = 0; i < 3; i++) assert.equal((await send(port, 'GET', '/panel/users', client))?.status, 403);
    await keeper.idle();
    assert.deepEqual(failures, [], 'counted only in login, which does not watch 403');
  });

  it('the admin API answers behind its token', async () => {
    const { port, keeper } = await start();
    const ok = await send(port, 'GET', '/_jailkeeper/status', '127.0.0.1', {
      authorization: `Bearer ${TOKEN}`,
    });
    assert.equal(ok?.status, 200);
    assert.ok('jails' in JSON.parse(ok?.body ?? '{}'));
    const banned = await new Promise<Answer | null>((resolve) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/_jailkeeper/bans',
          agent: false,
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: '' }));
        },
      );
      req.end(JSON.stringify({ address: '198.51.100.61', jail: 'login' }));
    });
    assert.ok(banned && banned.status < 300, String(banned?.status));
    assert.equal(keeper.check('198.51.100.61').banned, true);
    assert.equal((await send(port, 'GET', '/_jailkeeper/status', fresh()))?.status, 401);
  });

  it('without @hono/node-server there is no socket: requests pass unjudged, with one warning', async () => {
    const { app, keeper } = await start();
    const warnings: string[] = [];
    keeper.on('warning', (w) => warnings.push(w.code));
    for (let i = 0; i < 3; i++) assert.equal((await app.request('/login', { method: 'POST' })).status, 401);
    assert.deepEqual(warnings, ['JK_WRN_NO_PEER_ADDRESS']);
  });
});
