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
});
