import assert from 'node:assert/strict';
import { afterEach, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { systemClock } from '../clock.js';
import type { Ban, FailureResult, FailureRule, Store, StoreContext } from '../store/store.js';

/** A store under test, and how to make another one over the same data (a restart). */
export interface StoreFactory {
  make(): Promise<Store> | Store;
  /** Why the suite cannot run here (its database is not installed): it is skipped with this note. */
  skip?: string | false;
}

/** A store context for a store under test, recording the bans and unbans it reports. */
export function contextFor(events: { bans: Ban[]; unbans: Ban[] } = { bans: [], unbans: [] }): StoreContext {
  return {
    clock: systemClock,
    onBan: (ban) => events.bans.push(ban),
    onUnban: (ban) => events.unbans.push(ban),
    isIgnored: () => false,
    warn: () => {},
  };
}

let unique = 0;
/** A client key no other test uses, so that suites may share one backend. */
export const freshClient = () => `198.18.${(unique >> 8) & 255}.${unique++ & 255}`;

/** A failure rule for tests: 3 failures in 1 minute ban for 1 minute, unless overridden. */
export function rule(overrides: Partial<FailureRule> = {}): FailureRule {
  return {
    jail: 'login',
    findTimeMs: 60_000,
    maxRetry: 3,
    pardonMaxRetry: 3,
    banTimeMs: 60_000,
    increment: null,
    dryRun: false,
    historyTimeMs: 3_600_000,
    recidive: null,
    reason: 'test',
    ...overrides,
  };
}

/** Records one failure of `client` under a test rule. */
export function record(
  store: Store,
  client: string,
  overrides: Partial<FailureRule> = {},
): Promise<FailureResult> {
  return store.recordFailure(rule(overrides), client, 0);
}

/**
 * The contract every store keeps. Durations are real but short: a remote store takes its time
 * from the server, so a manual clock cannot drive it.
 */
export function storeConformance(name: string, factory: StoreFactory): void {
  describe(`store conformance: ${name}`, { skip: factory.skip ?? false }, () => {
    const stores: Store[] = [];
    const open = async () => {
      const store = await factory.make();
      await store.init(contextFor());
      stores.push(store);
      return store;
    };
    // A store with a fallback (the Redis store's degraded mode) must not pass by falling back.
    afterEach(() => {
      for (const store of stores.splice(0)) {
        assert.notEqual(
          (store as { degraded?: boolean }).degraded,
          true,
          `${name} fell back to its local mode`,
        );
      }
    });

    it('counts failures and bans at exactly maxRetry', async () => {
      const store = await open();
      const client = freshClient();
      const r1 = await record(store, client);
      const r2 = await record(store, client);
      assert.deepEqual([r1.count, r1.ban, r2.count, r2.ban], [1, null, 2, null]);
      const r3 = await record(store, client);
      assert.equal(r3.count, 3);
      assert.ok(r3.ban);
      assert.equal(r3.ban.client, client);
      assert.equal(r3.ban.jail, 'login');
      assert.equal(r3.ban.banCount, 1);
      assert.equal(r3.ban.endMs - r3.ban.startMs, 60_000);
      assert.equal(r3.alreadyBanned, false);
      const r4 = await record(store, client);
      assert.equal(r4.alreadyBanned, true);
      assert.equal(r4.ban?.startMs, r3.ban.startMs);
      await store.close();
    });

    it('bans exactly once under concurrent failures', async () => {
      const store = await open();
      const client = freshClient();
      const results = await Promise.all(
        Array.from({ length: 20 }, () => record(store, client, { maxRetry: 5 })),
      );
      assert.equal(results.filter((r) => r.ban && !r.alreadyBanned).length, 1);
      assert.equal(results.find((r) => r.ban && !r.alreadyBanned)?.count, 5);
      assert.equal(results.filter((r) => r.alreadyBanned).length, 15);
      await store.close();
    });

    it('keeps jails and clients apart', async () => {
      const store = await open();
      const a = freshClient();
      const b = freshClient();
      await record(store, a);
      await record(store, a, { jail: 'other' });
      const rb = await record(store, b);
      const ra = await record(store, a);
      assert.deepEqual([rb.count, ra.count], [1, 2]);
      await store.close();
    });

    it('slides the window', async () => {
      const store = await open();
      const client = freshClient();
      await record(store, client, { findTimeMs: 250 });
      await sleep(300);
      const r = await record(store, client, { findTimeMs: 250 });
      assert.equal(r.count, 1);
      await store.close();
    });

    it('ends a ban after banTime, and lists only active bans', async () => {
      const store = await open();
      const client = freshClient();
      const r = await record(store, client, { maxRetry: 1, banTimeMs: 250 });
      assert.ok(r.ban);
      assert.ok((await store.bans()).some((b) => b.client === client));
      await sleep(300);
      await store.sweep();
      assert.ok(!(await store.bans()).some((b) => b.client === client));
      assert.equal((await record(store, client, { maxRetry: 2 })).alreadyBanned, false);
      await store.close();
    });

    it('keeps permanent bans with an infinite end', async () => {
      const store = await open();
      const client = freshClient();
      const r = await record(store, client, { maxRetry: 1, banTimeMs: Number.POSITIVE_INFINITY });
      assert.equal(r.ban?.endMs, Number.POSITIVE_INFINITY);
      const listed = (await store.bans('login')).find((b) => b.client === client);
      assert.equal(listed?.endMs, Number.POSITIVE_INFINITY);
      await store.unban(client);
      await store.close();
    });

    it('raises the threshold while pardoned, without resetting the count', async () => {
      const store = await open();
      const client = freshClient();
      await record(store, client, { pardonMaxRetry: 5 });
      await store.recordPardon('login', client, 60_000);
      const r2 = await record(store, client, { pardonMaxRetry: 5 });
      assert.deepEqual([r2.count, r2.pardoned, r2.maxRetry, r2.ban], [2, true, 5, null]);
      await record(store, client, { pardonMaxRetry: 5 });
      await record(store, client, { pardonMaxRetry: 5 });
      const r5 = await record(store, client, { pardonMaxRetry: 5 });
      assert.ok(r5.ban);
      await store.close();
    });

    it('escalates with the ban history, per jail or overall', async () => {
      const store = await open();
      const client = freshClient();
      const increment = { factor: 1, multipliers: null, maxTimeMs: 10_000, overallJails: false };
      const first = await record(store, client, { maxRetry: 1, banTimeMs: 1000, increment });
      assert.equal(first.ban && first.ban.endMs - first.ban.startMs, 1000);
      await store.unban(client, 'login');
      const second = await record(store, client, { maxRetry: 1, banTimeMs: 1000, increment });
      assert.equal(second.ban && second.ban.endMs - second.ban.startMs, 2000);
      assert.equal(second.ban?.banCount, 2);
      const other = await record(store, client, {
        jail: 'scan',
        maxRetry: 1,
        banTimeMs: 1000,
        increment: { ...increment, overallJails: true },
      });
      assert.equal(other.ban && other.ban.endMs - other.ban.startMs, 4000, 'two earlier bans in other jails');
      await store.unban(client);
      await store.close();
    });

    it('feeds the recidive jail with bans', async () => {
      const store = await open();
      const client = freshClient();
      const recidive = {
        jail: 'recidive',
        findTimeMs: 60_000,
        maxRetry: 2,
        banTimeMs: 600_000,
        dryRun: false,
      };
      const a = await record(store, client, { maxRetry: 1, recidive });
      assert.equal(a.recidive, null);
      await store.unban(client, 'login');
      const b = await record(store, client, { maxRetry: 1, recidive });
      assert.equal(b.recidive?.jail, 'recidive');
      assert.equal(b.recidive && b.recidive.endMs - b.recidive.startMs, 600_000);
      assert.ok((await store.bans('recidive')).some((x) => x.client === client));
      await store.unban(client);
      await store.close();
    });

    it('makes no ban in a dry run, and says what it would have been', async () => {
      const store = await open();
      const client = freshClient();
      const r = await record(store, client, { maxRetry: 1, dryRun: true });
      assert.equal(r.ban, null);
      assert.equal(r.wouldBan?.client, client);
      assert.ok(!(await store.bans()).some((b) => b.client === client));
      await store.close();
    });

    it('bans by hand, replacing, and unbans with the counters', async () => {
      const store = await open();
      const client = freshClient();
      await record(store, client);
      const manual = await store.ban({
        jail: 'login',
        client,
        durationMs: 5000,
        reason: 'ops',
        historyTimeMs: 60_000,
      });
      assert.equal(manual.manual, true);
      assert.equal(manual.reason, 'ops');
      const longer = await store.ban({
        jail: 'login',
        client,
        durationMs: 9000,
        reason: 'ops2',
        historyTimeMs: 60_000,
      });
      const listed = (await store.bans('login')).filter((b) => b.client === client);
      assert.equal(listed.length, 1);
      assert.equal(listed[0]?.endMs, longer.endMs);
      const lifted = await store.unban(client, 'login');
      assert.equal(lifted.length, 1);
      assert.equal((await record(store, client)).count, 1, 'counters were cleared');
      await store.close();
    });

    it('unbans all, per jail', async () => {
      const store = await open();
      const a = freshClient();
      const b = freshClient();
      await store.ban({ jail: 'j1', client: a, durationMs: 60_000, reason: '', historyTimeMs: 1000 });
      await store.ban({ jail: 'j2', client: b, durationMs: 60_000, reason: '', historyTimeMs: 1000 });
      const lifted = await store.unbanAll('j1');
      assert.ok(lifted.some((x) => x.client === a));
      assert.ok(!lifted.some((x) => x.client === b));
      assert.ok((await store.bans('j2')).some((x) => x.client === b));
      await store.unbanAll('j2');
      await store.close();
    });

    it('bansPage returns at most limit, a client banned in several jails included, and walks every ban', async () => {
      const store = await open();
      if (store.bansPage === undefined) {
        await store.close();
        return;
      }
      const tag = unique++;
      const jails = [`pa${tag}`, `pb${tag}`, `pc${tag}`];
      const several = freshClient();
      for (const jail of jails) {
        await store.ban({ jail, client: several, durationMs: 60_000, reason: '', historyTimeMs: 1000 });
      }
      const others = [freshClient(), freshClient(), freshClient()];
      for (const client of others) {
        await store.ban({
          jail: jails[0] as string,
          client,
          durationMs: 60_000,
          reason: '',
          historyTimeMs: 1000,
        });
      }
      const walk = async (limit: number, jail?: string) => {
        const seen: string[] = [];
        let after: string | undefined;
        const cursors = new Set<string>();
        for (let pages = 0; pages < 100_000; pages++) {
          const page = await store.bansPage?.({ jail, after, limit });
          assert.ok(page !== undefined);
          assert.ok(page.bans.length <= limit, `a page of limit ${limit} held ${page.bans.length}`);
          for (const ban of page.bans) if (jails.includes(ban.jail)) seen.push(`${ban.jail} ${ban.client}`);
          after = page.next;
          if (after === undefined) return seen.sort();
          // A cursor given twice would walk for ever: a failure, not a hang.
          assert.ok(!cursors.has(after), `the cursor ${after} came back: the walk goes round`);
          cursors.add(after);
        }
        assert.fail('the walk never ended');
      };
      const expected = [
        ...jails.map((jail) => `${jail} ${several}`),
        ...others.map((client) => `${jails[0]} ${client}`),
      ].sort();
      assert.deepEqual(await walk(1), expected);
      assert.deepEqual(await walk(2), expected);
      assert.deepEqual(
        await walk(2, jails[0]),
        expected.filter((k) => k.startsWith(`${jails[0]} `)),
      );
      for (const jail of jails) await store.unbanAll(jail);
      await store.close();
    });

    it('reports status counts', async () => {
      const store = await open();
      const jail = `st${unique++}`;
      await record(store, freshClient(), { jail });
      const banned = freshClient();
      await record(store, banned, { jail, maxRetry: 1 });
      const status = (await store.status([jail]))[jail];
      assert.deepEqual(status, { currentlyFailed: 1, totalFailed: 2, currentlyBanned: 1, totalBanned: 1 });
      await store.close();
    });

    describe('reservations (reserve, settle)', () => {
      /** A fresh store and its reserve/settle; skips the test (closing the store) for a store without them. */
      const openReserving = async (t: TestContext) => {
        const store = await open();
        if (store.reserve === undefined || store.settle === undefined) {
          await store.close();
          t.skip(`${name} has no reserve()`);
          return undefined;
        }
        return { store, r: { reserve: store.reserve.bind(store), settle: store.settle.bind(store) } };
      };
      let id = 0;
      const nextId = () => `r${process.pid}-${id++}`;

      it('admits exactly the remaining budget when attempts arrive at once, and frees slots on settle', async (t) => {
        const opened = await openReserving(t);
        if (opened === undefined) return;
        const { store, r } = opened;
        const client = freshClient();
        const ids = Array.from({ length: 20 }, nextId);
        const answers = await Promise.all(ids.map((i) => r.reserve(rule(), client, i, 60_000)));
        const admitted = ids.filter((_, i) => answers[i]?.admitted);
        assert.equal(admitted.length, 3, 'maxRetry attempts in flight, no more');
        assert.ok(answers.every((a) => a.admitted || (a.ban === null && a.maxRetry === 3)));
        // A success frees its slot; a failure is counted and keeps the budget used.
        assert.equal(await r.settle(rule(), client, admitted[0] as string, false, 0), null);
        const again = await r.reserve(rule(), client, nextId(), 60_000);
        assert.equal(again.admitted, true);
        assert.equal(again.inFlight, 3);
        const failed = await r.settle(rule(), client, admitted[1] as string, true, 0);
        assert.equal(failed?.count, 1);
        assert.equal(
          (await r.reserve(rule(), client, nextId(), 60_000)).admitted,
          false,
          'count 1 + 2 open = 3',
        );
        await store.close();
      });

      it('bans at the threshold through settle, and then refuses with the ban', async (t) => {
        const opened = await openReserving(t);
        if (opened === undefined) return;
        const { store, r } = opened;
        const client = freshClient();
        const ids = [nextId(), nextId(), nextId()];
        for (const i of ids) assert.equal((await r.reserve(rule(), client, i, 60_000)).admitted, true);
        const results = [];
        for (const i of ids) results.push(await r.settle(rule(), client, i, true, 0));
        assert.deepEqual(
          results.map((x) => x?.count),
          [1, 2, 3],
        );
        assert.ok(results[2]?.ban, 'the third failure bans');
        const refused = await r.reserve(rule(), client, nextId(), 60_000);
        assert.equal(refused.admitted, false);
        assert.equal(refused.ban?.client, client);
        await store.close();
      });

      it('a reservation never settled stops holding its slot after holdMs', async (t) => {
        const opened = await openReserving(t);
        if (opened === undefined) return;
        const { store, r } = opened;
        const client = freshClient();
        for (let i = 0; i < 3; i++) await r.reserve(rule(), client, nextId(), 200);
        assert.equal((await r.reserve(rule(), client, nextId(), 200)).admitted, false);
        await sleep(300); // the holds are measured in the store's time: they must pass
        assert.equal((await r.reserve(rule(), client, nextId(), 200)).admitted, true);
        await store.close();
      });

      it('settling an unknown reservation as failed still counts it', async (t) => {
        const opened = await openReserving(t);
        if (opened === undefined) return;
        const { store, r } = opened;
        const client = freshClient();
        const result = await r.settle(rule(), client, 'never-reserved', true, 0);
        assert.equal(result?.count, 1);
        await store.close();
      });

      it('uses the pardoned threshold while pardoned, and unban frees every slot', async (t) => {
        const opened = await openReserving(t);
        if (opened === undefined) return;
        const { store, r } = opened;
        const client = freshClient();
        const pardoned = rule({ pardonMaxRetry: 6 });
        await store.recordPardon('login', client, 60_000);
        const answers = await Promise.all(
          Array.from({ length: 10 }, () => r.reserve(pardoned, client, nextId(), 60_000)),
        );
        assert.equal(answers.filter((a) => a.admitted).length, 6);
        await store.unban(client, 'login');
        assert.equal(
          (await r.reserve(pardoned, client, nextId(), 60_000)).inFlight,
          1,
          'unban cleared the slots',
        );
        await store.close();
      });
    });
  });
}
