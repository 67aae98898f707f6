import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getRequestListener } from '@hono/node-server';
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
});
