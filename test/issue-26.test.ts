// test-run: alone (it measures the event loop's longest block)
/**
 * Issue 26, an operator at scale: with 100,000 bans, the admin API's plain `GET /bans` answers a
 * bounded page and a cursor at once, and the whole list comes only when asked for by name, as a
 * stream (`GET /bans/stream`), without holding the event loop. Measured with the event-loop delay
 * histogram, beside the wall time.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { createJailkeeper, type Jailkeeper } from '@jailkeeper/core';
import { quietLogger } from '@jailkeeper/core/testing';
import { type AdminApi, createAdminApi } from '@jailkeeper/ops';

const BANS = 100_000;
const TOKEN = 'a-token-of-sixteen-or-more';

let keeper: Jailkeeper;
let admin: AdminApi;
let server: Server;
let base: string;

before(async () => {
  keeper = createJailkeeper({
    jails: { login: { statuses: [401], paths: ['/login'], maxRetry: 3, banTime: '1h' } },
    logger: quietLogger,
  });
  for (let i = 0; i < BANS; i++) {
    await keeper.ban(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, {
      jail: i % 10 === 0 ? 'manual' : 'login',
    });
  }
  admin = createAdminApi(keeper, { token: TOKEN });
  server = createServer((req, res) => admin.node(req, res));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  admin.close();
  server.close();
  await keeper.close();
});

/** The status, body and longest event-loop block (ms) of one GET, and how long it took. */
async function timedGet(
  path: string,
): Promise<{ status: number; body: string; blockMs: number; ms: number }> {
  const histogram = monitorEventLoopDelay({ resolution: 5 });
  histogram.enable();
  const started = performance.now();
  const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    get(`${base}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    }).on('error', reject);
  });
  const ms = performance.now() - started;
  histogram.disable();
  return { status, body, ms, blockMs: histogram.max / 1e6 };
}

describe(`GET /bans at ${BANS.toLocaleString('en')} bans`, () => {
  it('with no query answers a bounded page and a cursor in under a second, blocking the loop < 200 ms', async () => {
    const res = await timedGet('/bans');
    assert.equal(res.status, 200);
    const page = JSON.parse(res.body) as { bans: { client: string }[]; next?: string };
    assert.equal(page.bans.length, 1000);
    assert.equal(typeof page.next, 'string');
    assert.ok(res.ms < 1000, `answered in ${res.ms.toFixed(0)} ms`);
    assert.ok(res.blockMs < 200, `the event loop was blocked ${res.blockMs.toFixed(0)} ms`);
    console.log(`# GET /bans: ${res.ms.toFixed(0)} ms, longest block ${res.blockMs.toFixed(0)} ms`);
  });

  it('any query gets a page: a jail, a limit over the bound is refused with a coded error', async () => {
    const jail = JSON.parse((await timedGet('/bans?jail=manual')).body) as { bans: { jail: string }[] };
    assert.equal(jail.bans.length, 1000);
    assert.ok(jail.bans.every((b) => b.jail === 'manual'));
    const big = await timedGet('/bans?limit=1000000');
    assert.equal(big.status, 400);
    assert.equal((JSON.parse(big.body) as { error: { code: string } }).error.code, 'JK_ERR_INVALID_ARGUMENT');
  });

  it('the cursor walks every ban once, each page at most its limit', async () => {
    const clients = new Set<string>();
    let after: string | undefined;
    let pages = 0;
    do {
      const q = `limit=5000${after === undefined ? '' : `&after=${encodeURIComponent(after)}`}`;
      const page = JSON.parse((await timedGet(`/bans?${q}`)).body) as {
        bans: { client: string }[];
        next?: string;
      };
      assert.ok(page.bans.length <= 5000);
      for (const ban of page.bans) clients.add(ban.client);
      after = page.next;
      pages++;
    } while (after !== undefined);
    assert.equal(clients.size, BANS);
    assert.ok(pages >= BANS / 5000);
  });

  it('GET /bans/stream sends every ban as NDJSON, page by page, blocking the loop < 200 ms', async () => {
    const res = await timedGet('/bans/stream');
    assert.equal(res.status, 200);
    const lines = res.body.split('\n').filter((l) => l.length > 0);
    assert.equal(lines.length, BANS);
    const clients = new Set(lines.map((l) => (JSON.parse(l) as { client: string }).client));
    assert.equal(clients.size, BANS);
    assert.ok(res.blockMs < 200, `the event loop was blocked ${res.blockMs.toFixed(0)} ms`);
    console.log(`# GET /bans/stream: ${res.ms.toFixed(0)} ms, longest block ${res.blockMs.toFixed(0)} ms`);
    const manual = (await timedGet('/bans/stream?jail=manual')).body.split('\n').filter(Boolean);
    assert.equal(manual.length, BANS / 10);
  });
});
