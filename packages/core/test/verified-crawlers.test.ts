import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { createManualClock } from '../src/clock.js';
import type { ResponseEvent } from '../src/engine/events.js';
import { createJailkeeper, type Jailkeeper } from '../src/engine/keeper.js';
import type { JailkeeperOptions } from '../src/engine/options.js';
import type { CrawlerResolver } from '../src/engine/verified-crawlers.js';
import { JailkeeperConfigError } from '../src/errors.js';

const GOOGLEBOT_UA = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';
const BINGBOT_UA = 'Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)';

/** A DNS that answers from tables and counts its queries: no test here touches real DNS. */
function fakeDns(ptr: Record<string, string[]>, forward: Record<string, string[]>) {
  const calls = { reverse: 0, lookup: 0 };
  const resolver: CrawlerResolver = {
    async reverse(ip) {
      calls.reverse++;
      const names = ptr[ip];
      if (names === undefined) throw Object.assign(new Error(`no PTR for ${ip}`), { code: 'ENOTFOUND' });
      return names;
    },
    async lookup(name) {
      calls.lookup++;
      return forward[name] ?? [];
    },
  };
  return { resolver, calls };
}

const REAL = '66.249.66.1';
const FAKE = '192.0.2.222';
const dns = () =>
  fakeDns(
    {
      [REAL]: ['crawl-66-249-66-1.googlebot.com'],
      // An impostor may set any PTR for its own addresses: the forward lookup is what proves it.
      '198.51.100.9': ['crawl-1-2-3-4.googlebot.com.'],
      '2001:db8::1': ['msnbot-1.search.msn.com'],
      [FAKE]: ['host.example.net'],
    },
    {
      'crawl-66-249-66-1.googlebot.com': [REAL],
      'crawl-1-2-3-4.googlebot.com': ['66.249.66.4'],
      'msnbot-1.search.msn.com': ['2001:0db8:0000::0001'],
    },
  );

let open: Jailkeeper[] = [];
afterEach(async () => {
  await Promise.all(open.map((k) => k.close()));
  open = [];
});

function keeper(options: Omit<JailkeeperOptions, 'clock'>, clock = createManualClock()) {
  const k = createJailkeeper({ ...options, clock });
  open.push(k);
  return { k, clock };
}

const hit = (client: string, userAgent: string, extra: Partial<ResponseEvent> = {}): ResponseEvent => ({
  client,
  method: 'GET',
  path: '/',
  status: 200,
  userAgent,
  ...extra,
});

/** fail2ban's apache-fakegooglebot as jailkeeper runs it, plus a 404 jail that spares nobody. */
function fakeGooglebotJails(resolver: CrawlerResolver, extra: object = {}) {
  return keeper({
    jails: {
      fakegooglebot: { userAgents: ['Googlebot'], maxRetry: 1, banTime: '1d' },
      notfound: { statuses: [404], maxRetry: 10 },
    },
    verifiedCrawlers: { jails: ['fakegooglebot'], resolver, ...extra },
  });
}

