// The bench app (app.js) on Hono 4 served by @hono/node-server, built without listening.
// Configurations: bare; noop (one no-op middleware); jailkeeper* (@jailkeeper/hono's middleware,
// first); hrl (hono-rate-limiter, its documented setup, memory store, keyed by the socket peer);
// rlf, rlf-redis (rate-limiter-flexible as on Express and Fastify: app.js builds the limiter).
import { createAdaptorServer } from '@hono/node-server';
import { jailkeeper } from '@jailkeeper/hono';
import { Hono } from 'hono';
import { rateLimiter } from 'hono-rate-limiter';

/** Returns { server, listen, close } for buildApp(). */
export function buildHonoApp({
  config,
  keeper,
  block,
  limit,
  windowMs,
  failuresOnly,
  checkDelay,
  countRun,
  rlf,
}) {
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
  if (rlf) {
    // Every request consumes a point; in the mixed and flood scenarios only failures do, checked first.
    app.use(async (c, next) => {
      const ip = c.env.incoming.socket.remoteAddress;
      if (failuresOnly) {
        const r = await rlf.get(ip);
        if (r !== null && r.consumedPoints >= limit) return c.text('Too Many Requests', 429);
        await next();
        if (c.res.status >= 400) await rlf.consume(ip).catch(() => {});
        return;
      }
      try {
        await rlf.consume(ip);
      } catch {
        return c.text('Too Many Requests', 429);
      }
      await next();
    });
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
