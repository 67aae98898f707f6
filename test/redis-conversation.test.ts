/**
 * One conversation per (jail, client) per instance (issue 25): a burst of attempts from one client
 * costs a few script calls, not one per attempt, and the answers are those of calls made one by
 * one. Script calls are counted by Redis itself (INFO commandstats), on a Redis of the test's own.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FailureResult, FailureRule, Reservation } from '@jailkeeper/core/store';
import { quietLogger, until } from '@jailkeeper/core/testing';
import { createRedisStore, type RedisStore } from '@jailkeeper/redis';
import { Redis } from 'ioredis';
import { monitorRedis, startRedis, type TestRedis } from './redis-server.js';

let redis: TestRedis;
let admin: Redis;
let client: Redis;
let store: RedisStore;
let run = 0;

const rule: FailureRule = {
  jail: 'login',
  findTimeMs: 600_000,
  maxRetry: 5,
  pardonMaxRetry: 5,
  banTimeMs: 3_600_000,
  increment: null,
  dryRun: false,
  historyTimeMs: 86_400_000,
  recidive: null,
  reason: 'test',
};

before(async () => {
  redis = await startRedis();
  admin = new Redis(redis.url);
  client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  store = createRedisStore({ client, prefix: `jkconv${process.pid}:`, loadBans: false, timeout: 2000 });
  await store.init({
    clock: { now: () => Date.now() },
    onBan() {},
    onUnban() {},
    isIgnored: () => false,
    warn: (code, message) => quietLogger.warn({ code }, message),
  });
  // The script's first use loads it (EVALSHA, NOSCRIPT, then EVAL): not part of what is counted.
  await store.reserve(rule, '198.51.100.250', 'warm-up', 1000);
});
after(async () => {
  await store.close();
  client.disconnect();
  admin.disconnect();
  await redis.stop();
});

/** Script calls Redis has run so far (EVAL and EVALSHA). */
async function scriptCalls(): Promise<number> {
  const info = await admin.info('commandstats');
  let calls = 0;
  for (const m of info.matchAll(/^cmdstat_(?:eval|evalsha):calls=(\d+)/gm)) calls += Number(m[1]);
  return calls;
}

const ip = () => `198.51.100.${++run}`;

