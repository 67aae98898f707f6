/**
 * Issue 14, the engine and the memory store: bans held compactly and expired by end time, paged
 * walks, history bounded, the ban clock, requests held until the store has loaded, range bans for
 * IPv6 rotation, and the snapshot's failure modes. The Redis side is in test/issue-14*.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createAdapterKit, type RefusalWriter } from '../src/adapter/index.js';
import { createJailkeeper, createMemoryStore, type Store } from '../src/index.js';
import { createManualClock, type ManualClock } from '../src/operator/index.js';
import { BanTable } from '../src/store/ban-table.js';
import type { Ban, FailureResult, StoreContext, StoreJailStatus } from '../src/store/index.js';
import { contextFor, quietLogger, recordingLogger, until } from '../src/testing/index.js';

type ClientIdentity = NonNullable<ReturnType<ReturnType<typeof createJailkeeper>['identify']>>;
const NO_WRITER: RefusalWriter<unknown> = { drop() {}, status() {}, header() {}, send() {} };

const MIN = 60_000;
const fail = (client: string) => ({ client, method: 'POST', path: '/login', status: 401 });
const ban = (client: string, endMs: number, jail = 'login') => ({
  jail,
  client,
  startMs: 0,
  endMs,
  banCount: 1,
  reason: 'r',
  manual: false,
});

describe('the ban table: compact, expired by end time', () => {
  it('expires exactly the bans that ended, to the millisecond, whatever else it holds', () => {
    const t = new BanTable();
    for (let i = 0; i < 1000; i++) t.set(ban(`10.0.${i >> 8}.${i & 255}`, Number.POSITIVE_INFINITY));
    t.set(ban('10.9.0.1', 5_400));
    t.set(ban('10.9.0.2', 5_500));
    t.set(ban('10.9.0.3', 7_000));
    const ended: string[] = [];
    t.expire(5_450, (s) => ended.push(t.client(s)));
    assert.deepEqual(ended, ['10.9.0.1'], 'same second, later end: kept');
    t.expire(6_999, (s) => ended.push(t.client(s)));
    assert.deepEqual(ended, ['10.9.0.1', '10.9.0.2']);
    t.expire(10_000, (s) => ended.push(t.client(s)));
    assert.deepEqual(ended, ['10.9.0.1', '10.9.0.2', '10.9.0.3']);
    assert.equal(t.size, 1000, 'permanent bans never expire');
  });

  it('replaces a ban in place (its old end no longer expires it), chains jails per client, frees slots', () => {
    const t = new BanTable();
    t.set(ban('10.0.0.1', 1_000));
    t.set(ban('10.0.0.1', 9_000)); // replaced: ends later
    t.set(ban('10.0.0.1', 2_000, 'scan'));
    assert.equal(t.size, 2);
    const ended: string[] = [];
    t.expire(5_000, (s) => ended.push(t.jail(s)));
    assert.deepEqual(ended, ['scan']);
    assert.equal(t.endMs(t.find('10.0.0.1', 'login')), 9_000);
    t.remove(t.find('10.0.0.1', 'login'));
    assert.equal(t.head('10.0.0.1'), -1);
    assert.deepEqual([...t.counts()], []);
  });

  it('pages cover every ban once and never split a client', () => {
    const t = new BanTable();
    for (let i = 0; i < 250; i++) {
      t.set(ban(`10.1.0.${i}`, Number.POSITIVE_INFINITY));
      if (i % 3 === 0) t.set(ban(`10.1.0.${i}`, Number.POSITIVE_INFINITY, 'scan'));
    }
    const seen = new Map<string, number>();
    let after: number | undefined;
    let pages = 0;
    do {
      const page = t.page(after, 40, 0);
      pages++;
      const clients = new Set(page.bans.map((b) => b.client));
      for (const c of clients) {
        assert.ok(!seen.has(c), `${c} in two pages`);
        seen.set(c, page.bans.filter((b) => b.client === c).length);
      }
      after = page.next;
    } while (after !== undefined);
    assert.equal(seen.size, 250);
    assert.equal(
      [...seen.values()].reduce((a, b) => a + b),
      250 + 84,
    );
    assert.ok(pages >= 8 && pages <= 10, `${pages} pages`);
  });
});

describe('the memory store: bounded history, sliced sweeps', () => {
  it('an active ban is its own history: escalation and counts as before, no entry until it ends', async () => {
    const store = createMemoryStore({ maxTrackedClients: 3 });
    const clock = createManualClock();
    await store.init({ ...contextFor(), clock });
    const increment = { factor: 1, multipliers: null, maxTimeMs: 10 * 3_600_000, overallJails: false };
    const rule = {
      jail: 'login',
      findTimeMs: MIN,
      maxRetry: 1,
      pardonMaxRetry: 1,
      banTimeMs: 20 * MIN,
      increment,
      dryRun: false,
      historyTimeMs: 3_600_000,
      recidive: null,
      reason: 'r',
    };
    const first = await store.recordFailure(rule, '10.2.0.1', 0);
    assert.equal(store.trackedClients.history, 0, 'no history entry while the ban is active');
    await store.unban('10.2.0.1');
    assert.equal(store.trackedClients.history, 1);
    const second = await store.recordFailure(rule, '10.2.0.1', 0);
    assert.deepEqual(
      [first.ban?.banCount, second.ban?.banCount, second.ban && second.ban.endMs - second.ban.startMs],
      [1, 2, 40 * MIN],
    );
    // Bounded: more clients than the cap leave the oldest entries out.
    for (let i = 2; i < 8; i++) {
      await store.recordFailure(rule, `10.2.0.${i}`, 0);
      await store.unban(`10.2.0.${i}`);
    }
    assert.equal(store.trackedClients.history, 3);
    await store.close();
  });

  it('a sweep looks at a bounded slice of counters, pardons and history, and at what expires of the bans', async () => {
    const clock = createManualClock();
    const keeper = createJailkeeper({
      clock,
      logger: quietLogger,
      jails: { login: { statuses: [401], maxRetry: 2, banTime: '1h', findTime: '1m' } },
    });
    for (let i = 0; i < 50; i++) await keeper.observe(fail(`10.3.0.${i}`));
    for (let i = 0; i < 10; i++) {
      await keeper.observe(fail(`10.4.0.${i}`));
      await keeper.observe(fail(`10.4.0.${i}`));
    }
    assert.equal((keeper.store as ReturnType<typeof createMemoryStore>).trackedClients.size, 50);
    clock.advance(2 * MIN);
    await keeper.sweep();
    assert.equal((keeper.store as ReturnType<typeof createMemoryStore>).trackedClients.size, 0);
    assert.equal(keeper.activeBans().length, 10);
    clock.advance(3_600_000);
    await keeper.sweep();
    assert.equal(keeper.activeBans().length, 0);
    assert.deepEqual(keeper.banCounts(), {});
    await keeper.close();
  });
});

describe('paged bans', () => {
  it('bansPage walks every ban once; bans() still lists them all, soonest end first', async () => {
    const keeper = createJailkeeper({
      logger: quietLogger,
      jails: { login: { statuses: [401], maxRetry: 1 } },
    });
    for (let i = 0; i < 120; i++) await keeper.ban(`10.5.0.${i}`, { duration: `${120 - i}m` });
    const seen: string[] = [];
    let after: string | undefined;
    do {
      const page = await keeper.bansPage({ after, limit: 25 });
      assert.ok(page.bans.length <= 25);
      for (const b of page.bans) seen.push(b.client);
      after = page.next;
    } while (after !== undefined);
    assert.equal(new Set(seen).size, 120);
    const all = await keeper.bans();
    assert.equal(all.length, 120);
    assert.equal(all[0]?.client, '10.5.0.119');
    await assert.rejects(keeper.bansPage({ limit: 0 }), { code: 'JK_ERR_INVALID_ARGUMENT' });
    await keeper.close();
  });
});

/** A shared store reduced to what this test needs: it reports bans written in its own clock. */
class OwnClockStore implements Store {
  readonly name = 'own-clock';
  readonly clock: ManualClock;
  ctx: StoreContext | undefined;
  constructor(clock: ManualClock) {
    this.clock = clock;
  }
  init(ctx: StoreContext): void {
    this.ctx = ctx;
  }
  report(startMs: number, endMs: number): void {
    this.ctx?.onBan(
      { jail: 'login', client: '10.6.0.1', startMs, endMs, banCount: 1, reason: 'r', manual: false },
      'remote',
    );
  }
  recordFailure(): Promise<FailureResult> {
    throw new Error('not used');
  }
  async recordPardon(): Promise<void> {}
  ban(): Promise<Ban> {
    throw new Error('not used');
  }
  async unban(): Promise<Ban[]> {
    return [];
  }
  async unbanAll(): Promise<Ban[]> {
    return [];
  }
  async bans(): Promise<Ban[]> {
    return [];
  }
  async status(): Promise<Record<string, StoreJailStatus>> {
    return {};
  }
  async sweep(): Promise<Ban[]> {
    return [];
  }
  async close(): Promise<void> {}
}

