// The Node CPU time one counted failure costs with Redis: jailkeeper's observe() through the Redis
// store (one script call) against rate-limiter-flexible's consume(), 30,000 operations at 50 in
// flight, two rounds each. Uses REDIS_URL (default 127.0.0.1:6379).
// Run: npx tsc -b && taskset -c 0 node bench/redis-failure.bench.js
import { createJailkeeper } from '@jailkeeper/core';
import { createRedisStore } from '@jailkeeper/redis';
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const N = 30_000;
const IN_FLIGHT = 50;
const quiet = { info() {}, warn() {}, error() {} };
const ip = (i) => `10.9.${(i >> 8) & 255}.${i & 255}`;

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
  console.log(
    `${name.padEnd(44)} ${((cpu.user + cpu.system) / N).toFixed(1).padStart(6)} µs Node CPU/op ${String(Math.round(N / seconds)).padStart(7)} ops/s`,
  );
}

const clients = [new Redis(url), new Redis(url)];
const keeper = createJailkeeper({
  jails: { login: { statuses: [401], maxRetry: 1e9 } }, // never bans: every failure is counted
  logger: quiet,
  store: createRedisStore({ client: clients[0], prefix: `rfb${process.pid}:` }),
});
await keeper.ready;
const limiter = new RateLimiterRedis({
  storeClient: clients[1],
  points: 1e9,
  duration: 3600,
  keyPrefix: `rfb${process.pid}rl`,
});
for (let round = 1; round <= 2; round++) {
  await measure('jailkeeper observe(401), Redis store', (i) =>
    keeper.observe({ client: ip(i % 5000), method: 'POST', path: '/login', status: 401 }),
  );
  await measure('rate-limiter-flexible consume(), Redis', (i) => limiter.consume(ip(i % 5000)));
}
await keeper.close();
for (const c of clients) c.disconnect();
