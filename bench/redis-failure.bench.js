// The Node CPU time one counted failure costs with Redis: jailkeeper's observe() through the Redis
// store against rate-limiter-flexible's consume(), 30,000 operations at 50 in flight (and, with
// --lone, one at a time: a failure with no other call under way), rounds interleaved. With --slots,
// the path of a route a jail targets instead: the store's reserve() then settle() as a failure
// (what an adapter's attempt costs the store), against the same consume().
// Uses REDIS_URL (default 127.0.0.1:6379).
// Run: npx tsc -b && taskset -c 0 node bench/redis-failure.bench.js [--rounds 2] [--lone]
//   [--slots] [--base path/to/another/build/index.js]   (another build of @jailkeeper/redis, e.g. main's,
//                                              measured in the same rounds)
import { parseArgs } from 'node:util';
import { createJailkeeper } from '@jailkeeper/core';
import { createRedisStore } from '@jailkeeper/redis';
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    lone: { type: 'boolean', default: false },
    slots: { type: 'boolean', default: false },
    base: { type: 'string' },
  },
});
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const N = values.lone ? 5_000 : 30_000;
const IN_FLIGHT = values.lone ? 1 : 50;
const quiet = { info() {}, warn() {}, error() {} };
const ip = (i) => `10.9.${(i >> 8) & 255}.${i & 255}`;
const results = new Map();
const downs = new Map();

async function measure(name, op, keeper) {
  const down0 = downs.get(keeper) ?? 0;
  for (let i = 0; i < 2000; i++) await op(i); // warm-up
  await Promise.all(settling);
  settling = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < N) await op(next++);
    }),
  );
  await Promise.all(settling);
  settling = [];
  const cpu = process.cpuUsage(cpu0);
  const seconds = (performance.now() - t0) / 1000;
  const us = (cpu.user + cpu.system) / N;
  const wentDown = (downs.get(keeper) ?? 0) - down0;
  if (wentDown === 0) results.set(name, [...(results.get(name) ?? []), us]);
  console.log(
    `${name.padEnd(44)} ${us.toFixed(1).padStart(6)} µs Node CPU/op ${String(Math.round(N / seconds)).padStart(7)} ops/s${wentDown > 0 ? `  (store went degraded ${wentDown}×: left out)` : ''}`,
  );
}

const clients = [];
const keeperWith = async (create, tag) => {
  const client = new Redis(url);
  clients.push(client);
  const keeper = createJailkeeper({
    jails: { login: { statuses: [401], maxRetry: 1e9 } }, // never bans: every failure is counted
    logger: quiet,
    store: create({ client, prefix: `rfb${process.pid}${tag}:` }),
  });
  await keeper.ready;
  // A store that misses its deadline counts locally (cheaper): such a round is not Redis' cost.
  keeper.on('storeDown', () => downs.set(keeper, (downs.get(keeper) ?? 0) + 1));
  return keeper;
};

const title = values.slots
  ? 'jailkeeper reserve() + settle(), Redis store'
  : 'jailkeeper observe(401), Redis store';
const keepers = [[title, await keeperWith(createRedisStore, 'a')]];
if (values.base !== undefined) {
  const base = await import(values.base);
  keepers.push(['  the same, --base build', await keeperWith(base.createRedisStore, 'b')]);
}
const rule = {
  jail: 'login',
  findTimeMs: 600_000,
  maxRetry: 1e9,
  pardonMaxRetry: 1e9,
  banTimeMs: 3_600_000,
  increment: null,
  dryRun: false,
  historyTimeMs: 86_400_000,
  recidive: null,
  reason: 'bench',
};
let nextId = 0;
/** Settles under way: an adapter does not wait for them (the answer is written), the measure does at its end. */
let settling = [];
const attempt = async (store, client) => {
  const id = `s${nextId++}`;
  await store.reserve(rule, client, id, 60_000);
  settling.push(store.settle(rule, client, id, true, 0));
};
const rlfClient = new Redis(url);
clients.push(rlfClient);
const limiter = new RateLimiterRedis({
  storeClient: rlfClient,
  points: 1e9,
  duration: 3600,
  keyPrefix: `rfb${process.pid}rl`,
});
for (let round = 1; round <= Number(values.rounds); round++) {
  // Alternating order: drift on a shared machine hits both alike.
  const order = round % 2 === 1 ? keepers : [...keepers].reverse();
  for (const [name, keeper] of order) {
    await measure(
      name,
      (i) =>
        values.slots
          ? attempt(keeper.store, ip(i % 5000))
          : keeper.observe({ client: ip(i % 5000), method: 'POST', path: '/login', status: 401 }),
      keeper,
    );
  }
  await measure('rate-limiter-flexible consume(), Redis', (i) => limiter.consume(ip(i % 5000)));
}
console.log('medians over rounds (µs Node CPU per op):');
for (const [name, list] of results) {
  const sorted = [...list].sort((a, b) => a - b);
  console.log(`  ${name.trim().padEnd(42)} ${sorted[Math.floor(sorted.length / 2)].toFixed(1)}`);
}
for (const [, keeper] of keepers) await keeper.close();
for (const c of clients) c.disconnect();