describe('the ban clock: bans are judged in the store’s time', () => {
  const T = Date.UTC(2026, 0, 1);
  for (const [name, skew] of [
    ['two hours ahead', 2 * 3_600_000],
    ['two hours behind', -2 * 3_600_000],
  ] as const) {
    it(`an app clock ${name} neither shortens nor lengthens a ban the store made`, async () => {
      const storeClock = createManualClock(T);
      const store = new OwnClockStore(storeClock);
      const keeper = createJailkeeper({
        clock: createManualClock(T + skew),
        store,
        logger: quietLogger,
        jails: { login: { statuses: [401], maxRetry: 1 } },
      });
      store.report(T, T + 3_600_000);
      const verdict = keeper.check('10.6.0.1');
      assert.equal(verdict.banned, true, 'enforced, whatever the app clock says');
      assert.equal(keeper.banClock, storeClock);
      assert.equal(
        verdict.banned && verdict.untilMs - keeper.banClock.now(),
        3_600_000,
        'time left in the store’s clock (Retry-After)',
      );
      storeClock.advance(3_600_000 - 1);
      await keeper.sweep();
      assert.equal(keeper.check('10.6.0.1').banned, true, 'not a millisecond short');
      storeClock.advance(1);
      await keeper.sweep();
      assert.equal(keeper.check('10.6.0.1').banned, false, 'not a millisecond long');
      await keeper.close();
    });
  }
});

