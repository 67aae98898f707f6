// The Node CPU time one counted failure costs with Redis: jailkeeper's observe() through the Redis
// store against rate-limiter-flexible's consume(), 30,000 operations at 50 in flight (and, with
// --lone, one at a time: a failure with no other call under way), rounds interleaved.
// Uses REDIS_URL (default 127.0.0.1:6379).
// Run: npx tsc -b && taskset -c 0 node bench/redis-failure.bench.js [--rounds 2] [--lone]
//   [--base path/to/another/build/index.js]   (another build of @jailkeeper/redis, e.g. main's,
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
    base: { type: 'string' },
  },
});
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const N = values.lone ? 5_000 : 30_000;
const IN_FLIGHT = values.lone ? 1 : 50;
const quiet = { info() {}, warn() {}, error() {} };
const ip = (i) => `10.9.${(i >> 8) & 255}.${i & 255}`;
const results = new Map();

async function measure(name, op) {
  for (let i = 0; i < 2000; i++) await op(i); // warm-up
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < N) await op(next++);
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  const seconds = (performance.now() - t0) / 1000;
  const us = (cpu.user + cpu.system) / N;
  results.set(name, [...(results.get(name) ?? []), us]);
  console.log(
    `${name.padEnd(44)} ${us.toFixed(1).padStart(6)} µs Node CPU/op ${String(Math.round(N / seconds)).padStart(7)} ops/s`,
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
  return keeper;
};
const keepers = [['jailkeeper observe(401), Redis store', await keeperWith(createRedisStore, 'a')]];
if (values.base !== undefined) {
  const base = await import(values.base);
  keepers.push(['  the same, --base build', await keeperWith(base.createRedisStore, 'b')]);
}
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
    await measure(name, (i) =>
      keeper.observe({ client: ip(i % 5000), method: 'POST', path: '/login', status: 401 }),
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
