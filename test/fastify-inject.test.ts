import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createJailkeeper } from '@jailkeeper/core';
import { jailkeeperPlugin } from '@jailkeeper/fastify';
import Fastify from 'fastify';

// Apps test themselves with fastify.inject(), whose responses never report `writableFinished`.
// A client with a failure in an app-wide jail takes slots for its next requests; each must settle
// by its status, not as an abandoned attempt: its successes used to count, and it was banned.
describe('Fastify inject(): a response is judged by its status', () => {
  it('a client with one failure in an app-wide jail is not banned by its successes', async () => {
    const keeper = createJailkeeper({ jails: { scan: { statuses: [404], maxRetry: 3 } } });
    await keeper.ready;
    const app = Fastify();
    await app.register(jailkeeperPlugin, { keeper });
    let served = 0;
    app.get('/ok', async () => {
      served++;
      return 'ok';
    });
    try {
      assert.equal((await app.inject({ url: '/missing' })).statusCode, 404);
      await keeper.idle();
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        statuses.push((await app.inject({ url: '/ok' })).statusCode);
        await keeper.idle();
      }
      assert.deepEqual(statuses, [200, 200, 200, 200, 200]);
      assert.equal(served, 5, 'every request reached its handler');
      assert.deepEqual(await keeper.bans(), []);
      assert.equal((await keeper.status()).jails.scan?.currentlyFailed, 1, 'only the 404 counted');
    } finally {
      await app.close();
      await keeper.close();
    }
  });

  it('failures through inject still count, and ban at maxRetry', async () => {
    const keeper = createJailkeeper({
      jails: { login: { statuses: [401], paths: ['/login'], maxRetry: 2 } },
    });
    await keeper.ready;
    const app = Fastify();
    await app.register(jailkeeperPlugin, { keeper });
    app.post('/login', async (_request, reply) => reply.code(401).send());
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        statuses.push((await app.inject({ method: 'POST', url: '/login' })).statusCode);
        await keeper.idle();
      }
      assert.deepEqual(statuses, [401, 401, 403]);
    } finally {
      await app.close();
      await keeper.close();
    }
  });

  // The attempt waits for a request's body before it takes a slot (a slow body must not hold one);
  // an injected request's body is in memory and arrives only when read, so it was waited for
  // attempts.wait (5 s), answered 408, and its "socket" destroyed, which light-my-request's has
  // no method for: the test process crashed.
  it('a POST with a body on a targeted route reaches its handler at once, and bans at maxRetry', async () => {
    const keeper = createJailkeeper({
      jails: { login: { statuses: [401], paths: ['/login'], maxRetry: 3, banTime: '1h' } },
    });
    await keeper.ready;
    const app = Fastify();
    await app.register(jailkeeperPlugin, { keeper });
    const users: string[] = [];
    app.post('/login', async (request, reply) => {
      users.push((request.body as { user?: string }).user ?? '');
      return reply.code(401).send({ error: 'wrong password' });
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await app.inject({ method: 'POST', url: '/login', payload: { user: `u${i}` } });
        statuses.push(res.statusCode);
        await keeper.idle();
      }
      assert.deepEqual(statuses, [401, 401, 401, 403]);
      assert.deepEqual(users, ['u0', 'u1', 'u2'], 'each body reached the handler, the banned one did not');
      assert.equal((await keeper.bans()).length, 1);
    } finally {
      await app.close();
      await keeper.close();
    }
  });
});
