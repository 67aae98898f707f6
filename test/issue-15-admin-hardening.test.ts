/**
 * Issue 15, the admin API's hardening: wrong tokens are counted and locked out by the admin API
 * itself whatever jails the app has (the express-login example let 30 wrong tokens through from
 * its admin address, which is in ignoreIp), and exports never write a forged store entry.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, describe, it } from 'node:test';
import { createJailkeeper, createMemoryStore, type Store } from '@jailkeeper/core';
import type { Ban } from '@jailkeeper/core/store';
import { start } from '@jailkeeper/example-express-login/app.js';
import { createAdminApi } from '@jailkeeper/ops';

const TOKEN = 'express-login-admin-token';
const closers: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

function get(url: string, token: string, from = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const r = request(
      url,
      { localAddress: from, agent: false, headers: { authorization: `Bearer ${token}` } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    r.on('error', reject);
    r.end();
  });
}

describe('issue 15: the admin API locks out wrong tokens by itself', () => {
  it('express-login: 30 wrong tokens from the admin address (in ignoreIp): 4 answered 401, then refused', async () => {
    const app = await start({ port: 0, adminToken: TOKEN });
    closers.push(() => app.close());
    const url = `${app.url}/_jailkeeper/bans`;
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push(await get(url, `wrong-token-${i}`));
    assert.deepEqual(statuses.slice(0, 4), [401, 401, 401, 401]);
    assert.deepEqual(new Set(statuses.slice(4)), new Set([429]));
    assert.equal(await get(url, TOKEN), 429, 'locked out: the right token does not get in now');
    assert.equal(
      app.keeper.check('127.0.0.1').banned,
      false,
      'the app is not affected: 127.0.0.1 is its admin',
    );
    assert.equal(await get(url, TOKEN, '127.0.0.2'), 200, 'another caller gets in');
  });

  it('in parallel from one address: exactly maxRetry - 1 wrong tokens are answered, whatever the race', async () => {
    const app = await start({ port: 0, adminToken: TOKEN });
    closers.push(() => app.close());
    const url = `${app.url}/_jailkeeper/status`;
    const statuses = await Promise.all(
      Array.from({ length: 40 }, (_, i) => get(url, `guess-${i}`, '127.0.0.44')),
    );
    assert.equal(statuses.filter((s) => s === 401).length, 4);
    assert.equal(statuses.filter((s) => s === 429).length, 36);
  });
});

describe('issue 15: exports never write a forged store entry', () => {
  it('GET /export leaves out forged networks read from the store, in nginx-geo and ipset', async () => {
    const forged = [
      '0.0.0.0/0',
      '::/0',
      '10.0.0.0/8',
      '2001:db8::/16',
      ' 203.0.113.5',
      '203.0.113.6\n0.0.0.0/0 1;',
      '203.0.113.7;',
    ];
    const base = createMemoryStore();
    const store = new Proxy(base, {
      get(target, property, receiver) {
        if (property === 'bansPage') {
          // The forged entries on the first page of the store's paged list, which exports read.
          return async (query: { jail?: string; after?: string; limit: number }) => {
            const page = await (target.bansPage as NonNullable<Store['bansPage']>).call(target, query);
            if (query.after !== undefined) return page;
            const now = Date.now();
            const fakes = forged.map((client) => ({
              jail: 'login',
              client,
              startMs: now,
              endMs: now + 60_000,
              banCount: 1,
              reason: 'forged',
              manual: false,
            }));
            return { ...page, bans: [...page.bans, ...fakes] };
          };
        }
        if (property === 'bans') {
          return async (jail?: string): Promise<Ban[]> => {
            const real = await target.bans(jail);
            const now = Date.now();
            return [
              ...real,
              ...forged.map((client) => ({
                jail: 'login',
                client,
                startMs: now,
                endMs: now + 60_000,
                banCount: 1,
                reason: 'forged',
                manual: false,
              })),
            ];
          };
        }
        const value = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as Store;
    const keeper = createJailkeeper({ jails: { login: { statuses: [401] } }, store });
    closers.push(() => keeper.close());
    await keeper.ban('198.51.100.4');
    const api = createAdminApi(keeper, { token: TOKEN });
    for (const format of ['nginx-geo', 'ipset', 'plain']) {
      const res = await api.handle({
        method: 'GET',
        path: '/export',
        query: new URLSearchParams({ format }),
        headers: { authorization: `Bearer ${TOKEN}` },
        peer: '127.0.0.1',
        body: undefined,
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers['x-jailkeeper-skipped'], String(forged.length), format);
      const text = res.body as string;
      assert.match(text, /198\.51\.100\.4/);
      assert.doesNotMatch(text, /0\.0\.0\.0|::\/0|10\.0\.0\.0|2001:db8|203\.0\.113/, format);
    }
  });
});
