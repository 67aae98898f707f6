// The application every HTTP benchmark runs, built without listening: server.js listens on a
// port for the load runs, inprocess-child.js feeds it in-memory connections. Same routes on
// Express 5, Fastify 5, NestJS 11 (on Express, nestjs-app.js) and Hono 4 (on @hono/node-server,
// hono-app.js): `GET /` answers `hello`; `POST /login` answers 401 and counts its runs
// per client address (the ground truth of how often a guess reached the handler).
//
// Configurations:
// - bare; noop (one no-op middleware / onRequest hook: the reference for what any middleware costs);
// - jailkeeper, jailkeeper-redis, jailkeeper-drop (banned peers dropped at accept);
// - jailkeeper-uncounted: the same jails, but the login jail watches `/signin`, so the 401 of
//   `/login` goes through the whole adapter and observe() and is not counted (a counted failure's
//   cost is jailkeeper minus this);
// - erl, erl-redis (express-rate-limit, rate-limit-redis); frl, frl-redis (@fastify/rate-limit);
//   rlf, rlf-redis (rate-limiter-flexible); throttler (@nestjs/throttler, NestJS only); hrl
//   (hono-rate-limiter, Hono only);
// - steps-<n>: the adapter's clean path cut after its n-th step (ablation.js), with the memory store;
//   alt-<name>: an alternative way to do one of the adapter's steps (ablation.js).
// Scenarios set the limits:
// - clean, failures: limits that are never reached, so every request pays the counting;
// - banned: the load's client (127.0.0.1) is already over the limit (jailkeeper: banned at start);
// - mixed: a login limit of MAX_RETRY failures, where the peer can count failures only;
// - flood: the login jail of the login-flood scenario (401 on POST /login, maxRetry MAX_RETRY),
//   and a login handler that awaits a simulated password check before it answers.

import { createServer } from 'node:http';
import fastifyRateLimit from '@fastify/rate-limit';
import { createJailkeeper } from '@jailkeeper/core';
import { jailkeeper } from '@jailkeeper/express';
import { jailkeeperPlugin } from '@jailkeeper/fastify';
import { createRedisStore } from '@jailkeeper/redis';
import express from 'express';
import { rateLimit } from 'express-rate-limit';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { RedisStore } from 'rate-limit-redis';
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import { ALTERNATIVES, alternative, expressSteps, fastifySteps } from './ablation.js';
import { buildHonoApp } from './hono-app.js';
import { buildNestApp } from './nestjs-app.js';

export const MAX_RETRY = 5;
/** How long the flood's login handler waits for its (simulated) password check, in ms. */
export const PASSWORD_CHECK_MS = 2;
export const FRAMEWORKS = ['express', 'fastify', 'nestjs', 'hono'];
export const CONFIGS = [
  'bare',
  'noop',
  'jailkeeper',
  'jailkeeper-redis',
  'jailkeeper-drop',
  'jailkeeper-uncounted',
  'erl',
  'erl-redis',
  'frl',
  'frl-redis',
  'rlf',
  'rlf-redis',
  'throttler',
  'hrl',
];
/** The frameworks a peer's configuration runs on (bare, noop and jailkeeper* run on every one). */
const PEER_FRAMEWORKS = {
  erl: ['express'],
  frl: ['fastify'],
  rlf: ['express', 'fastify', 'hono'],
  throttler: ['nestjs'],
  hrl: ['hono'],
};
export const SCENARIOS = ['clean', 'banned', 'mixed', 'failures', 'flood'];

/** Whether a configuration answers a banned client 403 (bare, noop and steps-<n> serve it). */
export const refuses = (config) => config.startsWith('jailkeeper') || config.startsWith('alt-refuse');

/**
 * Builds one configuration. Returns `{ server, keeper, runs, listen, close }`: an http.Server that
 * is not listening yet, the login handler's runs per client address, and functions to listen on
 * loopback and to close.
 */
