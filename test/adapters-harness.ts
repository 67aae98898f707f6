/**
 * One test app per framework with the same routes, so that one table of scenarios runs through
 * every adapter. Each route names itself in `x-handler`, so a test can tell which handler ran.
 */
import { once } from 'node:events';
import { type Agent, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { Jailkeeper } from '@jailkeeper/core';
import type { RefusalOptions } from '@jailkeeper/core/adapter';
import { jailkeeper } from '@jailkeeper/express';
import { jailkeeperPlugin } from '@jailkeeper/fastify';
import express5 from 'express';
import express4 from 'express4';
import fastify5 from 'fastify';
import fastify4 from 'fastify4';
import inject from 'light-my-request';
import { WebSocketServer } from 'ws';

export interface App {
  readonly port: number;
  readonly server: Server;
  /** An in-process request with any peer address (light-my-request / fastify.inject). */
  inject(options: {
    method?: string;
    url: string;
    headers?: Record<string, string>;
    remoteAddress: string;
  }): Promise<{
    statusCode: number;
    headers: Record<string, unknown>;
  }>;
  close(): Promise<void>;
}

export interface Framework {
  readonly name: string;
  start(keeper: Jailkeeper, options?: RefusalOptions): Promise<App>;
}

const SLOW_MS = 300;

/** Runs `finish` after SLOW_MS; the returned set lets close() wait for handlers still running. */
function slowly(pending: Set<Promise<void>>, finish: () => void): void {
  const done = new Promise<void>((resolve) =>
    setTimeout(() => {
      try {
        finish();
      } finally {
        resolve();
      }
    }, SLOW_MS),
  );
  pending.add(done);
  void done.then(() => pending.delete(done));
}

function listenWs(server: Server): WebSocketServer {
  // A WebSocket server on the same HTTP server, as the ws library is usually attached.
  const wss = new WebSocketServer({ server, path: '/live' });
  wss.on('connection', (socket) => socket.send('hello'));
  return wss;
}

function expressFramework(name: string, express: typeof express5): Framework {
  return {
    name,
    async start(keeper, options) {
      const app = express();
      const pending = new Set<Promise<void>>();
      const jk = jailkeeper(keeper, options);
      app.use(jk);
      const handler = (label: string, status: number) => (_req: express5.Request, res: express5.Response) => {
        res.set('x-handler', label).status(status).send(label);
      };
      app.post('/login', (req, res) => {
        res
          .set('x-handler', 'login')
          .status(req.headers.authorization === 'secret' ? 200 : 401)
          .send('login');
      });
      app.get('/ws', handler('ws', 403));
      app.get('/healthz', handler('healthz', 503));
      app.get('/admin', handler('admin', 403));
      app.get('/public', handler('public', 200));
      app.get('/secret', handler('secret', 401));
      app.get('/whoami', handler('whoami', 401));
      app.get('/route-exempt', jk.exempt(), handler('route-exempt', 403));
      app.get('/only-login', jk.route({ jails: ['login'] }), handler('only-login', 403));
      app.get('/users/:id', (req, res) => {
        res
          .set('x-handler', 'users')
          .status(req.params.id === '1' ? 200 : 404)
          .send('user');
      });
      app.get('/slow', (_req, res) => {
        res.status(401);
        // light-my-request (used on the same app by inject()) rewires Express's response prototype,
        // whose end() then throws on a destroyed socket: a client that left gets no end() call.
        slowly(pending, () => res.destroyed || res.end());
      });
      const server = app.listen(0, '::');
      await once(server, 'listening');
      jk.guard(server);
      const wss = listenWs(server);
      return {
        port: (server.address() as { port: number }).port,
        server,
        inject: (o) => inject(app as never, { method: 'GET', ...o } as never) as never,
        async close() {
          await Promise.all(pending); // a handler still running after its client left
          for (const c of wss.clients) c.terminate();
          wss.close();
          server.closeAllConnections();
          await new Promise((resolve) => server.close(resolve));
        },
      };
    },
  };
}

function fastifyFramework(name: string, fastify: typeof fastify5): Framework {
  return {
    name,
    async start(keeper, options) {
      const app = fastify();
      const pending = new Set<Promise<void>>();
      await app.register(jailkeeperPlugin as never, { keeper, ...options });
      const handler =
        (label: string, status: number) =>
        async (_req: unknown, reply: { header: Function; code: Function }) => {
          reply.header('x-handler', label);
          reply.code(status);
          return label;
        };
      app.post('/login', async (req, reply) => {
        reply.header('x-handler', 'login');
        reply.code(req.headers.authorization === 'secret' ? 200 : 401);
        return 'login';
      });
      app.get('/ws', handler('ws', 403) as never);
      app.get('/healthz', handler('healthz', 503) as never);
      app.get('/admin', handler('admin', 403) as never);
      app.get('/public', handler('public', 200) as never);
      app.get('/secret', handler('secret', 401) as never);
      app.get('/whoami', handler('whoami', 401) as never);
      app.get('/route-exempt', { config: { jailkeeper: false } }, handler('route-exempt', 403) as never);
      app.get(
        '/only-login',
        { config: { jailkeeper: { jails: ['login'] } } },
        handler('only-login', 403) as never,
      );
      app.get('/users/:id', async (req, reply) => {
        reply.header('x-handler', 'users');
        reply.code((req.params as { id: string }).id === '1' ? 200 : 404);
        return 'user';
      });
      app.get('/slow', (_req, reply) => {
        reply.code(401);
        slowly(pending, () => reply.send(''));
      });
      await app.listen({ port: 0, host: '::' });
      const wss = listenWs(app.server);
      return {
        port: (app.server.address() as { port: number }).port,
        server: app.server,
        inject: (o) => app.inject({ method: 'GET', ...o } as never) as never,
        async close() {
          await Promise.all(pending); // a handler still running after its client left
          for (const c of wss.clients) c.terminate();
          wss.close();
          app.server.closeAllConnections();
          await app.close();
        },
      };
    },
  };
}

export const FRAMEWORKS: readonly Framework[] = [
  expressFramework('express 5', express5),
  expressFramework('express 4', express4 as unknown as typeof express5),
  fastifyFramework('fastify 5', fastify5),
  fastifyFramework('fastify 4', fastify4 as unknown as typeof fastify5),
];

export type Reply =
  | { dropped: false; status: number; headers: IncomingHttpHeaders; body: string }
  | { dropped: true };

/** A real HTTP request from a chosen loopback address. */
export function send(
  port: number,
  options: {
    method?: string;
    path: string;
    headers?: Record<string, string>;
    from?: string;
    agent?: Agent;
    abortAfterMs?: number;
  },
): Promise<Reply> {
  return new Promise((resolve) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'GET',
        path: options.path,
        headers: options.headers,
        localAddress: options.from ?? '127.0.0.1',
        agent: options.agent ?? false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          body += chunk;
        });
        res.on('end', () =>
          resolve({ dropped: false, status: res.statusCode ?? 0, headers: res.headers, body }),
        );
        res.on('error', () => resolve({ dropped: true }));
      },
    );
    req.on('error', () => resolve({ dropped: true }));
    if (options.abortAfterMs !== undefined) setTimeout(() => req.destroy(), options.abortAfterMs);
    req.end();
  });
}
