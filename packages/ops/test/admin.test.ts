import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  createJailkeeper,
  type Jailkeeper,
  JailkeeperConfigError,
  type JailkeeperOptions,
} from '@jailkeeper/core';
import { createManualClock } from '@jailkeeper/core/testing';
import { type AdminRequest, createAdminApi } from '../src/admin.js';
import { createMetrics } from '../src/metrics.js';

const TOKEN = 'a-long-enough-admin-token';
const jails = {
  login: { statuses: [401], paths: ['/login'], maxRetry: 3, banTime: '1h' },
} satisfies JailkeeperOptions['jails'];

function req(partial: Partial<AdminRequest> & { method: string; path: string }): AdminRequest {
  return {
    query: new URLSearchParams(),
    headers: { authorization: `Bearer ${TOKEN}` },
    peer: '127.0.0.1',
    body: undefined,
    ...partial,
  };
}

describe('admin API: who may call it', () => {
  let keeper: Jailkeeper;
  before(() => {
    keeper = createJailkeeper({ jails, clock: createManualClock() });
  });
  after(() => keeper.close());

  it('refuses a missing, wrong or differently sized token with 401 and a Bearer challenge', async () => {
    const api = createAdminApi(keeper, { token: TOKEN });
    for (const authorization of [
      undefined,
      'Bearer wrong-token-of-the-same-len',
      'Bearer x',
      `Basic ${TOKEN}`,
      `Bearer ${TOKEN}x`,
    ]) {
      const res = await api.handle(
        req({ method: 'GET', path: '/bans', headers: authorization ? { authorization } : {} }),
      );
      assert.equal(res.status, 401, String(authorization));
      assert.equal(res.headers['www-authenticate'], 'Bearer realm="jailkeeper"');
      assert.equal(JSON.parse(res.body as string).error.code, 'JK_ERR_ADMIN_UNAUTHORIZED');
    }
    assert.equal((await api.handle(req({ method: 'GET', path: '/bans' }))).status, 200);
  });

  it('answers loopback only, and not a loopback proxy forwarding a stranger', async () => {
    const api = createAdminApi(keeper, { token: TOKEN });
    for (const peer of ['203.0.113.5', '10.0.0.1', '::ffff:198.51.100.1', 'garbage', undefined]) {
      const res = await api.handle(req({ method: 'GET', path: '/bans', peer }));
      assert.equal(res.status, 403, String(peer));
      assert.equal(JSON.parse(res.body as string).error.code, 'JK_ERR_ADMIN_FORBIDDEN');
    }
    for (const header of ['x-forwarded-for', 'forwarded', 'x-real-ip']) {
      const res = await api.handle(
        req({
          method: 'GET',
          path: '/bans',
          headers: { authorization: `Bearer ${TOKEN}`, [header]: '127.0.0.1' },
        }),
      );
      assert.equal(res.status, 403, header);
    }
    for (const peer of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) {
      assert.equal((await api.handle(req({ method: 'GET', path: '/bans', peer }))).status, 200, peer);
    }
  });

  it('checks the caller before the token, and the token before revealing routes', async () => {
    const api = createAdminApi(keeper, { token: TOKEN });
    const stranger = await api.handle(req({ method: 'GET', path: '/nope', peer: '203.0.113.5' }));
    assert.equal(stranger.status, 403);
    const noToken = await api.handle(req({ method: 'GET', path: '/nope', headers: {} }));
    assert.equal(noToken.status, 401);
    assert.equal((await api.handle(req({ method: 'GET', path: '/nope' }))).status, 404);
    assert.equal((await api.handle(req({ method: 'PUT', path: '/bans' }))).status, 405);
  });

  it('opens to listed networks or to everyone with allowRemote', async () => {
    const listed = createAdminApi(keeper, { token: TOKEN, allowRemote: ['10.1.0.0/16'] });
    assert.equal((await listed.handle(req({ method: 'GET', path: '/bans', peer: '10.1.2.3' }))).status, 200);
    assert.equal((await listed.handle(req({ method: 'GET', path: '/bans', peer: '10.2.0.1' }))).status, 403);
    const open = createAdminApi(keeper, { token: TOKEN, allowRemote: true });
    assert.equal((await open.handle(req({ method: 'GET', path: '/bans', peer: '203.0.113.5' }))).status, 200);
    assert.equal(
      (await open.handle(req({ method: 'GET', path: '/bans', peer: '203.0.113.5', headers: {} }))).status,
      401,
    );
  });

  it('fails at setup on a short token or a bad allowRemote, naming the option', () => {
    assert.throws(
      () => createAdminApi(keeper, { token: 'short' }),
      (e: unknown) => e instanceof JailkeeperConfigError && e.option === 'admin.token',
    );
    assert.throws(
      () => createAdminApi(keeper, { token: TOKEN, allowRemote: ['not-a-cidr'] }),
      (e: unknown) => e instanceof JailkeeperConfigError && e.code === 'JK_ERR_INVALID_CIDR',
    );
    assert.throws(() => createAdminApi(keeper, { token: TOKEN, extra: 1 } as never), /unknown key "extra"/);
  });
});

