/**
 * The apps of the route conformance matrix, one per framework family and router setting, with
 * every router shape real apps use. Each handler writes its label to the probe as it runs; the
 * labels' meanings (which jails a response there counts in, which bans refuse it, which jails a
 * success there pardons) are written in `MEANINGS`, from the app's design.
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { Jailkeeper, JailkeeperOptions } from '@jailkeeper/core';
import { jailkeeper } from '@jailkeeper/express';
import { jailkeeperPlugin } from '@jailkeeper/fastify';
import express5 from 'express';
import express4 from 'express4';
import fastify5 from 'fastify';
import fastify4 from 'fastify4';
import { type FrameworkName, type Meaning, Probe, type RunningApp } from './route-conformance-harness.js';

const BIG = 100_000;

/**
 * The jails every app is judged by. Rules name routes as declared: string paths, a glob
 * (`/t/*\/login`), a parameter (`/users/:id/password`).
 */
export const JAILS: JailkeeperOptions['jails'] = {
  login: {
    statuses: [401],
    paths: [
      '/login',
      '/signin',
      '/log-in',
      '/mixed-a',
      '/any',
      '/rx-login',
      '/rx/:id/login',
      '/api/v1/auth/login',
      '/t/*/login',
      '/sub/login',
      '/bare/login',
      '/cs/login',
      '/early-login',
      '/plugin-early/login',
      '/enc/login',
    ],
    scope: 'jail',
    maxRetry: BIG,
    pardon: { statuses: [200] },
  },
  api: { statuses: [401], paths: ['/api/login'], scope: 'jail', maxRetry: BIG },
  pw: { statuses: [401], methods: ['PUT'], paths: ['/users/:id/password'], scope: 'jail', maxRetry: BIG },
  me: { statuses: [401], methods: ['GET'], paths: ['/me'], scope: 'jail', maxRetry: BIG },
  forbidden: {
    statuses: [403],
    exempt: ['/ws', '/ws/**', '/sub/ws', '/bare/ws', '/files/**', '/range/:from-:to', '/Mixed-Case'],
    maxRetry: BIG,
  },
};

export const SCOPED_JAILS = ['login', 'api', 'pw', 'me'];

const LOGIN: Meaning = { counts: ['login'], guards: ['login'] };
const FORBIDDEN: Meaning = { counts: ['forbidden'] };

/** What each handler means, by label: the app's design, written without asking jailkeeper. */
export const MEANINGS: Readonly<Record<string, Meaning>> = {
  login: LOGIN,
  'login:ok': { guards: ['login'], pardons: ['login'] },
  // GET /login is on the login jail's paths (a ban there refuses the page), but a page is no
  // proof of a login: it pardons nothing.
  loginPage: { guards: ['login'] },
  arrayLogin: LOGIN,
  'mixed:/mixed-a': LOGIN,
  'mixed:/mixed-b': {},
  me: { counts: ['me'], guards: ['me'] },
  password: { counts: ['pw'], guards: ['pw'] },
  passwordPost: {},
  any: LOGIN,
  rx: LOGIN,
  rxLogin: LOGIN,
  ws: {},
  wsAny: {},
  exemptRoute: {},
  onlyLogin: {},
  hook: {},
  hookStatus: {},
  admin: FORBIDDEN,
  mixedCase: {},
  apiGate: { counts: ['api'], guards: ['api'] },
  'apiGate:pass': { guards: ['api'] },
  apiLoginOk: { guards: ['api'] },
  deepLogin: LOGIN,
  deepWs: FORBIDDEN,
  tenantLogin: LOGIN,
  tenantUser: FORBIDDEN,
  subLogin: LOGIN,
  subWs: {},
  bareLogin: LOGIN,
  bareWs: {},
  files: {},
  csLogin: LOGIN,
  page: {},
  range: {},
  early: {},
  earlyLogin: LOGIN,
  pluginEarlyLogin: LOGIN,
  encLogin: LOGIN,
  encWs: {},
  encAdmin: FORBIDDEN,
};

type Req = {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  originalMethod?: string;
};
type Res = { status(code: number): Res; send(body: string): void };
type Next = (error?: unknown) => void;

/**
 * X-HTTP-Method-Override as the method-override package reads it by default: only on POST, the
 * header's method upper-cased into `req.method` (the router then runs that method's route).
 */
function methodOverride(req: Req, _res: Res, next: Next): void {
  const override = req.headers['x-http-method-override'];
  if (req.method === 'POST' && typeof override === 'string') {
    req.originalMethod = req.method;
    req.method = override.toUpperCase();
  }
  next();
}

export interface ExpressSettings {
  readonly caseSensitive?: boolean;
  readonly strict?: boolean;
}

