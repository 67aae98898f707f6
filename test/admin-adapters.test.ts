/**
 * The admin API mounted the way each framework mounts things: Express middleware under a path,
 * a Fastify plugin under a prefix. Over real sockets, from loopback addresses of the test's choice.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { createJailkeeper, type Jailkeeper } from '@jailkeeper/core';
import { jailkeeper } from '@jailkeeper/express';
import { jailkeeperPlugin } from '@jailkeeper/fastify';
import { jailkeeperAdmin as expressAdmin } from '@jailkeeper/ops/express';
import { jailkeeperAdmin as fastifyAdmin } from '@jailkeeper/ops/fastify';
import express from 'express';
import express4 from 'express4';
import Fastify from 'fastify';
import Fastify4 from 'fastify4';

const TOKEN = 'adapters-admin-token-123';
const closers: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

function keeper(): Jailkeeper {
  // A jail on 401 anywhere: guessing the admin token is a failure like any other.
  const k = createJailkeeper({ jails: { auth: { statuses: [401], maxRetry: 3, banTime: '1h' } } });
  closers.push(() => k.close());
  return k;
}

function call(
  base: string,
  method: string,
  path: string,
  { token = TOKEN, body, from = '127.0.0.1' }: { token?: string | null; body?: unknown; from?: string } = {},
): Promise<{ status: number; json: () => { bans: unknown[]; lifted: unknown[] } }> {
  return new Promise((resolve, reject) => {
    const r = request(
      `${base}${path}`,
      {
        method,
        // one connection a call: a ban closes the banned client's keep-alive connections
        agent: false,
        localAddress: from,
        headers: {
          ...(token === null ? {} : { authorization: `Bearer ${token}` }),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: () => JSON.parse(text) }));
      },
    );
    r.on('error', reject);
    r.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

async function scenario(base: string, k: Jailkeeper) {
  assert.deepEqual((await call(base, 'GET', '/bans')).json(), { bans: [] });
  const banned = await call(base, 'POST', '/bans', { body: { address: '203.0.113.3', duration: '5m' } });
  assert.equal(banned.status, 201);
  assert.ok(k.check('203.0.113.3').banned);
  assert.equal((await call(base, 'DELETE', '/bans?address=203.0.113.3')).json().lifted.length, 1);
  assert.equal((await call(base, 'GET', '/export?format=plain')).status, 200);
  // guessing the token from 127.0.0.9: refused, counted, and banned at maxRetry like any failure
  for (let i = 0; i < 3; i++)
    assert.equal((await call(base, 'GET', '/bans', { token: `guess-${i}`, from: '127.0.0.9' })).status, 401);
  // the response goes out before the failure is recorded: wait until it is
  await k.idle();
  assert.ok(k.check('127.0.0.9').banned, 'the token guesser is banned');
  assert.equal(
    (await call(base, 'GET', '/bans', { from: '127.0.0.9' })).status,
    403,
    'even with the right token now',
  );
  assert.equal((await call(base, 'GET', '/bans', { token: null })).status, 401);
}

describe('admin API in the adapters', () => {
  for (const [name, makeExpress] of [
    ['Express 5', express],
    ['Express 4', express4],
  ] as const) {
    it(`${name}: jailkeeperAdmin under a path, behind the jailkeeper middleware`, async () => {
      const k = keeper();
      const app = (makeExpress as typeof express)();
      app.use(jailkeeper(k));
      app.use((makeExpress as typeof express).json()); // a body parsed before the admin API is used as it is
      app.use('/_jk', expressAdmin(k, { token: TOKEN }));
      const server = app.listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      closers.push(() => new Promise((resolve) => server.close(resolve)));
      await scenario(`http://127.0.0.1:${(server.address() as AddressInfo).port}/_jk`, k);
    });
  }

  for (const [name, makeFastify] of [
    ['Fastify 5', Fastify],
    ['Fastify 4', Fastify4],
  ] as const) {
    it(`${name}: jailkeeperAdmin registered with a prefix, beside the plugin`, async () => {
      const k = keeper();
      const app = (makeFastify as typeof Fastify)();
      await app.register(jailkeeperPlugin, { keeper: k });
      await app.register(fastifyAdmin, { prefix: '/_jk', keeper: k, token: TOKEN });
      await app.listen({ port: 0, host: '127.0.0.1' });
      closers.push(() => app.close());
      await scenario(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/_jk`, k);
    });
  }

  it('Fastify: a bad admin option fails register() with the option named', async () => {
    const app = Fastify();
    const k = keeper();
    await assert.rejects(
      async () => {
        await app.register(fastifyAdmin, { prefix: '/_jk', keeper: k, token: 'short' });
        await app.ready();
      },
      (e: unknown) => (e as { option?: string }).option === 'admin.token',
    );
    await app.close();
  });
});