export async function buildApp(framework, config, scenario, { redisUrl = process.env.REDIS_URL } = {}) {
  if (!FRAMEWORKS.includes(framework)) throw new Error(`framework: one of ${FRAMEWORKS.join(', ')}`);
  const alt = config.startsWith('alt-') ? config.slice(4) : undefined;
  if (!CONFIGS.includes(config) && !/^steps-\d+$/.test(config) && !(alt in ALTERNATIVES)) {
    throw new Error(`config: one of ${CONFIGS.join(', ')}, steps-<n> or alt-<name> (ablation.js)`);
  }
  const steps = config.startsWith('steps-') ? Number(config.slice(6)) : 0;
  const peer = PEER_FRAMEWORKS[config.replace(/-redis$/, '')];
  if (peer && !peer.includes(framework)) throw new Error(`${config} runs on ${peer.join(', ')}`);
  if ((steps > 0 || alt !== undefined) && framework !== 'express' && framework !== 'fastify') {
    throw new Error(`${config} runs on express and fastify`);
  }
  if (!SCENARIOS.includes(scenario)) throw new Error(`scenario: one of ${SCENARIOS.join(', ')}`);
  const redis = config.endsWith('-redis') ? new Redis(redisUrl) : undefined;
  const prefix = `jkb${process.pid}:`;
  const unlimited = scenario === 'clean' || scenario === 'failures';
  const limit = unlimited ? 1e9 : scenario === 'banned' ? 1 : MAX_RETRY;
  const windowMs = 3600_000;
  const runs = new Map();
  const countRun = (address) => runs.set(address, (runs.get(address) ?? 0) + 1);
  // In the flood, the login handler checks the password as a real one does: asynchronously (a
  // hash on the thread pool, a database), here a timer of PASSWORD_CHECK_MS that takes no CPU.
  // Guesses in flight at once all pass the ban check before the first of them fails.
  const checkDelay = scenario === 'flood' ? PASSWORD_CHECK_MS : undefined;

  let keeper;
  if (config.startsWith('jailkeeper') || steps > 0 || alt !== undefined) {
    keeper = createJailkeeper({
      jails: {
        login: {
          statuses: [401],
          paths: [config === 'jailkeeper-uncounted' ? '/signin' : '/login'],
          ...(scenario === 'flood' ? { methods: ['POST'] } : {}),
          maxRetry: unlimited ? 1e9 : MAX_RETRY,
          banTime: '1h',
        },
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
  // mixed and flood scenarios, only failures do (its login-protection pattern), checked first.
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
  const failuresOnly = scenario === 'mixed' || scenario === 'flood';

  let server;
  let listen;
  let closeApp;
  if (framework === 'nestjs' || framework === 'hono') {
    const build = framework === 'nestjs' ? buildNestApp : buildHonoApp;
    const options = { config, keeper, block, limit, windowMs, failuresOnly, checkDelay, countRun, rlf };
    ({ server, listen, close: closeApp } = await build(options));
  } else if (framework === 'express') {
    const app = express();
    app.disable('x-powered-by');
    app.disable('etag');
    if (config === 'noop') app.use((_req, _res, next) => next());
    if (steps > 0) app.use(expressSteps(keeper, steps));
    else if (alt !== undefined) app.use(alternative(alt, framework, null, keeper));
    else if (keeper) app.use(jailkeeper(keeper, { block }));
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
    app.post('/login', (req, res) => {
      countRun(req.socket.remoteAddress);
      if (checkDelay === undefined) res.status(401).send('wrong password');
      else setTimeout(() => res.status(401).send('wrong password'), checkDelay);
    });
    server = createServer(app);
    listen = () => new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    // drop: a banned peer is dropped at accept, before any HTTP parsing (nginx's 444 at the door)
    if (block === 'drop') keeper.guard(server, { connection: true });
    closeApp = () => new Promise((resolve) => server.close(resolve));
  } else {
    const app = Fastify();
    if (config === 'noop') app.addHook('onRequest', (_request, _reply, done) => done());
    if (steps > 0) fastifySteps(app, keeper, steps);
    else if (alt !== undefined) alternative(alt, framework, app, keeper);
    else if (keeper) {
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
    app.post('/login', async (request, reply) => {
      countRun(request.raw.socket.remoteAddress);
      if (checkDelay !== undefined) await new Promise((resolve) => setTimeout(resolve, checkDelay));
      return reply.code(401).send('wrong password');
    });
    await app.ready();
    server = app.server;
    listen = () => app.listen({ port: 0, host: '127.0.0.1' });
    closeApp = () => app.close();
  }

  return {
    server,
    keeper,
    runs,
    /** Listens on 127.0.0.1 and a free port; read it from server.address(). */
    listen: async () => {
      await listen();
      return server.address().port;
    },
    close: async () => {
      await closeApp();
      await keeper?.close?.();
      redis?.disconnect();
    },
  };
}
