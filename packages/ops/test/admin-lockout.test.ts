import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { createJailkeeper, JailkeeperConfigError } from '@jailkeeper/core';
import { createManualClock } from '@jailkeeper/core/testing';
import { type AdminRequest, createAdminApi } from '../src/admin.js';

const TOKEN = 'a-long-enough-admin-token';
// No jail watches 401, and the caller is in ignoreIp: the admin API must count on its own.
const options = { jails: { scan: { statuses: [404], maxRetry: 50 } }, ignoreIp: ['127.0.0.0/8'] };

function req(token: string | undefined, peer = '127.0.0.9'): AdminRequest {
  return {
    method: 'GET',
    path: '/bans',
    query: new URLSearchParams(),
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    peer,
    body: undefined,
  };
}

describe('admin API: its own lockout of wrong tokens (issue 15)', () => {
  it('locks a caller out at the 5th wrong token for 15 minutes, even with the right token, then lets it in', async () => {
    const clock = createManualClock();
    const keeper = createJailkeeper({ ...options, clock });
    const api = createAdminApi(keeper, { token: TOKEN });
    for (let i = 1; i <= 4; i++) assert.equal((await api.handle(req(`wrong-${i}`))).status, 401, `try ${i}`);
    const fifth = await api.handle(req('wrong-5'));
    assert.equal(fifth.status, 429);
    assert.equal(fifth.headers['retry-after'], '900');
    assert.equal(JSON.parse(fifth.body as string).error.code, 'JK_ERR_ADMIN_FORBIDDEN');
    assert.equal((await api.handle(req(TOKEN))).status, 429, 'the right token does not help now');
    assert.equal((await api.handle(req(TOKEN, '127.0.0.1'))).status, 200, 'another caller is not affected');
    assert.equal((await api.handle(req(TOKEN, '::1'))).status, 200);
    clock.advance(15 * 60_000 - 1000);
    assert.equal((await api.handle(req(TOKEN))).status, 429);
    clock.advance(1000);
    assert.equal((await api.handle(req(TOKEN))).status, 200, 'let in once the lockout ends');
    assert.equal(keeper.check('127.0.0.9').banned, false, 'the app itself never banned it (ignoreIp)');
    api.close();
    await keeper.close();
  });

  it('counts wrong tokens inside findTime only; a missing header is not a guess', async () => {
    const clock = createManualClock();
    const keeper = createJailkeeper({ ...options, clock });
    const api = createAdminApi(keeper, {
      token: TOKEN,
      allowRemote: true,
      lockout: { maxRetry: 3, findTime: '1m', banTime: '1h' },
    });
    for (let i = 0; i < 20; i++) assert.equal((await api.handle(req(undefined))).status, 401);
    assert.equal((await api.handle(req('a'))).status, 401);
    assert.equal((await api.handle(req('b'))).status, 401);
    clock.advance(61_000);
    assert.equal((await api.handle(req('c'))).status, 401, 'the first two left the window');
    assert.equal((await api.handle(req('d'))).status, 401);
    const locked = await api.handle(req('e'));
    assert.equal(locked.status, 429);
    assert.equal(locked.headers['retry-after'], '3600');
    // Another scheme is a wrong credential too; an IPv6 caller is counted by its /64.
    for (let i = 0; i < 2; i++)
      assert.equal(
        (await api.handle({ ...req(undefined, '2001:db8::1'), headers: { authorization: `Basic x${i}` } }))
          .status,
        401,
      );
    assert.equal((await api.handle(req('x', '2001:db8::ffff'))).status, 429, 'the same /64');
    api.close();
    await keeper.close();
  });

  it('refuses bad lockout options at setup, naming the option', async () => {
    const keeper = createJailkeeper(options);
    for (const [lockout, name] of [
      [{ maxRetry: 0 }, 'admin.lockout.maxRetry'],
      [{ findTime: 'soon' }, 'admin.lockout.findTime'],
      [{ banTime: -5 }, 'admin.lockout.banTime'],
      [{ tries: 3 }, 'admin.lockout.tries'],
    ] as const) {
      assert.throws(
        () => createAdminApi(keeper, { token: TOKEN, lockout: lockout as never }),
        (e: unknown) => e instanceof JailkeeperConfigError && e.option === name,
        name,
      );
    }
    await keeper.close();
  });

  it('counts exactly under parallel wrong tokens from one loopback address over HTTP', async () => {
    const keeper = createJailkeeper(options);
    const api = createAdminApi(keeper, { token: TOKEN });
    const server = createServer(api.node).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const call = (token: string, from: string) =>
      new Promise<number>((resolve, reject) => {
        const r = request(
          {
            port,
            host: '127.0.0.1',
            path: '/bans',
            localAddress: from,
            agent: false,
            headers: { authorization: `Bearer ${token}` },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        r.on('error', reject);
        r.end();
      });
    const statuses = await Promise.all(
      Array.from({ length: 60 }, (_, i) => call(`guess-${i}`, '127.0.0.77')),
    );
    assert.equal(statuses.filter((s) => s === 401).length, 4, 'four wrong tokens answered 401');
    assert.equal(statuses.filter((s) => s === 429).length, 56, 'then every other one refused');
    assert.equal(await call(TOKEN, '127.0.0.77'), 429);
    assert.equal(await call(TOKEN, '127.0.0.78'), 200);
    server.close();
    api.close();
    await keeper.close();
  });
});
