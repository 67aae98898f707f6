/**
 * Express: an attempt that holds a slot settles at the status its answer writes (the attempt's
 * hook on the response's `writeHead`), in the app shapes where a hook could miss it: Express 4
 * and 5, another module that wraps `res.writeHead` on each response before the middleware, the
 * middleware mounted only in a sub-app, an app handed to a router's `use`, two apps in one
 * process. Each case leaves two 401 streams open (their status written, their bodies never ended)
 * and asks whether they still hold their slots: settled at close, a client's open streams would
 * hold its budget until it gave up (the lock-out of an owner behind her own event streams), and
 * their failures would count only then.
 *
 * Then an app that replaces `res.locals` (after the middleware, or before it with one object
 * shared by every request): the request's state kept there is gone or another request's, and the
 * routes find it from the response itself. Before that, its routes took no slot (10 parallel
 * guesses at maxRetry 3 ran 10 times), `jk.exempt()` counted the exempt route's 403s, and a
 * shared object gave the second client a 500. With it: a module that wraps the response's
 * listeners (OpenTelemetry), `res.locals` that cannot take the state (frozen, null, Proxies).
 *
 * Then throws after an asynchronous admission (they ended the process), and requests the app
 * dispatches again through itself (an SPA fallback, an exempt route dispatching to the login),
 * exempt routes that pass the request on, and second mounts, which are still refused.
 * (docs/security.md, "An app that replaces `res.locals`".)
 */
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { describe, it } from 'node:test';
import { createJailkeeper, type Jailkeeper } from '@jailkeeper/core';
import { quietLogger } from '@jailkeeper/core/testing';
import { jailkeeper } from '@jailkeeper/express';
import express from 'express';
import express4 from 'express4';

type AnyApp = ReturnType<typeof express> | ReturnType<typeof express4>;
type Handler = (
  req: unknown,
  res: { writeHead(status: number, headers?: object): unknown; write(s: string): unknown },
) => void;

const keeperFor = (path: string): Jailkeeper =>
  createJailkeeper({
    logger: quietLogger,
    jails: { login: { statuses: [401], paths: [path], methods: ['POST'], maxRetry: 5 } },
  });

/** A login that writes 401 and streams on, never ending its body. */
const streamed401: Handler = (_req, res) => {
  res.writeHead(401, { 'content-type': 'text/plain' });
  res.write('wrong password, and more to come\n');
};

/** Opens `n` POSTs to `path`; resolves with their responses once every status has arrived. */
async function openStreams(server: Server, path: string, n: number): Promise<IncomingMessage[]> {
  const { port } = server.address() as AddressInfo;
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<IncomingMessage>((resolve, reject) => {
          const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path, agent: false });
          req.on('response', resolve);
          req.on('error', reject);
          req.end();
        }),
    ),
  );
}