describe('admin API: operations over HTTP', () => {
  let keeper: Jailkeeper;
  let server: Server;
  let base: string;
  before(async () => {
    keeper = createJailkeeper({ jails, ignoreIp: ['192.0.2.0/24'] });
    const metrics = createMetrics(keeper);
    const api = createAdminApi(keeper, { token: TOKEN, metrics });
    server = createServer((rq, rs) => {
      // mounted under /_jk, as an app would
      if (!rq.url?.startsWith('/_jk')) {
        rs.writeHead(404).end();
        return;
      }
      rq.url = rq.url.slice(4) || '/';
      api.node(rq, rs);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/_jk`;
  });
  after(async () => {
    server.close();
    await keeper.close();
  });

  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${TOKEN}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, type: res.headers.get('content-type'), text, json: () => JSON.parse(text) };
  };

  it('bans with a duration and reason, lists with time left, exports, and unbans', async () => {
    const banned = await call('POST', '/bans', {
      address: '203.0.113.7',
      jail: 'login',
      duration: '2h',
      reason: 'seen in logs',
    });
    assert.equal(banned.status, 201);
    assert.equal(banned.json().ban.client, '203.0.113.7');
    assert.equal(banned.json().ban.reason, 'seen in logs');
    assert.ok(keeper.check('203.0.113.7').banned, 'the ban is enforced at once');
    const perm = await call('POST', '/bans', { address: '2001:db8:1:2::9', duration: 'permanent' });
    assert.equal(perm.json().ban.client, '2001:db8:1:2::/64');
    assert.equal(perm.json().ban.endMs, null);
    assert.equal(perm.json().ban.permanent, true);

    const list = (await call('GET', '/bans')).json().bans;
    assert.deepEqual(list.map((b: { client: string }) => b.client).sort(), [
      '2001:db8:1:2::/64',
      '203.0.113.7',
    ]);
    const login = list.find((b: { jail: string }) => b.jail === 'login');
    assert.ok(login.timeLeftMs > 7_100_000 && login.timeLeftMs <= 7_200_000);
    assert.equal((await call('GET', '/bans?jail=login')).json().bans.length, 1);

    const geo = await call('GET', '/export?format=nginx-geo');
    assert.match(geo.text, /203\.0\.113\.7 1;/);
    assert.match(geo.text, /2001:db8:1:2::\/64 1;/);
    const status = (await call('GET', '/status')).json();
    assert.deepEqual(status.jails.login.bannedClients, ['203.0.113.7']);

    const lifted = await call('DELETE', '/bans?address=203.0.113.7');
    assert.equal(lifted.json().lifted.length, 1);
    assert.equal(keeper.check('203.0.113.7').banned, false);
    assert.equal((await call('DELETE', '/bans?all=true')).json().lifted.length, 1);
    assert.equal((await call('GET', '/bans')).json().bans.length, 0);
  });

  it('refuses bad input with a code: bad address, range, unknown jail, ignored client, bad JSON, missing field', async () => {
    const cases: Array<[string, string, unknown, number, string]> = [
      ['POST', '/bans', { address: 'not-an-ip' }, 400, 'JK_ERR_INVALID_IP'],
      ['POST', '/bans', { address: '203.0.113.0/24' }, 400, 'JK_ERR_INVALID_IP'],
      ['POST', '/bans', { address: '203.0.113.1', jail: 'nope' }, 400, 'JK_ERR_UNKNOWN_JAIL'],
      ['POST', '/bans', { address: '192.0.2.10' }, 400, 'JK_ERR_IGNORED_CLIENT'],
      ['POST', '/bans', '{not json', 400, 'JK_ERR_BAD_REQUEST'],
      ['POST', '/bans', { jail: 'login' }, 400, 'JK_ERR_BAD_REQUEST'],
      ['DELETE', '/bans', undefined, 400, 'JK_ERR_BAD_REQUEST'],
      ['POST', '/ignore', { entry: '10.0.0.1/8' }, 400, 'JK_ERR_INVALID_CIDR'],
    ];
    for (const [method, path, body, status, code] of cases) {
      const res = await call(method, path, body);
      assert.equal(res.status, status, `${method} ${path} ${JSON.stringify(body)}`);
      assert.equal(res.json().error.code, code, `${method} ${path} ${JSON.stringify(body)}`);
    }
    const big = await call(
      'POST',
      '/bans',
      JSON.stringify({ address: '1.2.3.4', reason: 'x'.repeat(70_000) }),
    );
    assert.equal(big.status, 413);
  });

  it('edits the runtime ignore list, which then protects the client', async () => {
    assert.deepEqual((await call('POST', '/ignore', { entry: '198.51.100.0/24' })).json().added, [
      '198.51.100.0/24',
    ]);
    assert.ok((await call('GET', '/ignore')).json().entries.includes('198.51.100.0/24'));
    for (let i = 0; i < 5; i++) {
      await keeper.observe({
        client: '198.51.100.9',
        method: 'POST',
        path: '/login',
        route: '/login',
        status: 401,
      });
    }
    assert.equal(keeper.check('198.51.100.9').banned, false);
    assert.deepEqual((await call('DELETE', '/ignore?entry=198.51.100.0%2F24')).json().removed, [
      '198.51.100.0/24',
    ]);
    assert.ok(!(await call('GET', '/ignore')).json().entries.includes('198.51.100.0/24'));
  });

  it('serves the metrics in Prometheus text format', async () => {
    for (let i = 0; i < 3; i++) {
      await keeper.observe({
        client: '203.0.113.50',
        method: 'POST',
        path: '/login',
        route: '/login',
        status: 401,
      });
    }
    const blocked = (text: string) =>
      Number(/^jailkeeper_blocked_requests_total\{jail="login"\} (\d+)$/m.exec(text)?.[1] ?? 0);
    const before = blocked((await call('GET', '/metrics')).text);
    assert.ok(keeper.check('203.0.113.50').banned);
    const res = await call('GET', '/metrics');
    assert.equal(blocked(res.text), before + 1);
    assert.equal(res.status, 200);
    assert.match(res.type ?? '', /text\/plain; version=0\.0\.4/);
    assert.match(res.text, /^jailkeeper_failures_total\{jail="login"\} \d+$/m);
    assert.match(res.text, /^jailkeeper_bans_total\{jail="login"\} \d+$/m);
    assert.match(res.text, /^jailkeeper_active_bans\{jail="login"\} 1$/m);
    assert.match(res.text, /^jailkeeper_store_degraded 0$/m);
  });

  it('answers a plain GET through a real socket with no body reading', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const r = httpRequest(`${base}/status`, { headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      r.on('error', reject);
      r.end();
    });
    assert.equal(status, 200);
  });
});

describe('admin API: a large export', () => {
  it('answers over 256 KB as a stream of chunks, the same lines over HTTP, never one joined string', async () => {
    const keeper = createJailkeeper({ jails, clock: createManualClock() });
    const api = createAdminApi(keeper, { token: TOKEN });
    const server = createServer((rq, rs) => api.node(rq, rs));
    try {
      // 20,000 networks of 8-12 characters: over 320 KB of nginx-geo lines.
      const clients: string[] = [];
      for (let i = 0; i < 20_000; i++) clients.push(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
      for (let i = 0; i < clients.length; i += 1000) {
        await Promise.all(clients.slice(i, i + 1000).map((c) => keeper.ban(c, { jail: 'login' })));
      }
      const res = await api.handle(
        req({ method: 'GET', path: '/export', query: new URLSearchParams({ format: 'nginx-geo' }) }),
      );
      assert.equal(res.status, 200);
      assert.equal(typeof res.body, 'object', 'a stream, not a string');
      const chunks: string[] = [];
      for await (const chunk of res.body as AsyncIterable<Buffer | string>) chunks.push(String(chunk));
      assert.ok(chunks.length > 1, `written in chunks (${chunks.length})`);
      const text = chunks.join('');
      assert.ok(text.length > 256 * 1024, `${text.length} characters`);
      assert.ok(text.startsWith('geo $jailkeeper_banned {\n  default 0;\n'));
      assert.ok(text.endsWith('}\n'));
      const lines = text.split('\n').filter((l) => / 1;$/.test(l));
      assert.deepEqual(lines.map((l) => l.trim().slice(0, -3)).sort(), [...clients].sort());

      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const port = (server.address() as AddressInfo).port;
      const http = await fetch(`http://127.0.0.1:${port}/export?format=nginx-geo`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(http.status, 200);
      assert.equal(http.headers.get('content-type'), 'text/plain; charset=utf-8');
      assert.equal(await http.text(), text);

      // A small export is still one string.
      await keeper.unbanAll();
      await keeper.ban('203.0.113.9', { jail: 'login' });
      const small = await api.handle(
        req({ method: 'GET', path: '/export', query: new URLSearchParams({ format: 'plain' }) }),
      );
      assert.equal(small.body, '203.0.113.9\n');
    } finally {
      server.close();
      api.close();
      await keeper.close();
    }
  });
});
