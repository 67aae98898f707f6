/**
 * Jails keyed by account (issue 15): credential stuffing spreads one account's guesses over many
 * addresses, which no per-address jail sees. On Express 4 and 5 and Fastify 4 and 5, the login
 * handler counts its own runs per account: that is the ground truth.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { createJailkeeper, type Jailkeeper, type JailkeeperOptions } from '@jailkeeper/core';
import { quietLogger } from '@jailkeeper/core/testing';
import { jailkeeper } from '@jailkeeper/express';
import { jailkeeperPlugin } from '@jailkeeper/fastify';
import express5 from 'express';
import express4 from 'express4';
import fastify5 from 'fastify';
import fastify4 from 'fastify4';

const PASSWORD = 'correct horse';

interface LoginApp {
  readonly port: number;
  /** Handler runs that reached the password check, per account as sent. */
  readonly checks: Map<string, number>;
  close(): Promise<void>;
}
type Start = (keeper: Jailkeeper) => Promise<LoginApp>;

const check = async (checks: Map<string, number>, user: string, password: string) => {
  checks.set(user, (checks.get(user) ?? 0) + 1);
  await new Promise((r) => setTimeout(r, 20)); // an async password hash
  return password === PASSWORD;
};

function expressLogin(express: typeof express5): Start {
  return async (keeper) => {
    const checks = new Map<string, number>();
    const jk = jailkeeper(keeper);
    const app = express();
    app.use(jk);
    app.post('/login', express.json(), async (req, res) => {
      const { username, password } = (req.body ?? {}) as { username?: string; password?: string };
      if (!(await jk.account(req, username))) return;
      const ok = await check(checks, String(username), String(password));
      res.status(ok ? 200 : 401).json({ ok });
    });
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return served(server, checks);
  };
}

function fastifyLogin(fastify: typeof fastify5): Start {
  return async (keeper) => {
    const checks = new Map<string, number>();
    const app = fastify();
    await app.register(jailkeeperPlugin, { keeper });
    app.post('/login', async (request, reply) => {
      const { username, password } = (request.body ?? {}) as { username?: string; password?: string };
      if (!(await request.jailkeeper.account(username))) return reply;
      const ok = await check(checks, String(username), String(password));
      reply.code(ok ? 200 : 401);
      return { ok };
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    return served(app.server, checks, () => app.close());
  };
}

function served(server: Server, checks: Map<string, number>, stop?: () => Promise<unknown>): LoginApp {
  return {
    port: (server.address() as AddressInfo).port,
    checks,
    async close() {
      server.closeAllConnections();
      if (stop) await stop();
      else await new Promise((resolve) => server.close(resolve));
    },
  };
}

function login(port: number, from: string, username: string, password: string): Promise<number> {
  const body = JSON.stringify({ username, password });
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/login',
        localAddress: from,
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const FRAMEWORKS: ReadonlyArray<[string, Start]> = [
  ['Express 5', expressLogin(express5)],
  ['Express 4', expressLogin(express4 as unknown as typeof express5)],
  ['Fastify 5', fastifyLogin(fastify5)],
  ['Fastify 4', fastifyLogin(fastify4 as unknown as typeof fastify5)],
];

let next = 1;
const fresh = () => `127.16.${(next >> 8) & 255}.${next++ & 255}`;
const open: Array<{ close(): Promise<void> }> = [];
after(async () => {
  for (const o of open) await o.close();
});

async function setup(start: Start, jails: JailkeeperOptions['jails']) {
  const keeper = createJailkeeper({ jails, logger: quietLogger });
  const app = await start(keeper);
  open.push(app, keeper);
  return { keeper, app };
}

for (const [name, start] of FRAMEWORKS) {
  describe(`jails keyed by account on ${name}`, () => {
    it('credential stuffing: one account guessed from 30 addresses reaches the check at most maxRetry times', async () => {
      const { keeper, app } = await setup(start, {
        account: { key: 'account', statuses: [401], paths: ['/login'], maxRetry: 5, banTime: '15m' },
      });
      const codes: number[] = [];
      for (let i = 0; i < 30; i++) codes.push(await login(app.port, fresh(), 'alice', `guess-${i}`));
      await keeper.idle();
      assert.equal(app.checks.get('alice'), 5, 'five guesses checked, then the account is locked');
      assert.equal(codes.filter((c) => c === 401).length, 5);
      assert.equal(codes.filter((c) => c === 403).length, 25);
      assert.ok(keeper.check('acct:alice').banned, 'an operator sees the account banned');
      // Another account is untouched, and an operator can lift the lock.
      assert.equal(await login(app.port, fresh(), 'bob', PASSWORD), 200);
      await keeper.unban('acct:alice');
      assert.equal(await login(app.port, fresh(), 'Alice ', PASSWORD), 200, 'one account, however spelled');
    });

    it('guesses for one account sent in parallel from many addresses: at most maxRetry checks', async () => {
      const { keeper, app } = await setup(start, {
        account: { key: 'account', statuses: [401], paths: ['/login'], maxRetry: 5, banTime: '15m' },
      });
      await Promise.all(
        Array.from({ length: 40 }, (_, i) => login(app.port, fresh(), 'carol', `guess-${i}`)),
      );
      await keeper.idle();
      assert.ok((app.checks.get('carol') ?? 0) <= 5, `checks: ${app.checks.get('carol')}`);
    });

    it('account+address: an attacker cannot lock the owner out from its own addresses', async () => {
      const { keeper, app } = await setup(start, {
        pair: { key: 'account+address', statuses: [401], paths: ['/login'], maxRetry: 3, banTime: '15m' },
      });
      const attacker = fresh();
      for (let i = 0; i < 10; i++) await login(app.port, attacker, 'dave', `guess-${i}`);
      await keeper.idle();
      assert.equal(app.checks.get('dave'), 3, 'the attacker’s address is stopped for this account');
      assert.equal(await login(app.port, fresh(), 'dave', PASSWORD), 200, 'the owner, elsewhere, logs in');
    });
  });
}