async function settledWhileOpen(app: AnyApp, keeper: Jailkeeper, path: string, warm = 0): Promise<void> {
  const server = (app as unknown as { listen(port: number, host: string): Server }).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  let failures = 0;
  keeper.on('failure', () => failures++);
  try {
    for (const r of await openStreams(server, path, warm)) r.destroy();
    if (warm > 0) await keeper.idle();
    failures = 0;
    const responses = await openStreams(server, path, 2);
    assert.deepEqual(
      responses.map((r) => r.statusCode),
      [401, 401],
    );
    const held = () => keeper.attempts().held.login ?? 0;
    const deadline = Date.now() + 1000;
    while ((held() > 0 || failures < 2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.ok(
      responses.every((r) => !r.complete && !r.destroyed),
      'the streams are still open',
    );
    assert.equal(held(), 0, 'two 401s written, bodies still streaming: no slot held');
    assert.equal(failures, 2, 'and both counted');
    for (const r of responses) r.destroy();
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await keeper.close();
  }
}

describe('Express: an app that replaces res.locals', () => {
  // The request's state lives in res.locals: replaced before the route, the route took no slot
  // and 10 parallel guesses at maxRetry 3 all ran the handler (10 runs, measured 2026-12-07).
  for (const when of ['on the first request', 'after the first request']) {
    it(`10 parallel guesses at maxRetry 3 run the handler 3 times (${when})`, async () => {
      const keeper = createJailkeeper({
        logger: quietLogger,
        jails: { login: { statuses: [401], paths: ['/login'], methods: ['POST'], maxRetry: 3 } },
      });
      const app = express();
      app.use(jailkeeper(keeper));
      // one object for every request, as an app's defaults may be: never written to
      const shared = { user: 'anonymous' };
      let seen = 0;
      app.use((_req, res, next) => {
        res.locals = shared;
        next();
      });
      app.use((_req, res, next) => {
        if (res.locals === shared) seen++;
        next();
      });
      let runs = 0;
      app.get('/', (_req, res) => {
        res.send(String(res.locals.user));
      });
      app.post('/login', (_req, res) => {
        runs++;
        setTimeout(() => res.status(401).send('no'), 30);
      });
      const server = app.listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      const { port } = server.address() as AddressInfo;
      const send = (method: string, path: string) =>
        new Promise<number | 'cut'>((resolve) => {
          const req = httpRequest({ host: '127.0.0.1', port, method, path, agent: false }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('error', () => resolve('cut')); // the ban closes the client's connections
          req.end();
        });
      try {
        if (when === 'after the first request') assert.equal(await send('GET', '/'), 200);
        const statuses = await Promise.all(Array.from({ length: 10 }, () => send('POST', '/login')));
        assert.equal(runs, 3, statuses.join(' '));
        assert.ok(keeper.check('127.0.0.1').banned);
        assert.ok(seen >= 3, 'the app reads back the object it assigned');
        assert.deepEqual(Object.getOwnPropertySymbols(shared), [], "the app's object is not written to");
      } finally {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
        await keeper.close();
      }
    });
  }
});

/** An app whose middleware after jailkeeper's replaces `res.locals` (or before it, `before`). */
function replacingApp(keeper: Jailkeeper, before = false) {
  const app = express();
  const shared = { user: 'anonymous' };
  const replace = (_req: unknown, res: { locals: object }, next: () => void) => {
    res.locals = shared;
    next();
  };
  if (before) app.use(replace as never);
  const jk = jailkeeper(keeper);
  app.use(jk);
  if (!before) app.use(replace as never);
  return { app, jk, shared };
}

async function listening(app: ReturnType<typeof express>): Promise<{ server: Server; port: number }> {
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

/** One request from `from`; its status, or 'cut' when the connection was closed (a ban). */
function send(port: number, method: string, path: string, from = '127.0.0.1'): Promise<number | 'cut'> {
  return new Promise((resolve) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, method, path, agent: false, localAddress: from },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve('cut'));
    req.end();
  });
}

/** An app's error handler: answers the error's status (500 without one) with `body`, after `seen`. */
function answersErrors(body: string, seen?: (error: { status?: number; code?: string }) => void) {
  return (
    error: { status?: number; code?: string },
    _req: unknown,
    res: { status(n: number): { send(s: string): void } },
    _next: unknown,
  ) => {
    seen?.(error);
    res.status(error.status ?? 500).send(body);
  };
}

async function closeAll(server: Server, keeper: Jailkeeper): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await keeper.close();
}

const loginJail = (maxRetry: number, path = '/login') => ({
  statuses: [401],
  paths: [path],
  methods: ['POST'],
  maxRetry,
});

