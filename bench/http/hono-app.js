// The bench app (app.js) on Hono 4 served by @hono/node-server, built without listening.
// Configurations: bare; noop (one no-op middleware); jailkeeper* (@jailkeeper/hono's middleware,
// first); hrl (hono-rate-limiter, its documented setup, memory store, keyed by the socket peer).
import { createAdaptorServer } from '@hono/node-server';
import { jailkeeper } from '@jailkeeper/hono';
import { Hono } from 'hono';
import { rateLimiter } from 'hono-rate-limiter';

/** Returns { server, listen, close } for buildApp(). */
export function buildHonoApp({ config, keeper, block, limit, windowMs, failuresOnly, checkDelay, countRun }) {
  const app = new Hono();
  const jk = keeper ? jailkeeper(keeper, { block }) : undefined;
  if (config === 'noop') app.use(async (_c, next) => next());
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
  app.post('/login', async (c) => {
    countRun(c.env.incoming.socket.remoteAddress);
    if (checkDelay !== undefined) await new Promise((resolve) => setTimeout(resolve, checkDelay));
    return c.text('wrong password', 401);
  });
  const server = createAdaptorServer({ fetch: app.fetch });
  // drop: a banned peer is dropped at accept, before any HTTP parsing
  if (block === 'drop') jk.guard(server, { connection: true });
  return {
    server,
    listen: () => new Promise((resolve) => server.listen(0, '127.0.0.1', resolve)),
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