/** An Express app (4 or 5) with every shape; the middleware first, method override after it. */
export async function startExpress(
  name: FrameworkName,
  keeper: Jailkeeper,
  settings: ExpressSettings,
): Promise<RunningApp> {
  const express = (name === 'express 4' ? express4 : express5) as typeof express5;
  const v5 = name === 'express 5';
  const probe = new Probe();
  const h = (label: string, status: number) => (req: Req, res: Res) => {
    probe.hit(label, req.method);
    res.status(status).send(label);
  };
  const app = express();
  if (settings.caseSensitive) app.set('case sensitive routing', true);
  if (settings.strict) app.set('strict routing', true);
  const jk = jailkeeper(keeper);
  app.use(jk);
  app.use(methodOverride as never);

  // Top-level routes.
  app.post('/login', ((req: Req, res: Res) => {
    const ok = req.headers.authorization === 'secret';
    probe.hit(ok ? 'login:ok' : 'login', req.method);
    res.status(ok ? 200 : 401).send('login');
  }) as never);
  app.get('/login', h('loginPage', 200) as never);
  app.get('/me', h('me', 401) as never);
  app.put('/users/:id/password', h('password', 401) as never);
  app.post('/users/:id/password', h('passwordPost', 401) as never);
  app.all('/any', h('any', 401) as never);
  app.get('/admin', h('admin', 403) as never);
  app.get('/mixed-case', h('mixedCase', 403) as never);
  // Array paths: the element the router matched is the route.
  app.post(['/signin', '/log-in'], h('arrayLogin', 401) as never);
  app.post(['/mixed-a', '/mixed-b'], ((req: Req, res: Res) => {
    // Plain elements: the one matched is the path, in the app's case and without a trailing slash.
    probe.hit(`mixed:${req.path.toLowerCase().replace(/\/$/, '')}`, req.method);
    res.status(401).send('mixed');
  }) as never);
  // A RegExp route: no pattern text, so its rules match the request path.
  app.post(/^\/rx-login\/?$/i, h('rx', 401) as never);
  // Route-level middleware.
  app.get('/exempt', jk.exempt(), h('exemptRoute', 403) as never);
  app.get('/only-login', jk.route({ jails: ['login'] }), h('onlyLogin', 403) as never);
  // An exemption mounted with app.use: everything below /hooks, in Express's own order.
  const hooks = express.Router();
  hooks.post('/github', h('hook', 403) as never);
  app.use('/hooks', jk.exempt(), hooks);
  app.get('/hooks/status', h('hookStatus', 403) as never);
  // Handlers mounted with app.use: /ws answers 403 by design (the /ws incident).
  app.use('/ws', h('ws', 403) as never);
  app.use('/api/login', ((req: Req, res: Res, next: Next) => {
    if (req.headers.authorization === 'secret') {
      probe.hit('apiGate:pass', req.method);
      next();
      return;
    }
    probe.hit('apiGate', req.method);
    res.status(401).send('gate');
  }) as never);
  app.post('/api/login', h('apiLoginOk', 200) as never);
  // Routers nested three deep.
  const api = express.Router();
  const v1 = express.Router();
  const auth = express.Router();
  auth.post('/login', h('deepLogin', 401) as never);
  auth.get('/ws', h('deepWs', 403) as never);
  v1.use('/auth', auth);
  api.use('/v1', v1);
  app.use('/api', api);
  // A parameter mount.
  const tenant = express.Router({ mergeParams: true });
  tenant.post('/login', h('tenantLogin', 401) as never);
  tenant.get('/users/:id', h('tenantUser', 403) as never);
  app.use('/t/:tenant', tenant);
  // A router of its own case sensitivity and strictness.
  const cs = express.Router({ caseSensitive: true, strict: true });
  cs.post('/login', h('csLogin', 401) as never);
  app.use('/cs', cs);
  // Sub-apps: one that mounts the middleware too, one that does not.
  const sub = express();
  sub.use(jk);
  sub.post('/login', h('subLogin', 401) as never);
  sub.get('/ws', h('subWs', 403) as never);
  app.use('/sub', sub);
  const bare = express();
  bare.post('/login', h('bareLogin', 401) as never);
  bare.get('/ws', h('bareWs', 403) as never);
  app.use('/bare', bare);
  // Wildcards, in each version's syntax.
  app.get(v5 ? '/files/*rest' : '/files/*', h('files', 403) as never);
  app.get('/range/:from-:to', h('range', 403) as never);
  // A catch-all page: a real route that is no jail's, reached by spellings of jail paths.
  app.get('/:page', h('page', 200) as never);

  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return running(server, probe, async () => undefined);
}

