import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { createJailkeeper, createMemoryStore, type Jailkeeper, type Store } from '@jailkeeper/core';
import { createManualClock, type ManualClock } from '@jailkeeper/core/testing';
import { type AdminApi, type AdminRequest, type AdminResponse, createAdminApi } from '../src/admin.js';
import type { FeedEvent } from '../src/console/feed.js';
import { Timeline } from '../src/console/timeline.js';

const TOKEN = 'a-long-enough-admin-token';

function setup(clock?: ManualClock): { keeper: Jailkeeper; api: AdminApi; close: () => Promise<void> } {
  const keeper = createJailkeeper({
    jails: { login: { statuses: [401], paths: ['/login'], maxRetry: 2, banTime: '1h' } },
    clock,
  });
  const api = createAdminApi(keeper, { token: TOKEN, console: { idleTimeout: '10m', maxAge: '1h' } });
  return {
    keeper,
    api,
    close: async () => {
      api.close();
      await keeper.close();
    },
  };
}

function call(
  api: AdminApi,
  method: string,
  path: string,
  {
    body,
    headers = {},
    peer = '127.0.0.1',
  }: { body?: unknown; headers?: Record<string, string>; peer?: string } = {},
): Promise<AdminResponse> {
  const url = new URL(path, 'http://x');
  const request: AdminRequest = { method, path: url.pathname, query: url.searchParams, headers, peer, body };
  return api.handle(request);
}

const data = (res: AdminResponse) => JSON.parse(res.body as string);

/** Signs in; returns the headers a page would send (cookie and CSRF token). */
async function signIn(api: AdminApi, name = 'alice'): Promise<Record<string, string>> {
  const res = await call(api, 'POST', '/console/api/session', { body: { token: TOKEN, name } });
  assert.equal(res.status, 200);
  const cookie = res.headers['set-cookie'] as string;
  return { cookie: cookie.split(';')[0] as string, 'x-jailkeeper-csrf': data(res).csrf };
}