describe('verified crawlers', () => {
  it('bans a fake Googlebot at once and spares the real one, confirmed by reverse then forward DNS', async () => {
    const { resolver, calls } = dns();
    const { k } = fakeGooglebotJails(resolver);
    const bans: string[] = [];
    k.on('ban', (ban) => bans.push(ban.client));

    const fake = await k.observe(hit(FAKE, GOOGLEBOT_UA));
    assert.deepEqual(
      fake.jails.map((j) => [j.jail, j.action]),
      [['fakegooglebot', 'banned']],
    );
    assert.equal(k.check(FAKE).banned, true);

    const real = await k.observe(hit(REAL, GOOGLEBOT_UA));
    assert.deepEqual(real.jails, [], 'the real crawler is counted nowhere');
    assert.equal(k.check(REAL).banned, false);
    assert.deepEqual(bans, [FAKE]);
    assert.deepEqual(calls, { reverse: 2, lookup: 1 }, 'the fake had no name in Google’s domains');
  });

  it('counts an address whose PTR names Google but whose name does not resolve back to it', async () => {
    const { resolver } = dns();
    const { k } = fakeGooglebotJails(resolver);
    const result = await k.observe(hit('198.51.100.9', GOOGLEBOT_UA));
    assert.deepEqual(
      result.jails.map((j) => j.action),
      ['banned'],
    );
  });

  it('a verified crawler is still counted by the jails it is not spared in', async () => {
    const { resolver } = dns();
    const { k } = fakeGooglebotJails(resolver);
    const result = await k.observe(hit(REAL, GOOGLEBOT_UA, { path: '/old-page', status: 404 }));
    assert.deepEqual(
      result.jails.map((j) => [j.jail, j.action]),
      [['notfound', 'counted']],
    );
  });

  it('asks DNS only for a claimed crawler that a covered jail would count, once per address', async () => {
    const { resolver, calls } = dns();
    const { k } = keeper({
      jails: { notfound: { statuses: [404], maxRetry: 10 } },
      verifiedCrawlers: { resolver },
    });
    // A clean client, and a browser failing: no lookup.
    await k.observe(hit('203.0.113.5', 'Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0'));
    const browser = await k.observe(hit('203.0.113.5', 'Mozilla/5.0 Firefox/128.0', { status: 404 }));
    assert.deepEqual(
      browser.jails.map((j) => j.action),
      ['counted'],
    );
    // The crawler's 200s fail no jail: no lookup either.
    await k.observe(hit(REAL, GOOGLEBOT_UA));
    assert.deepEqual(calls, { reverse: 0, lookup: 0 });

    // Its 404s would count: verified once, then from the cache, concurrent lookups shared.
    const results = await Promise.all([
      k.observe(hit(REAL, GOOGLEBOT_UA, { status: 404 })),
      k.observe(hit(REAL, GOOGLEBOT_UA, { status: 404 })),
    ]);
    await k.observe(hit(REAL, GOOGLEBOT_UA, { status: 404 }));
    assert.deepEqual(
      results.map((r) => r.jails.length),
      [0, 0],
    );
    assert.deepEqual(calls, { reverse: 1, lookup: 1 });
    assert.equal((await k.status()).jails.notfound?.currentlyFailed, 1, 'only the browser is failing');
  });

  it('keeps verdicts for cacheTime on the keeper clock, then asks again', async () => {
    const { resolver, calls } = dns();
    const { k, clock } = keeper({
      jails: { fakegooglebot: { userAgents: ['Googlebot'], maxRetry: 3 } },
      verifiedCrawlers: { resolver, cacheTime: '1h' },
    });
    await k.observe(hit(REAL, GOOGLEBOT_UA));
    clock.advance(59 * 60_000);
    await k.observe(hit(REAL, GOOGLEBOT_UA));
    assert.equal(calls.reverse, 1);
    clock.advance(2 * 60_000);
    await k.observe(hit(REAL, GOOGLEBOT_UA));
    assert.equal(calls.reverse, 2);
  });

  it('verifies Bingbot, IPv6 included, whatever the spelling of the forward answer', async () => {
    const { resolver } = dns();
    const { k } = keeper({
      jails: { bots: { userAgents: ['bingbot'], maxRetry: 1 } },
      verifiedCrawlers: { resolver },
    });
    assert.deepEqual((await k.observe(hit('2001:db8::1', BINGBOT_UA))).jails, []);
    assert.deepEqual(
      (await k.observe(hit('2001:db8::2', BINGBOT_UA))).jails.map((j) => j.action),
      ['banned'],
    );
  });

  it('counts a claimed crawler when DNS does not answer in time, and warns once', async () => {
    let lookups = 0;
    const silent: CrawlerResolver = {
      reverse: () => {
        lookups++;
        return new Promise(() => {});
      },
      lookup: () => new Promise(() => {}),
    };
    const { k } = keeper({
      jails: { fakegooglebot: { userAgents: ['Googlebot'], maxRetry: 2 } },
      verifiedCrawlers: { resolver: silent, timeout: 50 },
      logger: { info() {}, warn() {}, error() {} },
    });
    const warnings: string[] = [];
    k.on('warning', (w) => warnings.push(w.code));
    const first = await k.observe(hit(REAL, GOOGLEBOT_UA));
    assert.deepEqual(
      first.jails.map((j) => j.action),
      ['counted'],
    );
    // The failed verdict is kept: the next response is counted without waiting for DNS again.
    const second = await k.observe(hit(REAL, GOOGLEBOT_UA));
    assert.deepEqual(
      second.jails.map((j) => j.action),
      ['banned'],
    );
    assert.equal(lookups, 1);
    assert.deepEqual(warnings, ['JK_WRN_CRAWLER_DNS']);
  });

  it('validates the option at setup, naming it', () => {
    const { resolver } = dns();
    const cases: Array<[unknown, string, string]> = [
      [{ jails: ['nope'] }, 'JK_ERR_INVALID_OPTION', 'verifiedCrawlers.jails[0]'],
      [{ colour: 'red' }, 'JK_ERR_UNKNOWN_OPTION', 'verifiedCrawlers.colour'],
      [{ crawlers: ['yandex'] }, 'JK_ERR_INVALID_OPTION', 'verifiedCrawlers.crawlers[0]'],
      [{ resolver: {} }, 'JK_ERR_INVALID_OPTION', 'verifiedCrawlers.resolver'],
      [{ timeout: 'soon' }, 'JK_ERR_INVALID_DURATION', 'verifiedCrawlers.timeout'],
      [
        { crawlers: [{ name: 'yandex', userAgent: /YandexBot/g, domains: ['yandex.ru'] }] },
        'JK_ERR_INVALID_OPTION',
        'verifiedCrawlers.crawlers[0].userAgent',
      ],
    ];
    for (const [value, code, option] of cases) {
      assert.throws(
        () =>
          createJailkeeper({
            jails: { bots: { userAgents: ['bot'] } },
            verifiedCrawlers: { resolver, ...(value as object) },
          }),
        (error: unknown) =>
          error instanceof JailkeeperConfigError && error.code === code && error.option === option,
        `${JSON.stringify(value)} → ${code} ${option}`,
      );
    }
  });

  it('takes custom crawler definitions', async () => {
    const custom = fakeDns(
      { '192.0.2.50': ['spider-1.crawl.yandex.ru'] },
      { 'spider-1.crawl.yandex.ru': ['192.0.2.50'] },
    );
    const { k } = keeper({
      jails: { bots: { userAgents: ['YandexBot'], maxRetry: 1 } },
      verifiedCrawlers: {
        resolver: custom.resolver,
        crawlers: [{ name: 'yandex', userAgent: /YandexBot/, domains: ['yandex.ru'] }],
      },
    });
    assert.deepEqual(
      (await k.observe(hit('192.0.2.50', 'Mozilla/5.0 (compatible; YandexBot/3.0)'))).jails,
      [],
    );
  });
});