function running(server: Server, probe: Probe, stop: () => Promise<void>): RunningApp {
  return {
    port: (server.address() as { port: number }).port,
    probe,
    async close() {
      server.closeAllConnections();
      await stop();
      if (server.listening) await new Promise((resolve) => server.close(resolve));
    },
  };
}

export interface FastifySettings {
  readonly relaxed?: boolean;
}

type Reply = { code(status: number): Reply; header(name: string, value: string): Reply };
type FReq = { method: string; headers: Record<string, string | string[] | undefined> };
type Instance = {
  get(path: string, ...rest: unknown[]): unknown;
  post(path: string, ...rest: unknown[]): unknown;
  put(path: string, ...rest: unknown[]): unknown;
  all(path: string, ...rest: unknown[]): unknown;
  register(plugin: unknown, options?: unknown): unknown;
};

/**
 * A Fastify app (4 or 5) with every shape: routes declared before the plugin (at the root and in
 * a plugin registered first), the plugin registered without `await`, routes after it, prefixes
 * nested three deep, a parameter prefix, an encapsulated plugin. `relaxed`: case-insensitive,
 * trailing and duplicate slashes ignored (Fastify 5 takes them in `routerOptions`, Fastify 4 at the
 * top level).
 */
export async function startFastify(
  name: FrameworkName,
  keeper: Jailkeeper,
  settings: FastifySettings,
): Promise<RunningApp> {
  const fastify = (name === 'fastify 4' ? fastify4 : fastify5) as typeof fastify5;
  const router = { caseSensitive: false, ignoreTrailingSlash: true, ignoreDuplicateSlashes: true };
  const options = !settings.relaxed ? {} : name === 'fastify 5' ? { routerOptions: router } : router;
  const app = fastify(options as never) as unknown as Instance & ReturnType<typeof fastify5>;
  const probe = new Probe();
  const h = (label: string, status: number) => async (req: FReq, reply: Reply) => {
    probe.hit(label, req.method);
    reply.code(status);
    return label;
  };
  const off = { config: { jailkeeper: false } };

  // Declared before the plugin: at the root, and in a plugin registered first.
  app.get('/early', off, h('early', 403));
  app.post('/early-login', h('earlyLogin', 401));
  app.register(async (p: Instance) => {
    p.post('/plugin-early/login', h('pluginEarlyLogin', 401));
  });
  // Registered without await: the routes below are declared while it is still pending.
  app.register(jailkeeperPlugin as never, { keeper } as never);

  app.post('/login', async (req: FReq, reply: Reply) => {
    const ok = req.headers.authorization === 'secret';
    probe.hit(ok ? 'login:ok' : 'login', req.method);
    reply.code(ok ? 200 : 401);
    return 'login';
  });
  app.get('/login', h('loginPage', 200));
  app.get('/me', h('me', 401));
  app.put('/users/:id/password', h('password', 401));
  app.post('/users/:id/password', h('passwordPost', 401));
  app.all('/any', h('any', 401));
  app.get('/admin', h('admin', 403));
  app.get('/mixed-case', h('mixedCase', 403));
  app.get('/rx/:id(^\\d+)/login', h('rxLogin', 401));
  app.get('/ws', h('ws', 403));
  app.get('/ws/*', h('wsAny', 403));
  app.get('/exempt', off, h('exemptRoute', 403));
  app.get('/only-login', { config: { jailkeeper: { jails: ['login'] } } }, h('onlyLogin', 403));
  app.get('/files/*', h('files', 403));
  app.get('/range/:from-:to', h('range', 403));
  app.get('/:page', h('page', 200));
  // Prefixes nested three deep.
  app.register(
    async (api: Instance) => {
      api.register(
        async (v1: Instance) => {
          v1.register(
            async (auth: Instance) => {
              auth.post('/login', h('deepLogin', 401));
              auth.get('/ws', h('deepWs', 403));
            },
            { prefix: '/auth' },
          );
        },
        { prefix: '/v1' },
      );
    },
    { prefix: '/api' },
  );
  // A parameter prefix.
  app.register(
    async (t: Instance) => {
      t.post('/login', h('tenantLogin', 401));
      t.get('/users/:id', h('tenantUser', 403));
    },
    { prefix: '/t/:tenant' },
  );
  // An encapsulated plugin without a prefix, with a hook of its own.
  app.register(async (p: Instance & { addHook: Function }) => {
    p.addHook('onRequest', async () => undefined);
    p.post('/enc/login', h('encLogin', 401));
    p.get('/enc/ws', off, h('encWs', 403));
    p.get('/enc/admin', h('encAdmin', 403));
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return running(app.server, probe, () => app.close());
}
