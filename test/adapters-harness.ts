/**
 * One test app per framework with the same routes, so that one table of scenarios runs through
 * every adapter. Each route names itself in `x-handler`, so a test can tell which handler ran.
 */
import 'reflect-metadata';
import { once } from 'node:events';
import { type Agent, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { getRequestListener, serve } from '@hono/node-server';
import type { Jailkeeper } from '@jailkeeper/core';
import type { RefusalOptions } from '@jailkeeper/core/adapter';
import { jailkeeper } from '@jailkeeper/express';
import { jailkeeperPlugin } from '@jailkeeper/fastify';
import { jailkeeper as honoJailkeeper } from '@jailkeeper/hono';
import { JailkeeperExempt, JailkeeperJails, JailkeeperModule } from '@jailkeeper/nestjs';
import {
  Controller,
  Get,
  HttpCode,
  HttpException,
  Module,
  NotFoundException,
  Param,
  Post,
  Req,
  Res,
  UnauthorizedException,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import express5 from 'express';
import express4 from 'express4';
import fastify5 from 'fastify';
import fastify4 from 'fastify4';
import { Hono } from 'hono';
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

/** Applies decorators the way TypeScript's emit does (the tests run without decorator syntax). */
export function decorate(target: object, name: string, ...decorators: MethodDecorator[]): void {
  Reflect.decorate(decorators, target, name, Object.getOwnPropertyDescriptor(target, name));
}

/** What Nest hands a handler with `@Res()`: Express's response or Fastify's reply, both can do this. */
type NestResponse = {
  header(name: string, value: string): unknown;
  status(code: number): unknown;
  send(body: string): unknown;
  destroyed?: boolean;
  raw?: { destroyed: boolean };
};

/** The test routes as a Nest controller; `pending` is the framework's set of slow handlers. */
function nestController(pending: () => Set<Promise<void>>): new () => object {
  const answer = (res: NestResponse, label: string, status: number): string => {
    res.header('x-handler', label);
    if (status >= 400) throw new HttpException(label, status);
    return label;
  };
  class Routes {
    login(req: { headers: Record<string, string> }, res: NestResponse) {
      res.header('x-handler', 'login');
      if (req.headers.authorization !== 'secret') throw new UnauthorizedException();
      return 'login';
    }
    ws(res: NestResponse) {
      return answer(res, 'ws', 403);
    }
    healthz(res: NestResponse) {
      return answer(res, 'healthz', 503);
    }
    admin(res: NestResponse) {
      return answer(res, 'admin', 403);
    }
    public(res: NestResponse) {
      return answer(res, 'public', 200);
    }
    secret(res: NestResponse) {
      return answer(res, 'secret', 401);
    }
    whoami(res: NestResponse) {
      return answer(res, 'whoami', 401);
    }
    routeExempt(res: NestResponse) {
      return answer(res, 'route-exempt', 403);
    }
    onlyLogin(res: NestResponse) {
      return answer(res, 'only-login', 403);
    }
    users(id: string, res: NestResponse) {
      res.header('x-handler', 'users');
      if (id !== '1') throw new NotFoundException();
      return 'user';
    }
    slow(res: NestResponse) {
      res.status(401);
      slowly(pending(), () => {
        if (!(res.destroyed ?? res.raw?.destroyed)) res.send('');
      });
    }
  }
  const p = Routes.prototype;
  decorate(p, 'login', Post('login'), HttpCode(200));
  Req()(p, 'login', 0);
  Res({ passthrough: true })(p, 'login', 1);
  const simple: Array<[string, string, ...MethodDecorator[]]> = [
    ['ws', 'ws'],
    ['healthz', 'healthz'],
    ['admin', 'admin'],
    ['public', 'public'],
    ['secret', 'secret'],
    ['whoami', 'whoami'],
    ['routeExempt', 'route-exempt', JailkeeperExempt()],
    ['onlyLogin', 'only-login', JailkeeperJails('login')],
  ];
  for (const [name, path, ...more] of simple) {
    decorate(p, name, Get(path), ...more);
    Res({ passthrough: true })(p, name, 0);
  }
  decorate(p, 'users', Get('users/:id'));
  Param('id')(p, 'users', 0);
  Res({ passthrough: true })(p, 'users', 1);
  decorate(p, 'slow', Get('slow'));
  Res()(p, 'slow', 0);
  Controller()(Routes);
  return Routes;
}

function nestFramework(name: string, platform: 'express' | 'fastify'): Framework {
  let pending = new Set<Promise<void>>();
  const Routes = nestController(() => pending);
  return {
    name,
    async start(keeper, options) {
      pending = new Set<Promise<void>>();
      const mine = pending;
      class AppModule {}
      Module({ imports: [JailkeeperModule.forRoot({ keeper, ...options })], controllers: [Routes] })(
        AppModule,
      );
      const app =
        platform === 'fastify'
          ? await NestFactory.create(AppModule, new FastifyAdapter(), { logger: false })
          : await NestFactory.create(AppModule, { logger: false });
      await app.listen(0, '::');
      const server = app.getHttpServer() as Server;
      const instance = app.getHttpAdapter().getInstance();
      const wss = listenWs(server);
      return {
        port: (server.address() as { port: number }).port,
        server,
        inject: (o) =>
          (platform === 'fastify'
            ? instance.inject({ method: 'GET', ...o })
            : inject(instance, { method: 'GET', ...o } as never)) as never,
        async close() {
          await Promise.all(mine); // a handler still running after its client left
          for (const c of wss.clients) c.terminate();
          wss.close();
          server.closeAllConnections();
          await app.close();
        },
      };
    },
  };
}

function honoFramework(name: string): Framework {
  return {
    name,
    async start(keeper, options) {
      const pending = new Set<Promise<void>>();
      const jk = honoJailkeeper(keeper, options);
      const app = new Hono();
      app.use(jk);
      const handler = (label: string, status: number) => (c: import('hono').Context) => {
        c.header('x-handler', label);
        return c.text(label, status as never);
      };
      app.post('/login', (c) => {
        c.header('x-handler', 'login');
        return c.text('login', c.req.header('authorization') === 'secret' ? 200 : 401);
      });
      app.get('/ws', handler('ws', 403));
      app.get('/healthz', handler('healthz', 503));
      app.get('/admin', handler('admin', 403));
      app.get('/public', handler('public', 200));
      app.get('/secret', handler('secret', 401));
      app.get('/whoami', handler('whoami', 401));
      app.get('/route-exempt', jk.exempt(), handler('route-exempt', 403));
      app.get('/only-login', jk.route({ jails: ['login'] }), handler('only-login', 403));
      app.get('/users/:id', (c) => {
        c.header('x-handler', 'users');
        return c.text('user', c.req.param('id') === '1' ? 200 : 404);
      });
      app.get('/slow', async (c) => {
        c.status(401);
        await new Promise<void>((resolve) => slowly(pending, resolve));
        return c.body('');
      });
      const server = serve({ fetch: app.fetch, port: 0, hostname: '::' }) as Server;
      await once(server, 'listening');
      jk.guard(server);
      const wss = listenWs(server);
      const listener = getRequestListener(app.fetch);
      return {
        port: (server.address() as { port: number }).port,
        server,
        inject: (o) => inject(listener as never, { method: 'GET', ...o } as never) as never,
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

export const FRAMEWORKS: readonly Framework[] = [
  expressFramework('express 5', express5),
  expressFramework('express 4', express4 as unknown as typeof express5),
  fastifyFramework('fastify 5', fastify5),
  fastifyFramework('fastify 4', fastify4 as unknown as typeof fastify5),
  nestFramework('nestjs 11 (express)', 'express'),
  nestFramework('nestjs 11 (fastify)', 'fastify'),
  honoFramework('hono 4'),
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