describe('the Redis store: one conversation per client and jail', () => {
  it('200 reservations at once: exactly maxRetry admitted, in one script call', async () => {
    const who = ip();
    const before = await scriptCalls();
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) => store.reserve(rule, who, `a${i}`, 60_000)),
    );
    const calls = (await scriptCalls()) - before;
    assert.equal(answers.filter((a) => a.admitted).length, 5);
    assert.ok(answers.filter((a) => !a.admitted).every((a) => a.ban === null && a.count + a.inFlight === 5));
    assert.equal(calls, 1, `${calls} script calls for 200 reservations`);
  });

  it('while a call is out, the next calls go together in one more', async () => {
    const who = ip();
    const before = await scriptCalls();
    const first = store.reserve(rule, who, 'b0', 60_000);
    await new Promise((resolve) => setImmediate(resolve)); // the first call is out
    const rest = Array.from({ length: 50 }, (_, i) => store.reserve(rule, who, `b${i + 1}`, 60_000));
    const answers = await Promise.all([first, ...rest]);
    assert.equal(answers.filter((a) => a.admitted).length, 5);
    const calls = (await scriptCalls()) - before;
    assert.ok(calls <= 2, `${calls} script calls`);
  });

  it('settles of a burst go together, count in order and ban at the threshold; a refusal is not kept past a settle', async () => {
    const who = ip();
    const ids = Array.from({ length: 5 }, (_, i) => `c${i}`);
    for (const id of ids) assert.equal((await store.reserve(rule, who, id, 60_000)).admitted, true);
    const refused = await store.reserve(rule, who, 'c-extra', 60_000);
    assert.equal(refused.admitted, false);
    // One success settled: the remembered refusal is dropped, the freed slot is admitted at once.
    assert.equal(await store.settle(rule, who, 'c0', false, 0), null);
    assert.equal((await store.reserve(rule, who, 'c5', 60_000)).admitted, true);
    const before = await scriptCalls();
    const results = await Promise.all(
      [...ids.slice(1), 'c5'].map((id) => store.settle(rule, who, id, true, 0)),
    );
    const calls = (await scriptCalls()) - before;
    assert.deepEqual(
      results.map((r) => r?.count),
      [1, 2, 3, 4, 5],
    );
    assert.ok(results[4]?.ban, 'the fifth failure bans');
    assert.ok(calls <= 2, `${calls} script calls for 5 settles`);
    const after = await store.reserve(rule, who, 'c6', 60_000);
    assert.equal(after.admitted, false);
    assert.equal(after.ban?.client, who);
  });

  it('failures recorded at once: counted one by one, one ban, few calls', async () => {
    const who = ip();
    const before = await scriptCalls();
    const results = await Promise.all(Array.from({ length: 8 }, () => store.recordFailure(rule, who, 0)));
    const calls = (await scriptCalls()) - before;
    assert.deepEqual(
      results.map((r) => r.count),
      [1, 2, 3, 4, 5, 0, 0, 0],
    );
    assert.equal(results.filter((r) => r.ban !== null && !r.alreadyBanned).length, 1);
    assert.equal(results.filter((r) => r.alreadyBanned).length, 3);
    assert.equal(calls, 1, `${calls} script calls for 8 failures`);
  });
  /**
   * Failures and reservations of one client, interleaved in one call: the script reuses what a
   * failure counted below the threshold read (the threshold in force, the window's count, no ban)
   * for the reservation after it. Each reservation must still see the failures before it, a
   * pardoned client's threshold, and the ban the last failure made.
   */
  async function interleaved(who: string, r: FailureRule, prefix: string) {
    assert.equal((await store.reserve(r, who, `${prefix}0`, 60_000)).admitted, true);
    const before = await scriptCalls();
    const settles: Promise<FailureResult | null>[] = [];
    const reserves: Promise<Reservation>[] = [];
    for (let i = 0; i < 5; i++) {
      settles.push(store.settle(r, who, `${prefix}${i}`, true, 0));
      reserves.push(store.reserve(r, who, `${prefix}${i + 1}`, 60_000));
    }
    const [settled, reserved] = await Promise.all([Promise.all(settles), Promise.all(reserves)]);
    return { settled, reserved, calls: (await scriptCalls()) - before };
  }

  it('failures and reservations interleaved in one call: each reservation counts the failures before it; the one after the ban is refused with it', async () => {
    const who = ip();
    const { settled, reserved, calls } = await interleaved(who, rule, 'd');
    assert.equal(calls, 1, `${calls} script calls`);
    assert.deepEqual(
      settled.map((s) => s?.count),
      [1, 2, 3, 4, 5],
    );
    assert.deepEqual(
      reserved.slice(0, 4).map((a) => [a.admitted, a.count, a.inFlight, a.maxRetry]),
      [1, 2, 3, 4].map((n) => [true, n, 1, 5]),
    );
    assert.equal(reserved[4]?.admitted, false);
    assert.equal(reserved[4]?.ban?.client, who, 'refused with the ban the fifth failure made');
  });

  it('the same for a pardoned client: its reservations are judged by the pardoned threshold', async () => {
    const who = ip();
    const pardoned: FailureRule = { ...rule, pardonMaxRetry: 8 };
    await store.recordPardon('login', who, 60_000);
    const { settled, reserved } = await interleaved(who, pardoned, 'e');
    assert.deepEqual(
      settled.map((s) => [s?.count, s?.ban ?? null]),
      [1, 2, 3, 4, 5].map((n) => [n, null]),
    );
    assert.deepEqual(
      reserved.map((a) => [a.admitted, a.count, a.maxRetry]),
      [1, 2, 3, 4, 5].map((n) => [true, n, 8]),
    );
  });
  it("several clients' groups in one call: each failure is counted and banned under its own client", async () => {
    const who = [ip(), ip(), ip()];
    const before = await scriptCalls();
    const results = await Promise.all(
      who.flatMap((client) => Array.from({ length: 5 }, () => store.recordFailure(rule, client, 0))),
    );
    assert.equal((await scriptCalls()) - before, 1, 'one call');
    assert.deepEqual(
      results.filter((r) => r.ban !== null).map((r) => r.ban?.client),
      who,
    );
    for (const client of who)
      assert.equal((await store.reserve(rule, client, `${client}-after`, 60_000)).ban?.client, client);
  });
  it("a lingering settle waits for its client's next reservation: the two go in one group", async () => {
    const [a, b] = [ip(), ip()];
    assert.equal((await store.reserve(rule, a, 'f0', 60_000)).admitted, true);
    const monitor = await monitorRedis(redis.url);
    let answers: [FailureResult | null, Reservation];
    try {
      const settled = store.settle(rule, a, 'f0', true, 0); // nobody waits for it: it may linger
      await store.reserve(rule, b, 'g0', 60_000); // someone waits for this: a call goes now
      answers = await Promise.all([settled, store.reserve(rule, a, 'f1', 60_000)]);
      await admin.ping();
      await until(() => monitor.commands.some((c) => c[0]?.toLowerCase() === 'ping'));
    } finally {
      monitor.close();
    }
    assert.equal(answers[0]?.count, 1);
    assert.deepEqual([answers[1].admitted, answers[1].count], [true, 1]);
    // Each conversation call's groups, by their steps: the plan has a line per group (its rule,
    // its shard, then a kind, a number and an id per step), the ids left out here.
    const groups = monitor.commands
      .filter((c) => c[0]?.toLowerCase() === 'evalsha')
      .map((c) =>
        c
          .filter((arg) => /^(\d+ \d+( [rsSf]\d+=\S*)+\n)+$/.test(arg))
          .flatMap((plan) => plan.trimEnd().split('\n'))
          .map((line) =>
            line
              .split(' ')
              .slice(2)
              .map((step) => step.slice(0, step.indexOf('=')))
              .join(' '),
          ),
      )
      .filter((call) => call.length > 0);
    assert.deepEqual(groups, [['r60000'], ['S0 r60000']]);
  });

  it('slot ids and clients of any text: each id frees its own slot, no two ids are taken for one', async () => {
    // The plan the script reads splits at spaces and lines; an id with those (or beginning with
    // `~`, the escape's mark) is sent escaped, and its escaped form is never another id's.
    const ids = ['a b', 'a%20b', '~a%20b', 'line\nbreak', '~', '', 'tab\there'];
    for (const who of [ip(), "account:o'brien ~ 100%\nsecond line", 'ünïcode 名前']) {
      const big: FailureRule = { ...rule, maxRetry: 20, pardonMaxRetry: 20 };
      const taken = await Promise.all(ids.map((id) => store.reserve(big, who, id, 60_000)));
      // Answered by Redis, not by the local fallback of a store that went degraded.
      assert.equal(store.degraded, false, `${who}: the script took the ids`);
      assert.ok(taken.every((r) => r.admitted));
      assert.equal(taken.at(-1)?.inFlight, ids.length, `${who}: every id holds a slot of its own`);
      // Freed one by one: each settle frees exactly its own slot.
      for (let i = 0; i < ids.length; i++) {
        await store.settle(big, who, ids[i] as string, false, 0);
        const after = await store.reserve(big, who, `probe${i}`, 60_000);
        assert.equal(
          after.inFlight,
          ids.length - i,
          `${who}: settling ${JSON.stringify(ids[i])} freed one slot`,
        );
        await store.settle(big, who, `probe${i}`, false, 0);
        assert.equal(store.degraded, false);
      }
      // A failure counted under a client with spaces and lines is that client's.
      const failed = (await store.recordFailure(big, who, 0)) as FailureResult;
      assert.equal(failed.count, 1);
    }
  });
});
