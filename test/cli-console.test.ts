/**
 * `jailkeeper console`: the operators' console for a whole fleet, as a real CLI process against a
 * real Redis shared with a running keeper. A ban made by the app shows in the console (table and
 * live feed); an unban from the console reaches the app through Redis. With Chromium installed, the
 * page is also opened in the browser (a screenshot for the README).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createJailkeeper, type Jailkeeper, type JailkeeperOptions, type UnbanEvent } from '@jailkeeper/core';
import { until } from '@jailkeeper/core/testing';
import { createRedisStore } from '@jailkeeper/redis';
import { Redis } from 'ioredis';
import { launch, NO_BROWSER, signIn, watch } from './console-harness.js';
import { NO_REDIS } from './needs.js';
import { startRedis, type TestRedis } from './redis-server.js';

const BIN = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));
const TOKEN = 'fleet-console-token-0123';
const PREFIX = `jk-console${process.pid}:`;
const JAILS = {
  login: { statuses: [401], paths: ['/login'], maxRetry: 5, findTime: '10m', banTime: '1h' },
} satisfies JailkeeperOptions['jails'];

let redis: TestRedis;
let client: Redis;
let keeper: Jailkeeper;
let dir: string;
let child: ChildProcess;
let base: string;
let stderr = '';

before(async () => {
  if (NO_REDIS) return;
  redis = await startRedis();
  client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  keeper = createJailkeeper({
    jails: JAILS,
    store: createRedisStore({ client, prefix: PREFIX, timeout: 1000 }),
    logger: { info() {}, warn() {}, error() {} },
  });
  await keeper.ready;
  dir = await mkdtemp(join(tmpdir(), 'jk-console-'));
  await writeFile(join(dir, 'config.json'), JSON.stringify({ jails: JAILS }));
  const env = { ...process.env };
  delete env.REDIS_URL;
  delete env.JAILKEEPER_TOKEN;
  child = spawn(
    process.execPath,
    [
      BIN,
      'console',
      '--redis',
      redis.url,
      '--prefix',
      PREFIX,
      '--port',
      '0',
      '--token',
      TOKEN,
      '--config',
      join(dir, 'config.json'),
    ],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  await until(() => /http:\/\/127\.0\.0\.1:\d+\/console\//.test(stderr), {
    within: 10_000,
    what: 'the console URL',
  });
  base = (/(http:\/\/127\.0\.0\.1:\d+)\/console\//.exec(stderr) as RegExpExecArray)[1] as string;
});

after(async () => {
  if (child?.exitCode === null) {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
  await keeper?.close();
  client?.disconnect();
  await redis?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function call(
  method: string,
  path: string,
  { body, headers = {} }: { body?: unknown; headers?: Record<string, string> } = {},
) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    redirect: 'manual',
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: () => JSON.parse(text), text };
}

describe('jailkeeper console (the fleet view)', { skip: NO_REDIS }, () => {
  let session: Record<string, string>;

  it('serves the page on loopback and signs in with the token only', async () => {
    const root = await call('GET', '/');
    assert.equal(root.status, 308);
    const page = await call('GET', '/console/');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.equal(
      (await call('POST', '/console/api/session', { body: { token: 'wrong-token-here' } })).status,
      401,
    );
    const res = await call('POST', '/console/api/session', { body: { token: TOKEN, name: 'carol' } });
    assert.equal(res.status, 200);
    session = {
      cookie: (res.headers.get('set-cookie') ?? '').split(';')[0] as string,
      'x-jailkeeper-csrf': res.json().csrf,
    };
    assert.match(res.json().where, /Redis at redis:\/\//);
  });

  it('shows the fleet: jails with the thresholds of --config, bans made by an instance, in the table and the feed', async () => {
    const overview = (await call('GET', '/console/api/overview', { headers: session })).json();
    const login = overview.jails.find((j: { name: string }) => j.name === 'login');
    assert.equal(login.maxRetry, 5);
    assert.equal(login.findTimeMs, 600_000);
    assert.equal(overview.health.store, 'redis');
    assert.equal(overview.health.degraded, false);

    const events = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      const r = request(
        `${base}/console/api/events`,
        { headers: { cookie: session.cookie as string } },
        resolve,
      );
      r.on('error', reject);
      r.end();
    });
    let feed = '';
    events.on('data', (c: Buffer) => {
      feed += c.toString();
    });
    await keeper.ban('203.0.113.10', { jail: 'login', reason: 'made by an instance' });
    await until(() => feed.includes('"client":"203.0.113.10"'), { what: 'the ban in the live feed' });
    assert.match(
      feed,
      /"type":"ban","jail":"login","client":"203\.0\.113\.10","reason":"made by an instance"/,
    );
    await until(
      async () =>
        (await call('GET', '/console/api/bans?q=203.0.113.10', { headers: session })).json().total === 1,
      { what: 'the ban in the table' },
    );
    events.destroy();
  });

  it('unbans from the console: the instance lifts the ban too, and the audit log says who did it', async () => {
    const lifted = new Promise<UnbanEvent>((resolve) => keeper.once('unban', resolve));
    const res = await call('DELETE', '/console/api/bans?address=203.0.113.10&jail=login', {
      headers: session,
    });
    assert.equal(res.status, 200);
    assert.equal(res.json().lifted.length, 1);
    const event = await lifted;
    assert.equal(event.client, '203.0.113.10');
    assert.equal(event.origin, 'remote');
    assert.equal(keeper.check('203.0.113.10').banned, false);
    await until(() => stderr.includes('carol (console from 127.0.0.1) unban 203.0.113.10: done'), {
      what: 'the audit line',
    });
    // The console's own unban is in its feed and its charts (the store never hears its own messages).
    const feed = (await call('GET', '/console/api/feed', { headers: session })).json().events as Array<{
      type: string;
      client?: string;
    }>;
    assert.equal(feed.filter((e) => e.type === 'unban' && e.client === '203.0.113.10').length, 1);
    const timeline = (await call('GET', '/console/api/timeline', { headers: session })).json();
    assert.equal(
      (timeline.series.unbans.login as number[]).reduce((a, b) => a + b, 0),
      1,
      'one unban charted, as the feed has one',
    );
  });

  it('opens in Chromium: sign in and see the fleet bans table', { skip: NO_BROWSER }, async () => {
    await keeper.ban('198.51.100.20', { jail: 'login', reason: 'credential stuffing' });
    const browser = await launch();
    try {
      const page = await browser.context.newPage();
      const { problems } = await watch(page);
      await signIn(page, `${base}/console/`, TOKEN, 'carol');
      await page.locator('table.jails').waitFor();
      await page.evaluate(() => {
        location.hash = '#/bans';
      });
      await page.locator('table.bans tbody tr', { hasText: '198.51.100.20' }).waitFor();
      await page.evaluate(() => {
        location.hash = '#/overview';
      });
      await page.locator('table.jails').waitFor();
      // No placeholders: a figure the fleet view does not have (totals, refusals, dry runs are each
      // app's) is not a column of dashes, and the charts it does not draw are not empty boxes.
      const headings = await page.locator('table.jails thead th').allTextContents();
      assert.deepEqual(headings, ['Jail', 'Threshold', 'Ban time', 'Failing now', 'Banned now']);
      assert.match((await page.locator('main').textContent()) ?? '', /kept by each app/);
      const shots = process.env.JAILKEEPER_SCREENSHOTS === '1';
      const shotAt = (name: string) =>
        shots
          ? fileURLToPath(new URL(`../packages/ops/docs/${name}.png`, import.meta.url))
          : join(process.env.JAILKEEPER_SHOTS_DIR ?? tmpdir(), `${name}.png`);
      await page.screenshot({ path: shotAt('console-fleet'), fullPage: true });
      await page.evaluate(() => {
        location.hash = '#/live';
      });
      await page.locator('#chart-bans canvas').waitFor();
      assert.deepEqual(
        await page
          .locator('.charts figure')
          .evaluateAll((figures) =>
            figures.map(
              (f) =>
                f.querySelector('[id^="chart-"], [data-empty]')?.getAttribute('id') ??
                f.querySelector('[data-empty]')?.getAttribute('data-empty'),
            ),
          ),
        ['chart-bans', 'chart-unbans'],
        'the two charts the fleet has: bans and unbans',
      );
      assert.doesNotMatch((await page.locator('main').textContent()) ?? '', /Not counted|--/);
      assert.match((await page.locator('main').textContent()) ?? '', /counted by each app/);
      await page.screenshot({ path: shotAt('console-fleet-live'), fullPage: true });
      assert.deepEqual(await problems(), []);
    } finally {
      await browser.close();
    }
  });

  it('refuses to listen beyond loopback unless told who may connect, and stops on SIGTERM', async () => {
    const env = { ...process.env };
    delete env.REDIS_URL;
    const refused = spawn(
      process.execPath,
      [BIN, 'console', '--redis', redis.url, '--host', '0.0.0.0', '--port', '0'],
      {
        env,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let text = '';
    refused.stderr?.on('data', (c: Buffer) => {
      text += c.toString();
    });
    const [code] = await once(refused, 'exit');
    assert.equal(code, 2);
    assert.match(text, /--allow-remote/);
    child.kill('SIGTERM');
    const [exit] = await once(child, 'exit');
    assert.equal(exit, 0);
  });
});
