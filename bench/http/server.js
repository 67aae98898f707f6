// One benchmark server: node server.js <express|fastify> <bare|jailkeeper|banned|banned-drop>
process.on('SIGINT', () => process.exit(0)); // a normal exit, so --cpu-prof can write

// Prints "ready <port>" when listening. Pinned to a core by the runner.
import { createJailkeeper } from '@jailkeeper/core';
import { jailkeeper } from '@jailkeeper/express';
import { jailkeeperPlugin } from '@jailkeeper/fastify';
import { createRedisStore } from '@jailkeeper/redis';
import express from 'express';
import Fastify from 'fastify';
import { Redis } from 'ioredis';

const [framework, mode] = process.argv.slice(2);
const keeper =
  mode === 'bare' || mode === 'noop'
    ? undefined
    : createJailkeeper({
        jails: {
          login: { statuses: [401], paths: ['/login'], maxRetry: 5 },
          forbidden: { statuses: [403], maxRetry: 5, exempt: ['/ws'] },
          scan: { statuses: [404], maxRetry: 20 },
        },
        logger: { info() {}, warn() {}, error() {} },
        ...(mode === 'redis'
          ? {
              store: createRedisStore({
                client: new Redis(process.env.REDIS_URL),
                prefix: `jkb${process.pid}:`,
              }),
            }
          : {}),
      });
await keeper?.ready;
// The load generator connects from 127.0.0.1: in the banned modes, that client is banned.
if (mode?.startsWith('banned')) await keeper.ban('127.0.0.1', { duration: '1d' });
const block = mode === 'banned-drop' ? 'drop' : 'forbid';

let port;
if (framework === 'express') {
  const app = express();
  app.disable('x-powered-by');
  if (mode === 'noop') app.use((_req, _res, next) => next()); // the cost of any middleware at all
  if (keeper) app.use(jailkeeper(keeper, { block }));
  app.get('/', (_req, res) => res.send('hello'));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  port = server.address().port;
} else {
  const app = Fastify();
  if (keeper)
    await app.register(jailkeeperPlugin, {
      keeper,
      block,
      ...(process.env.JK_GUARD === '0' ? { guard: false } : {}),
    });
  app.get('/', async () => 'hello');
  await app.listen({ port: 0, host: '127.0.0.1' });
  port = app.server.address().port;
}
console.log(`ready ${port}`);