describe('Express: res.locals replaced, the other ways in', () => {
  it('one object assigned before the middleware, shared by every request: two clients held at 3 each, no 500', async () => {
    const keeper = createJailkeeper({ logger: quietLogger, jails: { login: loginJail(3) } });
    const { app } = replacingApp(keeper, true);
    const runs = new Map<string, number>();
    app.post('/login', (req, res) => {
      const ip = req.socket.remoteAddress ?? '';
      runs.set(ip, (runs.get(ip) ?? 0) + 1);
      setTimeout(() => res.status(401).send('no'), 30);
    });
    const { server, port } = await listening(app);
    try {
      const statuses = await Promise.all(
        ['127.0.0.2', '127.0.0.3'].flatMap((from) =>
          Array.from({ length: 10 }, () => send(port, 'POST', '/login', from)),
        ),
      );
      assert.ok(!statuses.includes(500), statuses.join(' '));
      assert.deepEqual(Object.fromEntries(runs), { '127.0.0.2': 3, '127.0.0.3': 3 });
      assert.ok(keeper.check('127.0.0.2').banned && keeper.check('127.0.0.3').banned);
    } finally {
      await closeAll(server, keeper);
    }
  });

  it('10 guesses pipelined in one write: the handler runs 3 times', async () => {
    const keeper = createJailkeeper({ logger: quietLogger, jails: { login: loginJail(3) } });
    const { app } = replacingApp(keeper);
    let runs = 0;
    app.post('/login', (_req, res) => {
      runs++;
      setTimeout(() => res.status(401).send('no'), 10);
    });
    const { server, port } = await listening(app);
    try {
      let payload = '';
      for (let i = 0; i < 10; i++) payload += 'POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n';
      await new Promise<void>((resolve) => {
        const socket = connect({ host: '127.0.0.1', port }, () => socket.write(payload));
        socket.resume();
        socket.on('close', () => resolve());
        socket.on('error', () => resolve());
        socket.setTimeout(5000, () => socket.destroy());
      });
      await keeper.idle();
      assert.equal(runs, 3);
      assert.ok(keeper.check('127.0.0.1').banned);
    } finally {
      await closeAll(server, keeper);
    }
  });

  it('jk.exempt() after the replacement: 10 403s on /ws ban nobody; the same 403s elsewhere do', async () => {
    const keeper = createJailkeeper({
      logger: quietLogger,
      jails: { forbidden: { statuses: [403], maxRetry: 5 } },
    });
    const { app, jk } = replacingApp(keeper);
    app.get('/ws', jk.exempt(), (_req, res) => {
      res.status(403).send('upgrade required');
    });
    app.get('/admin', (_req, res) => {
      res.status(403).send('no');
    });
    const { server, port } = await listening(app);
    try {
      for (let i = 0; i < 10; i++) assert.equal(await send(port, 'GET', '/ws', '127.0.0.4'), 403);
      await keeper.idle();
      assert.equal(keeper.check('127.0.0.4').banned, false, 'the exempt route counted nothing');
      for (let i = 0; i < 5; i++) await send(port, 'GET', '/admin', '127.0.0.5');
      await keeper.idle();
      assert.ok(keeper.check('127.0.0.5').banned, 'the same 403s on a route that counts ban');
    } finally {
      await closeAll(server, keeper);
    }
  });

  it('jk.fail(), jk.client() and jk.account() after the replacement', async () => {
    const keeper = createJailkeeper({
      logger: quietLogger,
      jails: {
        graphql: { paths: ['/graphql'], maxRetry: 3 },
        user: { key: 'account', statuses: [401], paths: ['/login'], maxRetry: 2 },
      },
    });
    const { app, jk } = replacingApp(keeper);
    const seen: unknown[] = [];
    app.post('/graphql', (req, res) => {
      seen.push(jk.client(req)?.ip);
      assert.equal(jk.fail(req), true);
      res.json({ errors: [{ message: 'no' }] });
    });
    app.post('/login', async (req, res) => {
      if (!(await jk.account(req, 'alice'))) return;
      res.status(401).send('no');
    });
    const { server, port } = await listening(app);
    try {
      for (let i = 0; i < 3; i++) await send(port, 'POST', '/graphql', '127.0.0.6');
      await keeper.idle();
      assert.deepEqual(seen, ['127.0.0.6', '127.0.0.6', '127.0.0.6']);
      assert.ok(keeper.check('127.0.0.6').banned, 'three failures the app marked: banned');
      assert.deepEqual(
        [await send(port, 'POST', '/login', '127.0.0.7'), await send(port, 'POST', '/login', '127.0.0.8')],
        [401, 401],
      );
      await keeper.idle();
      assert.notEqual(await send(port, 'POST', '/login', '127.0.0.9'), 401, 'the account is banned');
    } finally {
      await closeAll(server, keeper);
    }
  });

  it("a module that wraps the response's listeners as they are added (OpenTelemetry's context binding), and the replacement: 3 runs", async () => {
    const keeper = createJailkeeper({ logger: quietLogger, jails: { login: loginJail(3) } });
    const app = express();
    // what OpenTelemetry's context manager does to each response (context.bind(ctx, res))
    app.use((_req, res, next) => {
      for (const method of ['on', 'addListener', 'once', 'prependListener'] as const) {
        const original = res[method] as (event: string, fn: Function) => typeof res;
        (res as unknown as Record<string, unknown>)[method] = function (
          this: typeof res,
          event: string,
          fn: Function,
        ) {
          return original.call(this, event, function contextWrapper(this: unknown, ...args: unknown[]) {
            return fn.apply(this, args);
          });
        };
      }
      next();
    });
    const jk = jailkeeper(keeper);
    app.use(jk);
    app.use((_req, res, next) => {
      res.locals = { user: 'anonymous' };
      next();
    });
    let runs = 0;
    app.post('/login', (_req, res) => {
      runs++;
      setTimeout(() => res.status(401).send('no'), 30);
    });
    app.get('/ws', jk.exempt(), (_req, res) => {
      res.status(401).send('no');
    });
    const { server, port } = await listening(app);
    try {
      await Promise.all(Array.from({ length: 10 }, () => send(port, 'POST', '/login')));
      assert.equal(runs, 3);
      assert.ok(keeper.check('127.0.0.1').banned);
      for (let i = 0; i < 5; i++) await send(port, 'GET', '/ws', '127.0.0.11');
      await keeper.idle();
      assert.equal(keeper.check('127.0.0.11').banned, false, 'the exempt route counted nothing');
    } finally {
      await closeAll(server, keeper);
    }
  });

  it('res.locals that cannot take the state (frozen, null, a Proxy answering null) before or after the middleware: no 500, no crash, held', async () => {
    const shapes: Array<[string, () => unknown, boolean]> = [
      ['frozen, before', () => Object.freeze({ title: 'page' }), true],
      ['null, before', () => null, true],
      [
        'a Proxy answering null, after',
        () => new Proxy({}, { get: (t, k) => (k in t ? Reflect.get(t, k) : null) }),
        false,
      ],
      [
        'a Proxy that throws for names it lacks, after',
        () =>
          new Proxy({} as Record<PropertyKey, unknown>, {
            get: (t, k) => {
              if (typeof k === 'symbol' || k in t) return t[k];
              throw new Error(`no ${String(k)}`);
            },
          }),
        false,
      ],
    ];
    for (const [name, locals, before] of shapes) {
      const keeper = createJailkeeper({
        logger: quietLogger,
        // an app-wide jail: a client with a failure there is admitted asynchronously, where a
        // throw of the middleware was an unhandled rejection that ended the process
        jails: { login: loginJail(3), notfound: { statuses: [404], maxRetry: 20 } },
      });
      const app = express();
      const replace = (_req: unknown, res: { locals: unknown }, next: () => void) => {
        res.locals = locals();
        next();
      };
      if (before) app.use(replace as never);
      app.use(jailkeeper(keeper));
      if (!before) app.use(replace as never);
      let runs = 0;
      app.get('/page', (_req, res) => {
        res.send('page');
      });
      app.post('/login', (_req, res) => {
        runs++;
        setTimeout(() => res.status(401).send('no'), 30);
      });
      const { server, port } = await listening(app);
      try {
        assert.equal(await send(port, 'GET', '/page', '127.0.0.12'), 200, name);
        assert.equal(await send(port, 'GET', '/nope', '127.0.0.13'), 404, name);
        await keeper.idle();
        assert.equal(
          await send(port, 'GET', '/page', '127.0.0.13'),
          200,
          `${name}: after a failure app-wide`,
        );
        const statuses = await Promise.all(
          Array.from({ length: 10 }, () => send(port, 'POST', '/login', '127.0.0.14')),
        );
        assert.ok(!statuses.includes(500), `${name}: ${statuses.join(' ')}`);
        assert.equal(runs, 3, name);
      } finally {
        await closeAll(server, keeper);
      }
    }
  });

  it('a request dispatched again through the app (an SPA fallback, app.handle), with and without the replacement: 200, and still held', async () => {
    for (const replaced of [false, true]) {
      const keeper = createJailkeeper({ logger: quietLogger, jails: { login: loginJail(3, '/api/login') } });
      const app = express();
      app.use(jailkeeper(keeper));
      if (replaced)
        app.use((_req, res, next) => {
          res.locals = { user: 'anonymous' };
          next();
        });
      let runs = 0;
      app.post('/api/login', (_req, res) => {
        runs++;
        setTimeout(() => res.status(401).send('no'), 30);
      });
      app.get('/index.html', (_req, res) => {
        res.send('spa');
      });
      app.use((req, res, next) => {
        if (req.method !== 'GET' || req.url === '/index.html') return next();
        req.url = '/index.html';
        (app as unknown as { handle: Function }).handle(req, res, next);
      });
      const { server, port } = await listening(app);
      try {
        assert.equal(await send(port, 'GET', '/some/page'), 200, `replaced: ${replaced}`);
        await Promise.all(Array.from({ length: 10 }, () => send(port, 'POST', '/api/login')));
        assert.equal(runs, 3, `replaced: ${replaced}`);
      } finally {
        await closeAll(server, keeper);
      }
    }
  });

  it('a request dispatched again after its client left, with the replacement: its failure counted once, not twice', async () => {
    // An app-wide jail: a client with failures in it takes a slot there for every request.
    const keeper = createJailkeeper({
      logger: quietLogger,
      jails: { notfound: { statuses: [404], maxRetry: 10 } },
    });
    const app = express();
    app.use(jailkeeper(keeper));
    app.use((_req, res, next) => {
      res.locals = { user: 'anonymous' };
      next();
    });
    app.use((_req, _res, next) => setTimeout(next, 150)); // a slow middleware: the client leaves meanwhile
    app.get('/index.html', (_req, res) => {
      res.send('spa');
    });
    app.use((req, res, next) => {
      if (req.method !== 'GET' || req.url === '/index.html') return next();
      req.url = '/index.html';
      (app as unknown as { handle: Function }).handle(req, res, next);
    });
    const { server, port } = await listening(app);
    let failures = 0;
    try {
      assert.equal(await send(port, 'POST', '/nope'), 404);
      await keeper.idle();
      keeper.on('failure', () => failures++);
      const left = httpRequest({ host: '127.0.0.1', port, method: 'GET', path: '/some/page', agent: false });
      left.on('error', () => {});
      left.end();
      await new Promise((resolve) => setTimeout(resolve, 50));
      left.destroy();
      await new Promise((resolve) => setTimeout(resolve, 300));
      await keeper.idle();
      assert.equal(failures, 1, 'the abandoned request is one failure');
    } finally {
      await closeAll(server, keeper);
    }
  });

  it('the middleware mounted again in a sub-app after the replacement: one attempt per request', async () => {
    const keeper = createJailkeeper({ logger: quietLogger, jails: { login: loginJail(5, '/api/login') } });
    const { app, jk } = replacingApp(keeper);
    const sub = express();
    sub.use(jk);
    sub.post('/login', (_req, res) => {
      res.status(401).send('no');
    });
    app.use('/api', sub);
    let failures = 0;
    keeper.on('failure', () => failures++);
    const { server, port } = await listening(app);
    try {
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push(await send(port, 'POST', '/api/login', '127.0.0.10'));
      await keeper.idle();
      assert.deepEqual(statuses, [401, 401, 401, 401]);
      assert.equal(failures, 4, 'each failed login counted once');
      assert.equal(keeper.check('127.0.0.10').banned, false, '4 of maxRetry 5: not banned');
    } finally {
      await closeAll(server, keeper);
    }
  });
});