/** A property of the memory store, its methods bound to it (they use private fields). */
function bound(target: object, key: string | symbol): unknown {
  const value = Reflect.get(target, key, target);
  return typeof value === 'function' ? value.bind(target) : value;
}

describe('adapters hold requests until the store has loaded', () => {
  /** A store whose load finishes when the test says. */
  function slowStore() {
    let finish: () => void = () => {};
    const inner = createMemoryStore();
    const loaded = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const store: Store = new Proxy(inner, {
      get: (target, key) =>
        key === 'init'
          ? async (ctx: StoreContext) => {
              await target.init(ctx);
              await loaded;
              ctx.onBan(
                {
                  jail: 'login',
                  client: '10.7.0.1',
                  startMs: ctx.clock.now(),
                  endMs: ctx.clock.now() + MIN,
                  banCount: 1,
                  reason: 'r',
                  manual: false,
                },
                'restored',
              );
            }
          : bound(target, key),
    });
    return { store, finish };
  }

  it('a banned client’s first request, before ready, is judged once the bans are loaded', async () => {
    const { store, finish } = slowStore();
    const keeper = createJailkeeper({ store, logger: quietLogger, jails: { login: { statuses: [401] } } });
    const kit = createAdapterKit({ keeper, keeperAt: 'k', options: {}, optionsAt: 'o', writer: NO_WRITER });
    const id = keeper.identify('10.7.0.1');
    assert.ok(id);
    const verdicts: boolean[] = [];
    const admit = (who: ClientIdentity) => {
      const ready = kit.ready(who);
      if (ready === undefined) verdicts.push(keeper.check(who).banned);
      else void ready.then(() => verdicts.push(keeper.check(who).banned));
    };
    admit(id);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(verdicts.length, 0, 'held while the store loads');
    finish();
    await until(() => verdicts.length === 1, { within: 2000 });
    assert.deepEqual(verdicts, [true], 'refused: its ban was loaded first');
    admit(id);
    assert.deepEqual(verdicts, [true, true], 'once ready, nothing waits');
    await keeper.close();
  });

  it('the wait is bounded by readyTimeout: requests go on, and a warning says why', async () => {
    const { store, finish } = slowStore();
    const logger = recordingLogger();
    const keeper = createJailkeeper({ store, logger, jails: { login: { statuses: [401] } } });
    const kit = createAdapterKit({
      keeper,
      keeperAt: 'k',
      options: { readyTimeout: 100 },
      optionsAt: 'o',
      writer: NO_WRITER,
    });
    const id = keeper.identify('10.7.0.2');
    assert.ok(id);
    const started = Date.now();
    const admitted: number[] = [];
    for (let i = 0; i < 3; i++) void kit.ready(id)?.then(() => admitted.push(Date.now() - started));
    await until(() => admitted.length === 3, { within: 2000 });
    assert.ok(
      admitted.every((ms) => ms >= 90 && ms < 1000),
      admitted.join(' '),
    );
    assert.deepEqual(
      logger.lines.filter((l) => l.level === 'warn').map((l) => l.code),
      ['JK_WRN_NOT_READY'],
    );
    finish();
    await keeper.close();
  });

  it('readyTimeout is validated once, at setup', () => {
    const keeper = createJailkeeper({ logger: quietLogger, jails: { login: { statuses: [401] } } });
    assert.throws(
      () =>
        createAdapterKit({
          keeper,
          keeperAt: 'k',
          options: { readyTimeout: 'soon' },
          optionsAt: 'o',
          writer: NO_WRITER,
        }),
      { code: 'JK_ERR_INVALID_DURATION' },
    );
  });
});