describe('console: serving and signing in', () => {
  it('serves its page and files with a strict CSP, from the package only', async () => {
    const { api, close } = setup();
    const page = await call(api, 'GET', '/console/');
    assert.equal(page.status, 200);
    assert.match(page.headers['content-type'] as string, /^text\/html/);
    const csp = page.headers['content-security-policy'] as string;
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self';/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|http/);
    assert.match(csp, /require-trusted-types-for 'script'/);
    assert.equal(page.headers['x-frame-options'], 'DENY');
    assert.doesNotMatch(page.body as string, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
    for (const file of [
      'app.js',
      'vendor/lit-html.js',
      'vendor/uPlot.esm.js',
      'vendor/uPlot.min.css',
      'console.css',
    ]) {
      const res = await call(api, 'GET', `/console/${file}`);
      assert.equal(res.status, 200, file);
    }
    assert.doesNotMatch(
      (await call(api, 'GET', '/console/vendor/lit-html.js')).body as string,
      /sourceMappingURL/,
    );
    for (const path of [
      '/console/../package.json',
      '/console/..%2fpackage.json',
      '/console/nope.js',
      '/console/api.js.map',
    ]) {
      // As a framework may hand it over, not normalised.
      const raw = await api.handle({
        method: 'GET',
        path,
        query: new URLSearchParams(),
        headers: {},
        peer: '127.0.0.1',
        body: undefined,
      });
      assert.equal(raw.status, 404, path);
    }
    const redirect = await call(api, 'GET', '/console');
    assert.equal(redirect.status, 308);
    assert.equal(redirect.headers.location, 'console/');
    assert.equal((await call(api, 'GET', '/console/', { peer: '203.0.113.9' })).status, 403, 'loopback only');
    await close();
  });

  it('signs in by POSTing the token: an HttpOnly SameSite=Strict cookie, a CSRF token in the body', async () => {
    const { api, close } = setup();
    assert.equal((await call(api, 'GET', '/console/api/session')).status, 401);
    const res = await call(api, 'POST', '/console/api/session', {
      body: { token: TOKEN, name: 'alice\u0007\n' },
    });
    assert.equal(res.status, 200);
    const cookie = res.headers['set-cookie'] as string;
    assert.match(cookie, /^jk_console=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict$/);
    assert.doesNotMatch(
      cookie,
      /Path|Domain|Expires|Max-Age/,
      'scoped by the browser to the API folder, a session cookie',
    );
    assert.equal(data(res).who, 'alice');
    assert.doesNotMatch(res.body as string, new RegExp(TOKEN), 'the token is never echoed');
    const session = await call(api, 'GET', '/console/api/session', {
      headers: { cookie: cookie.split(';')[0] as string },
    });
    assert.equal(data(session).csrf, data(res).csrf);
    await close();
  });

  it('counts wrong sign-in tokens with the admin API: the 5th locks the caller out of both', async () => {
    const { api, close } = setup();
    for (let i = 0; i < 4; i++) {
      assert.equal(
        (
          await call(api, 'POST', '/console/api/session', {
            body: { token: `guess-${i}` },
            peer: '127.0.0.5',
          })
        ).status,
        401,
      );
    }
    const fifth = await call(api, 'POST', '/console/api/session', {
      body: { token: 'guess-4' },
      peer: '127.0.0.5',
    });
    assert.equal(fifth.status, 429);
    assert.equal(
      (await call(api, 'POST', '/console/api/session', { body: { token: TOKEN }, peer: '127.0.0.5' })).status,
      429,
    );
    assert.equal(
      (await call(api, 'GET', '/bans', { headers: { authorization: `Bearer ${TOKEN}` }, peer: '127.0.0.5' }))
        .status,
      429,
      'the admin API refuses it too',
    );
    const headers = await signIn(api);
    const audit = data(await call(api, 'GET', '/console/api/audit', { headers })).entries;
    assert.ok(
      audit.some((e: { action: string; from: string }) => e.action === 'lockout' && e.from === '127.0.0.5'),
    );
    // A forged or stale session cookie is no guess: 401, never counted.
    for (let i = 0; i < 10; i++) {
      const res = await call(api, 'GET', '/console/api/overview', {
        headers: { cookie: `jk_console=${'A'.repeat(43)}` },
        peer: '127.0.0.6',
      });
      assert.equal(res.status, 401);
    }
    assert.equal(
      (await call(api, 'POST', '/console/api/session', { body: { token: TOKEN }, peer: '127.0.0.6' })).status,
      200,
    );
    await close();
  });

  it('ends a session on sign-out, after the idle timeout and after its maximum age', async () => {
    const clock = createManualClock();
    const { api, close } = setup(clock);
    const headers = await signIn(api);
    clock.advance(9 * 60_000);
    assert.equal((await call(api, 'GET', '/console/api/session', { headers })).status, 200, 'used: kept');
    clock.advance(9 * 60_000);
    assert.equal((await call(api, 'GET', '/console/api/session', { headers })).status, 200);
    clock.advance(10 * 60_000 + 1);
    assert.equal((await call(api, 'GET', '/console/api/session', { headers })).status, 401, 'idle too long');
    const again = await signIn(api);
    for (let i = 0; i < 7; i++) {
      clock.advance(9 * 60_000);
      await call(api, 'GET', '/console/api/session', { headers: again });
    }
    assert.equal(
      (await call(api, 'GET', '/console/api/session', { headers: again })).status,
      401,
      'over an hour old',
    );
    const third = await signIn(api);
    const out = await call(api, 'DELETE', '/console/api/session', { headers: third });
    assert.match(out.headers['set-cookie'] as string, /Max-Age=0/);
    assert.equal((await call(api, 'GET', '/console/api/session', { headers: third })).status, 401);
    await close();
  });
});

describe('console: actions', () => {
  it('changes nothing without the CSRF header, from another site, or without a session', async () => {
    const { api, keeper, close } = setup();
    const headers = await signIn(api);
    const body = { address: '203.0.113.5', duration: '1h' };
    const noCsrf = await call(api, 'POST', '/console/api/bans', {
      body,
      headers: { cookie: headers.cookie as string },
    });
    assert.equal(noCsrf.status, 403);
    const wrongCsrf = await call(api, 'POST', '/console/api/bans', {
      body,
      headers: { ...headers, 'x-jailkeeper-csrf': 'x'.repeat(43) },
    });
    assert.equal(wrongCsrf.status, 403);
    const crossSite = await call(api, 'POST', '/console/api/bans', {
      body,
      headers: { ...headers, 'sec-fetch-site': 'cross-site' },
    });
    assert.equal(crossSite.status, 403);
    const noSession = await call(api, 'POST', '/console/api/bans', {
      body,
      headers: { 'x-jailkeeper-csrf': headers['x-jailkeeper-csrf'] as string },
    });
    assert.equal(noSession.status, 401);
    const bearerOnly = await call(api, 'POST', '/console/api/bans', {
      body,
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(bearerOnly.status, 401, 'the console API takes the session, not the bearer token');
    assert.equal(keeper.check('203.0.113.5').banned, false, 'nothing was banned');
    const ok = await call(api, 'POST', '/console/api/bans', {
      body,
      headers: { ...headers, 'sec-fetch-site': 'same-origin' },
    });
    assert.equal(ok.status, 201);
    assert.ok(keeper.check('203.0.113.5').banned);
    await close();
  });

  it('bans for a duration, pages, unbans and edits the ignore list, each kept in the audit log with who did it', async () => {
    const { api, keeper, close } = setup();
    const headers = await signIn(api, 'bob');
    const banned = await call(api, 'POST', '/console/api/bans', {
      body: { address: '203.0.113.5', jail: 'login', duration: '2h', reason: 'seen\nin logs' },
      headers,
    });
    assert.equal(banned.status, 201);
    assert.equal(data(banned).ban.reason, 'seen in logs', 'control characters are not kept');
    assert.equal(data(banned).ban.origin, 'manual');
    const page = data(await call(api, 'GET', '/console/api/bans?q=203.0.113.0/24&sort=client', { headers }));
    assert.equal(page.total, 1);
    assert.equal(page.bans[0].client, '203.0.113.5');
    assert.ok(page.bans[0].timeLeftMs > 7_000_000);
    const bad = await call(api, 'POST', '/console/api/bans', {
      body: { address: '203.0.113.0/24' },
      headers,
    });
    assert.equal(data(bad).error.code, 'JK_ERR_INVALID_IP');
    const lifted = await call(api, 'DELETE', '/console/api/bans?address=203.0.113.5&jail=login', { headers });
    assert.equal(data(lifted).lifted.length, 1);
    assert.equal(keeper.check('203.0.113.5').banned, false);
    assert.deepEqual(
      data(await call(api, 'POST', '/console/api/ignore', { body: { entry: '198.51.100.0/24' }, headers }))
        .added,
      ['198.51.100.0/24'],
    );
    assert.deepEqual(
      data(await call(api, 'DELETE', '/console/api/ignore?entry=198.51.100.0%2F24', { headers })).removed,
      ['198.51.100.0/24'],
    );
    // The bearer-token API is audited too, with the caller's name when it gives one.
    await call(api, 'POST', '/bans', {
      body: { address: '203.0.113.6' },
      headers: { authorization: `Bearer ${TOKEN}`, 'x-jailkeeper-actor': 'cron' },
    });
    const entries = data(await call(api, 'GET', '/console/api/audit', { headers })).entries as Array<
      Record<string, unknown>
    >;
    assert.deepEqual(
      entries.map((e) => [e.who, e.via, e.action, e.target, e.ok]),
      [
        ['cron', 'api', 'ban', '203.0.113.6', true],
        ['bob', 'console', 'ignore-remove', '198.51.100.0/24', true],
        ['bob', 'console', 'ignore-add', '198.51.100.0/24', true],
        ['bob', 'console', 'unban', '203.0.113.5', true],
        ['bob', 'console', 'ban', '203.0.113.0/24', false],
        ['bob', 'console', 'ban', '203.0.113.5', true],
        ['bob', 'console', 'sign-in', 'bob', true],
      ],
    );
    await close();
  });

  it('streams bans, unbans and summed refusals as server-sent events, replaying after Last-Event-ID', async () => {
    const { api, keeper, close } = setup();
    const headers = await signIn(api);
    const res = await call(api, 'GET', '/console/api/events', { headers });
    assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
    const stream = res.body as Readable;
    let text = '';
    stream.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    const until = async (pattern: RegExp) => {
      for (let i = 0; i < 200 && !pattern.test(text); i++) await new Promise((r) => setTimeout(r, 10));
      assert.match(text, pattern);
    };
    await keeper.ban('203.0.113.7', { reason: '<b>why</b>' });
    await until(
      /event: feed\ndata: \{"type":"ban","jail":"manual","client":"203\.0\.113\.7","reason":"<b>why<\/b>"/,
    );
    for (let i = 0; i < 500; i++) keeper.check('203.0.113.7');
    await until(/"type":"refusal","jail":"manual","client":"203\.0\.113\.7","count":500/);
    await keeper.unban('203.0.113.7');
    await until(/"type":"unban"/);
    const firstId = Number(/id: (\d+)/.exec(text)?.[1]);
    stream.destroy();
    const replay = await call(api, 'GET', '/console/api/events', {
      headers: { ...headers, 'last-event-id': String(firstId) },
    });
    let replayed = '';
    (replay.body as Readable).on('data', (c: Buffer) => {
      replayed += c.toString();
    });
    for (let i = 0; i < 200 && !replayed.includes('"type":"unban"'); i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.match(replayed, /^retry: 2000\n\n/);
    assert.match(replayed, /"type":"refusal"[\s\S]*"type":"unban"/, 'what came after the last event seen');
    assert.doesNotMatch(replayed, new RegExp(`^id: ${firstId}$`, 'm'), 'not what was seen already');
    (replay.body as Readable).destroy();
    await close();
  });
});

describe('console: the per-minute timeline', () => {
  it('counts per minute and per jail over the last hour, forgetting older minutes', () => {
    const clock = createManualClock(Date.UTC(2026, 0, 1, 12, 0, 30));
    const timeline = new Timeline(clock.now);
    timeline.record('failures', 'login', 3);
    timeline.record('bans', 'login');
    clock.advance(60_000);
    timeline.record('failures', 'login');
    timeline.record('refusals', 'scan', 40);
    let s = timeline.series();
    assert.equal(s.minutes.length, 60);
    assert.equal(s.minutes.at(-1), Date.UTC(2026, 0, 1, 12, 1) / 1000);
    assert.deepEqual(s.series.failures.login?.slice(-2), [3, 1]);
    assert.deepEqual(s.series.refusals.scan?.slice(-2), [0, 40]);
    clock.advance(59 * 60_000);
    s = timeline.series();
    assert.deepEqual(s.series.failures.login?.slice(0, 1), [1], 'the minute an hour ago is the first');
    assert.equal(
      s.series.failures.login?.reduce((a, b) => a + b),
      1,
      '12:00 has left the hour',
    );
    clock.advance(60 * 60_000);
    timeline.record('bans', 'login');
    s = timeline.series();
    assert.equal(
      s.series.refusals.scan?.reduce((a, b) => a + b),
      0,
      'a reused slot starts from zero',
    );
    assert.deepEqual(s.series.bans.login?.slice(-1), [1]);
    for (let j = 0; j < 100; j++) timeline.record('failures', `jail-${j}`);
    assert.equal(
      Object.keys(timeline.series().series.failures).length,
      64,
      'bounded: 64 rows, the rest in one',
    );
  });
});

/** A memory store that hands back bans at startup, as a Redis store does for the bans it holds. */
function restoringStore(bans: Array<{ jail: string; client: string }>): Store {
  const base = createMemoryStore();
  return new Proxy(base, {
    get(target, property, receiver) {
      if (property === 'init') {
        return async (ctx: Parameters<Store['init']>[0]) => {
          await target.init(ctx);
          await new Promise((resolve) => setImmediate(resolve)); // after the console is mounted, as Redis answers
          const now = ctx.clock.now();
          for (const { jail, client } of bans) {
            const ban = {
              jail,
              client,
              startMs: now - 60_000,
              endMs: now + 3_600_000,
              banCount: 1,
              reason: 'earlier',
              manual: false,
            };
            ctx.onBan(ban, 'restored');
          }
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

const sum = (series: Record<string, number[]>) =>
  Object.values(series)
    .flat()
    .reduce((a, b) => a + b, 0);

describe('console: the charts count what the feed shows', () => {
  it('takes the refusal counters when the timeline is read: the current minute is complete at once', async () => {
    const { api, keeper, close } = setup();
    const headers = await signIn(api);
    await keeper.ban('203.0.113.8');
    for (let i = 0; i < 7; i++) assert.equal(keeper.check('203.0.113.8').banned, true);
    const t = data(await call(api, 'GET', '/console/api/timeline', { headers }));
    assert.equal(t.series.refusals.manual.at(-1), 7, 'the 7 refusals, without waiting for the 5 s sample');
    assert.equal(t.series.bans.manual.at(-1), 1, 'in the current minute, the last one');
    assert.equal(t.minutes.at(-1), Math.floor(t.nowMs / 60_000) * 60);
    await close();
  });

  it('shows restored bans as one "restored" line, not as ban lines, and charts only the bans made now', async () => {
    const keeper = createJailkeeper({
      jails: { login: { statuses: [401], paths: ['/login'], maxRetry: 2, banTime: '1h' } },
      store: restoringStore([
        { jail: 'login', client: '198.51.100.1' },
        { jail: 'login', client: '198.51.100.2' },
        { jail: 'manual', client: '198.51.100.3' },
      ]),
    });
    const api = createAdminApi(keeper, { token: TOKEN, console: true });
    await keeper.ready;
    const headers = await signIn(api);
    await keeper.ban('203.0.113.9');
    const feed = async () =>
      data(await call(api, 'GET', '/console/api/feed', { headers })).events as FeedEvent[];
    const deadline = Date.now() + 5000;
    while (!(await feed()).some((e) => e.type === 'restored') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const events = await feed();
    const restored = events.filter((e) => e.type === 'restored');
    assert.equal(restored.length, 1, 'one line for the restore');
    assert.equal(restored[0]?.count, 3);
    assert.deepEqual(restored[0]?.jails, { login: 2, manual: 1 });
    const banLines = events.filter((e) => e.type === 'ban');
    assert.deepEqual(
      banLines.map((e) => e.client),
      ['203.0.113.9'],
    );
    const t = data(await call(api, 'GET', '/console/api/timeline', { headers }));
    assert.equal(sum(t.series.bans), banLines.length, 'the charts count the ban lines of the feed');
    assert.ok(keeper.check('198.51.100.1').banned, 'the restored bans are enforced all the same');
    api.close();
    await keeper.close();
  });
});

describe("console: a jail's colour", () => {
  const read = (file: string) =>
    readFileSync(new URL(`../../console/assets/${file}`, import.meta.url), 'utf8');
  it("is the same in the charts' palette (jail-color.js) and the page's dots (console.css)", () => {
    const js = read('jail-color.js');
    const palette = [...(/PALETTE = \[([^\]]+)\]/.exec(js)?.[1] ?? '').matchAll(/'(#[0-9a-f]{6})'/g)].map(
      (m) => m[1],
    );
    assert.equal(palette.length, 10);
    const css = read('console.css');
    const classes = palette.map(
      (_, i) => new RegExp(`\\.jail-c${i} \\{\\s*--jail: (#[0-9a-f]{6});`).exec(css)?.[1],
    );
    assert.deepEqual(classes, palette);
    // The presets' jails and jailkeeper's own each have a colour no other of them has.
    const known = /KNOWN = \{([^}]+)\}/.exec(js)?.[1] ?? '';
    const indexes = [...known.matchAll(/: (\d+)/g)].map((m) => Number(m[1]));
    assert.equal(indexes.length, 6);
    assert.equal(new Set(indexes).size, 6);
  });
});