describe('Express: a throw after an asynchronous admission', () => {
  // A login whose body is still arriving is admitted when it has arrived (a slow body holds no
  // slot), so its handler runs in a promise's continuation: a handler mounted with app.use that
  // threw there was an unhandled rejection, and the process ended (found 2026-12-07).
  for (const shape of ['app.use(path, fn)', 'app.post(path, fn)']) {
    it(`${shape} that throws after a slow body: the app's error handler answers, the process lives`, async () => {
      const keeper = createJailkeeper({ logger: quietLogger, jails: { login: loginJail(3) } });
      const app = express();
      app.use(jailkeeper(keeper));
      const thrower = () => {
        throw new Error('a bug in the app');
      };
      if (shape === 'app.use(path, fn)') app.use('/login', thrower);
      else app.post('/login', thrower);
      app.use(answersErrors('handled'));
      const { server, port } = await listening(app);
      try {
        const answer = await new Promise<string>((resolve) => {
          const req = httpRequest(
            {
              host: '127.0.0.1',
              port,
              method: 'POST',
              path: '/login',
              agent: false,
              headers: { 'content-type': 'text/plain', 'content-length': 5 },
            },
            (res) => {
              let body = '';
              res.on('data', (chunk) => {
                body += chunk;
              });
              res.on('end', () => resolve(`${res.statusCode} ${body}`));
            },
          );
          req.on('error', (error) => resolve(`error ${error.message}`));
          req.write('ab');
          setTimeout(() => req.end('cde'), 30);
        });
        assert.equal(answer, '500 handled');
      } finally {
        await closeAll(server, keeper);
      }
    });
  }
});

