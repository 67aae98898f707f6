/**
 * Express: a module that wrapped `EventEmitter.prototype.on` before jailkeeper loaded, and wraps
 * some listeners only (those added while an async context is active, as context propagators and
 * APM agents do), in an app that replaces `res.locals` after the middleware. The routes then find
 * the request's state from the attempt's close listener, which such a wrapper hides. Checked once
 * at load, on a plain emitter with no context, the wrapper looked like Node's own `on`, the
 * listener was not counted, and 10 parallel guesses at maxRetry 3 ran the handler 10 times.
 *
 * A file of its own: the wrapper is installed before `@jailkeeper/core` is imported (dynamically,
 * below), as an agent loaded with `--import` would be.
 */
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { it } from 'node:test';

const als = new AsyncLocalStorage<object>();
const original = EventEmitter.prototype.on;
function contextOn(this: EventEmitter, event: string | symbol, listener: (...args: unknown[]) => void) {
  const context = als.getStore();
  if (context === undefined) return original.call(this, event, listener);
  return original.call(this, event, function bound(this: unknown, ...args: unknown[]) {
    return als.run(context, () => listener.apply(this, args));
  });
}
EventEmitter.prototype.on = contextOn as typeof original;
EventEmitter.prototype.addListener = contextOn as typeof original;

it('10 parallel guesses at maxRetry 3, with a context-binding on() loaded first and res.locals replaced: 3 runs', async () => {
  const { createJailkeeper } = await import('@jailkeeper/core');
  const { quietLogger } = await import('@jailkeeper/core/testing');
  const { jailkeeper } = await import('@jailkeeper/express');
  const { default: express } = await import('express');
  const keeper = createJailkeeper({
    logger: quietLogger,
    jails: { login: { statuses: [401], paths: ['/login'], methods: ['POST'], maxRetry: 3 } },
  });
  const app = express();
  app.use((_req, _res, next) => als.run({ trace: 1 }, next));
  app.use(jailkeeper(keeper));
  app.use((_req, res, next) => {
    res.locals = { user: 'anonymous' };
    next();
  });
  let runs = 0;
  app.post('/login', (_req, res) => {
    runs++;
    setTimeout(() => res.status(401).send('no'), 30);
  });
  const server: Server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  const send = () =>
    new Promise((resolve) => {
      const req = httpRequest(
        { host: '127.0.0.1', port, method: 'POST', path: '/login', agent: false },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode));
        },
      );
      req.on('error', () => resolve('cut'));
      req.end();
    });
  try {
    await Promise.all(Array.from({ length: 10 }, send));
    await keeper.idle();
    assert.equal(runs, 3, 'the handler ran at most maxRetry times');
    assert.equal(keeper.check('127.0.0.1').banned, true);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await keeper.close();
  }
});
