import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getRequestListener } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { createJailkeeper, type FailureEvent, type JailkeeperError } from '@jailkeeper/core';
import { quietLogger } from '@jailkeeper/core/testing';
import { Hono } from 'hono';
import inject from 'light-my-request';
import { type JailkeeperEnv, jailkeeper } from '../src/index.js';

function setup() {
  const keeper = createJailkeeper({
    jails: {
      login: { statuses: [401], paths: ['/login'], maxRetry: 2 },
      scan: { statuses: [404], maxRetry: 100 },
    },
    logger: quietLogger,
  });
  const failures: FailureEvent[] = [];
  keeper.on('failure', (f) => failures.push(f));
  return { keeper, failures };
}

describe('@jailkeeper/hono', () => {
  it('options are checked when the middleware is made', () => {
    const { keeper } = setup();
    assert.throws(
      () => jailkeeper(keeper, { blok: 'drop' } as never),
      (e: JailkeeperError) => e.code === 'JK_ERR_UNKNOWN_OPTION',
    );
    assert.throws(
      () => jailkeeper(keeper, { block: 'kick' as never }),
      (e: JailkeeperError) => e.code === 'JK_ERR_INVALID_OPTION',
    );
    assert.throws(
      () => jailkeeper(keeper).route({ jails: ['nope'] }),
      (e: JailkeeperError) => e.code === 'JK_ERR_UNKNOWN_JAIL',
    );
    void keeper.close();
  });

  it('counts under the route Hono answers from; a request no route matched is unrouted', async () => {
    const { keeper, failures } = setup();
    const jk = jailkeeper(keeper);
    const app = new Hono<JailkeeperEnv>();
    app.use(jk);
    app.use('/users/*', async (_c, next) => next()); // middleware on the way is not the route
    app.get('/users/:id', (c) => c.text('none', 404));
    app.post('/login', (c) => c.text('no', 401));
    const listener = getRequestListener(app.fetch) as never;
    await inject(listener, { url: '/users/7', remoteAddress: '198.51.100.1' });
    await inject(listener, { url: '/nothing/here', remoteAddress: '198.51.100.1' });
    await inject(listener, { method: 'POST', url: '/login?next=/', remoteAddress: '198.51.100.2' });
    await keeper.idle();
    assert.deepEqual(
      failures.map((f) => [f.jail, f.route, f.path]),
      [
        ['scan', '/users/:id', '/users/7'],
        ['scan', null, '/nothing/here'],
        ['login', '/login', '/login'],
      ],
    );
    await keeper.close();
  });

  it("an admitted attempt settles at the status its handler returned, without a hook on Node's response", async () => {
    // A property put on every admitted response made @hono/node-server's responses survive the
    // young generation (ten times the scavenges' time under failures); the handler's return is
    // the decision on Hono, so nothing is put there.
    const { keeper, failures } = setup();
    const jk = jailkeeper(keeper);
    const app = new Hono<JailkeeperEnv>();
    app.use(jk);
    const hooked: boolean[] = [];
    app.post('/login', (c) => {
      const outgoing = (c.env as unknown as { outgoing: object }).outgoing;
      hooked.push(Object.hasOwn(outgoing, 'writeHead'));
      return c.text('no', 401);
    });
    const listener = getRequestListener(app.fetch) as never;
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await inject(listener, { method: 'POST', url: '/login', remoteAddress: '198.51.100.9' });
      statuses.push(res.statusCode);
    }
    await keeper.idle();
    assert.deepEqual(statuses, [401, 401, 403], 'two 401s counted, the third refused');
    assert.deepEqual(hooked, [false, false], 'the handler ran twice, its response never hooked');
    assert.deepEqual(
      failures.map((f) => [f.jail, f.status]),
      [
        ['login', 401],
        ['login', 401],
      ],
    );
    assert.deepEqual(keeper.attempts().held, {}, 'no slot left held');
    await keeper.close();
  });

  it("a handler that answers through Node's response itself (RESPONSE_ALREADY_SENT) is counted at the status it wrote, then or later", async () => {
    const { keeper, failures } = setup();
    const jk = jailkeeper(keeper);
    const raw = (c: { env: unknown }) => (c.env as { outgoing: import('node:http').ServerResponse }).outgoing;
    const answer = (outgoing: import('node:http').ServerResponse) => {
      outgoing.writeHead(401, { 'content-type': 'text/plain' });
      outgoing.end('no');
    };
    const now = new Hono<JailkeeperEnv>();
    now.use(jk);
    now.post('/login', (c) => {
      answer(raw(c));
      return RESPONSE_ALREADY_SENT;
    });
    // Written after the handler returned: its status is not known at the return.
    const later = new Hono<JailkeeperEnv>();
    later.use(jk);
    later.post('/login', (c) => {
      const outgoing = raw(c);
      setTimeout(() => answer(outgoing), 20);
      return RESPONSE_ALREADY_SENT;
    });
    const listeners = {
      now: getRequestListener(now.fetch) as never,
      later: getRequestListener(later.fetch) as never,
    };
    const statuses: number[] = [];
    for (const [when, from] of [
      ['now', '198.51.100.10'],
      ['now', '198.51.100.10'],
      ['now', '198.51.100.10'],
      ['later', '198.51.100.11'],
      ['later', '198.51.100.11'],
      ['later', '198.51.100.11'],
    ] as const) {
      const res = await inject(listeners[when], { method: 'POST', url: '/login', remoteAddress: from });
      statuses.push(res.statusCode);
    }
    await keeper.idle();
    assert.deepEqual(statuses, [401, 401, 403, 401, 401, 403], 'each raw 401 counted; banned at the second');
    assert.deepEqual(
      failures.map((f) => [f.client, f.status]),
      [
        ['198.51.100.10', 401],
        ['198.51.100.10', 401],
        ['198.51.100.11', 401],
        ['198.51.100.11', 401],
      ],
    );
    assert.deepEqual(keeper.attempts().held, {}, 'no slot left held');
    await keeper.close();
  });
});