describe('Express: a request dispatched again through the app, and second mounts', () => {
  it('an exempt route that dispatches to the login: its failures count, 3 runs', async () => {
    const keeper = createJailkeeper({ logger: quietLogger, jails: { login: loginJail(3) } });
    const jk = jailkeeper(keeper);
    const app = express();
    app.use(jk);
    let runs = 0;
    app.post('/login', (_req, res) => {
      runs++;
      setTimeout(() => res.status(401).send('no'), 30);
    });
    app.post('/ws', jk.exempt(), (req, res, next) => {
      req.url = '/login';
      (app as unknown as { handle: Function }).handle(req, res, next);
    });
    const { server, port } = await listening(app);
    try {
      await Promise.all(Array.from({ length: 10 }, () => send(port, 'POST', '/ws')));
      await keeper.idle();
      assert.equal(runs, 3);
      assert.ok(keeper.check('127.0.0.1').banned);
    } finally {
      await closeAll(server, keeper);
    }
  });

  it('an exempt route that dispatches again and answers itself when nothing matched: its 404s count nowhere', async () => {
    const keeper = createJailkeeper({
      logger: quietLogger,
      jails: { login: loginJail(3), scan: { statuses: [404], maxRetry: 3 } },
    });
    const jk = jailkeeper(keeper);
    const app = express();
    app.use(jk);
    app.get('/files/*splat', jk.exempt(), (req, res) => {
      req.url = `/static${req.url}`;
      (app as unknown as { handle: Function }).handle(req, res, () => res.status(404).send('no such file'));
    });
    app.get('/static/known', (_req, res) => {
      res.send('ok');
    });
    const { server, port } = await listening(app);
    try {
      const statuses = [];
      for (let i = 0; i < 6; i++) statuses.push(await send(port, 'GET', '/files/missing', '127.0.0.15'));
      await keeper.idle();
      assert.deepEqual(statuses, [404, 404, 404, 404, 404, 404]);
      assert.equal(keeper.check('127.0.0.15').banned, false);
      // the same 404s outside the exempt route ban
      for (let i = 0; i < 3; i++) await send(port, 'GET', '/nothing', '127.0.0.16');
      await keeper.idle();
      assert.ok(keeper.check('127.0.0.16').banned);
    } finally {
      await closeAll(server, keeper);
    }
  });

  it('an exempt route whose error handler answers for it (next(error), an async throw): still exempt', async () => {
    const keeper = createJailkeeper({
      logger: quietLogger,
      jails: { forbidden: { statuses: [403], maxRetry: 3 } },
    });
    const jk = jailkeeper(keeper);
    const app = express();
    app.use(jk);
    const forbidden = () => Object.assign(new Error('upgrade required'), { status: 403 });
    app.get('/ws', jk.exempt(), (_req, _res, next) => next(forbidden()));
    app.get('/ws2', jk.exempt(), async () => {
      throw forbidden();
    });
    app.get('/admin', (_req, _res, next) => next(forbidden()));
    app.use(answersErrors('no'));
    const { server, port } = await listening(app);
    try {
      for (let i = 0; i < 5; i++) {
        assert.equal(await send(port, 'GET', '/ws', '127.0.0.19'), 403);
        assert.equal(await send(port, 'GET', '/ws2', '127.0.0.19'), 403);
      }
      await keeper.idle();
      assert.equal(keeper.check('127.0.0.19').banned, false, 'ten 403s of exempt routes: no ban');
      for (let i = 0; i < 3; i++) await send(port, 'GET', '/admin', '127.0.0.20');
      await keeper.idle();
      assert.ok(keeper.check('127.0.0.20').banned, 'the same 403s from a route that counts ban');
    } finally {
      await closeAll(server, keeper);
    }
  });

  it('an exempt route that passes the request on (next()) to the login: the login counts, 3 runs', async () => {
    const keeper = createJailkeeper({ logger: quietLogger, jails: { login: loginJail(3) } });
    const jk = jailkeeper(keeper);
    const app = express();
    app.use(jk);
    app.post('/signin', jk.exempt(), (req, _res, next) => {
      req.url = '/login';
      next();
    });
    app.post('/:page', jk.exempt(), (_req, _res, next) => {
      next();
    });
    let runs = 0;
    app.post('/login', (_req, res) => {
      runs++;
      setTimeout(() => res.status(401).send('no'), 30);
    });
    const { server, port } = await listening(app);
    try {
      await Promise.all(Array.from({ length: 10 }, () => send(port, 'POST', '/signin', '127.0.0.17')));
      await Promise.all(Array.from({ length: 10 }, () => send(port, 'POST', '/login', '127.0.0.18')));
      await keeper.idle();
      assert.equal(runs, 6, 'three for each client');
      assert.ok(keeper.check('127.0.0.17').banned && keeper.check('127.0.0.18').banned);
    } finally {
      await closeAll(server, keeper);
    }
  });

  for (const shape of [
    'on the route (app.post(path, jk2, h))',
    'inside a function (app.use((q, s, n) => jk2(q, s, n)))',
  ]) {
    it(`a second jailkeeper ${shape}: refused with JK_ERR_REGISTERED_TWICE, the handler never run`, async () => {
      const k1 = createJailkeeper({
        logger: quietLogger,
        jails: { other: { statuses: [404], paths: ['/nothing'] } },
      });
      const k2 = createJailkeeper({ logger: quietLogger, jails: { login: loginJail(3) } });
      const app = express();
      app.use(jailkeeper(k1));
      const jk2 = jailkeeper(k2);
      let runs = 0;
      const login = (_req: unknown, res: { status(n: number): { send(s: string): void } }) => {
        runs++;
        res.status(401).send('no');
      };
      if (shape.startsWith('on the route')) app.post('/login', jk2, login as never);
      else {
        app.use((req, res, next) => jk2(req, res, next));
        app.post('/login', login as never);
      }
      const codes: unknown[] = [];
      app.use(answersErrors('error', (error) => codes.push(error.code)));
      const { server, port } = await listening(app);
      try {
        assert.equal(await send(port, 'POST', '/login'), 500);
        assert.equal(runs, 0);
        assert.deepEqual(codes, ['JK_ERR_REGISTERED_TWICE']);
      } finally {
        await closeAll(server, k1);
        await k2.close();
      }
    });
  }

  it('the same middleware on the app and again on a route: refused', async () => {
    const keeper = createJailkeeper({ logger: quietLogger, jails: { login: loginJail(3) } });
    const jk = jailkeeper(keeper);
    const app = express();
    app.use(jk);
    let runs = 0;
    app.post('/login', jk, (_req, res) => {
      runs++;
      res.status(401).send('no');
    });
    app.use(answersErrors('error'));
    const { server, port } = await listening(app);
    try {
      assert.equal(await send(port, 'POST', '/login'), 500);
      assert.equal(runs, 0);
    } finally {
      await closeAll(server, keeper);
    }
  });

  it('Express 5: an async handler mounted with app.use that rejects reaches the error handler, once', async () => {
    const keeper = createJailkeeper({ logger: quietLogger, jails: { login: loginJail(3) } });
    const app = express();
    app.use(jailkeeper(keeper));
    app.use('/login', async () => {
      throw new Error('a bug in the app');
    });
    let handled = 0;
    app.use(
      answersErrors('handled', () => {
        handled++;
      }),
    );
    const { server, port } = await listening(app);
    try {
      assert.equal(await send(port, 'POST', '/login'), 500);
      assert.equal(handled, 1);
    } finally {
      await closeAll(server, keeper);
    }
  });
});

