// One server of the peer comparison: node peer-server.js <express|fastify|nestjs|hono> <config> <scenario>
// Prints "ready <port>"; on SIGINT prints "mem <json>" (after a GC) and exits.
//
// Configurations: bare; jailkeeper, jailkeeper-redis, jailkeeper-drop; erl, erl-redis
// (express-rate-limit, rate-limit-redis); frl, frl-redis (@fastify/rate-limit); rlf, rlf-redis
// (rate-limiter-flexible); throttler (@nestjs/throttler, NestJS on Express); hrl (hono-rate-limiter,
// Hono on @hono/node-server). Scenarios set the limits:
// - clean, failures: limits that are never reached, so every request pays the counting;
// - banned: the load's client (127.0.0.1) is already over the limit (jailkeeper: banned at start);
// - mixed: a login limit of MAX_RETRY failures, where the peer can count failures only.

import 'reflect-metadata';
import fastifyRateLimit from '@fastify/rate-limit';
import { serve } from '@hono/node-server';
import { createJailkeeper } from '@jailkeeper/core';
import { jailkeeper } from '@jailkeeper/express';
import { jailkeeperPlugin } from '@jailkeeper/fastify';
import { jailkeeper as honoJailkeeper } from '@jailkeeper/hono';
import { JailkeeperModule } from '@jailkeeper/nestjs';
import { createRedisStore } from '@jailkeeper/redis';
import { Controller, Get, Module, Post, UnauthorizedException } from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import { SkipThrottle, ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';
import express from 'express';
import { rateLimit } from 'express-rate-limit';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { rateLimiter } from 'hono-rate-limiter';
import { Redis } from 'ioredis';
import { RedisStore } from 'rate-limit-redis';
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';

export const MAX_RETRY = 5;
const [framework, config, scenario] = process.argv.slice(2);
const redis = config.endsWith('-redis') ? new Redis(process.env.REDIS_URL) : undefined;
const prefix = `jkp${process.pid}:`;
const unlimited = scenario === 'clean' || scenario === 'failures';
const limit = unlimited ? 1e9 : scenario === 'banned' ? 1 : MAX_RETRY;
const windowMs = 3600_000;

let keeper;
if (config.startsWith('jailkeeper')) {
  keeper = createJailkeeper({
    jails: {
      login: { statuses: [401], paths: ['/login'], maxRetry: unlimited ? 1e9 : MAX_RETRY, banTime: '1h' },
      scan: { statuses: [404], maxRetry: 20 },
    },
    logger: { info() {}, warn() {}, error() {} },
    ...(redis ? { store: createRedisStore({ client: redis, prefix }) } : {}),
  });
  await keeper.ready;
  if (scenario === 'banned') await keeper.ban('127.0.0.1', { duration: '1d' });
}
const block = config === 'jailkeeper-drop' ? 'drop' : 'forbid';

// rate-limiter-flexible: every request consumes a point (its documented middleware); in the
// mixed scenario, only failures do (its login-protection pattern), checked before the handler.
const rlf = config.startsWith('rlf')
  ? redis
    ? new RateLimiterRedis({
        storeClient: redis,
        points: limit,
        duration: windowMs / 1000,
        keyPrefix: prefix,
      })
    : new RateLimiterMemory({ points: limit, duration: windowMs / 1000 })
  : undefined;
const failuresOnly = scenario === 'mixed';

let port;
if (framework === 'express') {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  if (keeper) app.use(jailkeeper(keeper, { block }));
  if (config.startsWith('erl')) {
    app.use(
      rateLimit({
        windowMs,
        limit,
        standardHeaders: false,
        legacyHeaders: false,
        skipSuccessfulRequests: failuresOnly,
        validate: false,
        ...(redis
          ? { store: new RedisStore({ sendCommand: (...args) => redis.call(...args), prefix }) }
          : {}),
      }),
    );
  }
  if (rlf) {
    app.use((req, res, next) => {
      if (failuresOnly) {
        rlf.get(req.ip).then((r) => {
          if (r !== null && r.consumedPoints >= limit) res.status(429).send('Too Many Requests');
          else {
            res.on('finish', () => {
              if (res.statusCode >= 400) rlf.consume(req.ip).catch(() => {});
            });
            next();
          }
        }, next);
        return;
      }
      rlf.consume(req.ip).then(
        () => next(),
        () => res.status(429).send('Too Many Requests'),
      );
    });
  }
  app.get('/', (_req, res) => res.send('hello'));
  app.post('/login', (_req, res) => res.status(401).send('wrong password'));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  // drop: a banned peer is dropped at accept, before any HTTP parsing (nginx's 444 at the door)
  if (block === 'drop') keeper.guard(server, { connection: true });
  port = server.address().port;
} else if (framework === 'nestjs') {
  // NestJS on Express (its default platform), decorators applied as TypeScript's emit would.
  class Routes {
    hello() {
      return 'hello';
    }
    login() {
      throw new UnauthorizedException('wrong password');
    }
  }
  const decorate = (name, ...decorators) =>
    Reflect.decorate(
      decorators,
      Routes.prototype,
      name,
      Object.getOwnPropertyDescriptor(Routes.prototype, name),
    );
  // @nestjs/throttler counts every request of a route: in the mixed scenario it guards the login
  // route only (its login-protection pattern), so clean clients are not throttled.
  decorate('hello', Get(), ...(config === 'throttler' && failuresOnly ? [SkipThrottle()] : []));
  decorate('login', Post('login'));
  Controller()(Routes);
  const imports = [];
  const providers = [];
  if (keeper) {
    imports.push(
      JailkeeperModule.forRoot({
        keeper,
        block,
        ...(block === 'drop' ? { guard: { upgrade: true, connection: true } } : {}),
      }),
    );
  }
  if (config === 'throttler') {
    imports.push(ThrottlerModule.forRoot([{ ttl: windowMs, limit }]));
    providers.push({ provide: APP_GUARD, useClass: ThrottlerGuard });
  }
  class AppModule {}
  Module({ imports, controllers: [Routes], providers })(AppModule);
  const app = await NestFactory.create(AppModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  port = app.getHttpServer().address().port;
} else if (framework === 'hono') {
  const app = new Hono();
  const jk = keeper ? honoJailkeeper(keeper, { block }) : undefined;
  if (jk) app.use(jk);
  if (config === 'hrl') {
    app.use(
      rateLimiter({
        windowMs,
        limit,
        standardHeaders: false,
        skipSuccessfulRequests: failuresOnly,
        keyGenerator: (c) => c.env.incoming.socket.remoteAddress,
      }),
    );
  }
  app.get('/', (c) => c.text('hello'));
  app.post('/login', (c) => c.text('wrong password', 401));
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise((resolve) => server.once('listening', resolve));
  if (block === 'drop') jk.guard(server, { connection: true });
  port = server.address().port;
} else {
  const app = Fastify();
  if (keeper) {
    await app.register(jailkeeperPlugin, {
      keeper,
      block,
      ...(block === 'drop' ? { guard: { upgrade: true, connection: true } } : {}),
    });
  }
  if (config.startsWith('frl')) {
    await app.register(fastifyRateLimit, {
      max: limit,
      timeWindow: windowMs,
      addHeaders: {},
      addHeadersOnExceeding: {},
      ...(redis ? { redis, nameSpace: prefix } : {}),
    });
  }
  if (rlf) {
    app.addHook('onRequest', async (request, reply) => {
      if (failuresOnly) {
        const r = await rlf.get(request.ip);
        if (r !== null && r.consumedPoints >= limit) return reply.code(429).send('Too Many Requests');
        return;
      }
      try {
        await rlf.consume(request.ip);
      } catch {
        return reply.code(429).send('Too Many Requests');
      }
    });
    if (failuresOnly) {
      app.addHook('onResponse', async (request, reply) => {
        if (reply.statusCode >= 400 && reply.statusCode !== 429)
          await rlf.consume(request.ip).catch(() => {});
      });
    }
  }
  app.get('/', async () => 'hello');
  app.post('/login', async (_request, reply) => reply.code(401).send('wrong password'));
  await app.listen({ port: 0, host: '127.0.0.1' });
  port = app.server.address().port;
}

process.on('SIGINT', () => {
  globalThis.gc?.();
  const { rss, heapUsed } = process.memoryUsage();
  process.stdout.write(`mem ${JSON.stringify({ rss, heapUsed })}\n`, () => process.exit(0));
});
console.log(`ready ${port}`);