describe('Express: an answer settles at its status', () => {
  it('Express 5: two open 401 streams hold no slot', async () => {
    const keeper = keeperFor('/login');
    const app = express();
    app.use(jailkeeper(keeper));
    let ownHooks = 0;
    app.post('/login', (req, res) => {
      if (Object.hasOwn(res, 'writeHead')) ownHooks++;
      streamed401(req, res);
    });
    await settledWhileOpen(app, keeper, '/login');
    assert.equal(ownHooks, 2, "the attempt's own hook on each admitted response");
  });

  it('Express 4: the same', async () => {
    const keeper = keeperFor('/login');
    const app = express4();
    app.use(jailkeeper(keeper));
    app.post('/login', streamed401 as never);
    await settledWhileOpen(app, keeper, '/login');
  });

  it("a module that wraps each response's writeHead before the middleware: still settled at the status", async () => {
    const keeper = keeperFor('/login');
    const app = express();
    let wrapped = 0;
    // as on-headers (compression, morgan, express-session) does, mounted before jailkeeper
    app.use((_req, res, next) => {
      const previous = res.writeHead;
      res.writeHead = function (this: typeof res, ...args: unknown[]) {
        wrapped++;
        return (previous as (...a: unknown[]) => typeof res).apply(this, args);
      } as typeof res.writeHead;
      next();
    });
    app.use(jailkeeper(keeper));
    app.post('/login', streamed401 as never);
    await settledWhileOpen(app, keeper, '/login');
    assert.equal(wrapped, 2);
  });

  it('the middleware mounted only in a sub-app: the same', async () => {
    // The middleware's app is the sub-app: routes are read as the sub-app declares them.
    const keeper = keeperFor('/login');
    const parent = express();
    const sub = express();
    sub.use(jailkeeper(keeper));
    sub.post('/login', streamed401 as never);
    parent.use('/api', sub);
    await settledWhileOpen(parent, keeper, '/api/login');
  });

  it("an app handed to a router's use: the same", async () => {
    const keeper = keeperFor('/r/sub/login');
    const app = express();
    const router = express.Router();
    const sub = express();
    app.use(jailkeeper(keeper));
    sub.use(jailkeeper(keeper));
    sub.post('/login', streamed401 as never);
    router.use('/sub', sub);
    app.use('/r', router);
    // the first request through a sub-app the middleware has not learned takes no slot
    await settledWhileOpen(app, keeper, '/r/sub/login', 1);
  });

  it('two apps with a middleware and a keeper each: each settles its own attempts', async () => {
    const first = keeperFor('/login');
    const second = keeperFor('/login');
    const a = express();
    const b = express();
    a.use(jailkeeper(first));
    b.use(jailkeeper(second));
    a.post('/login', streamed401 as never);
    b.post('/login', streamed401 as never);
    await settledWhileOpen(a, first, '/login');
    await settledWhileOpen(b, second, '/login');
  });
});
