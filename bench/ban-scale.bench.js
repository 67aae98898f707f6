// Redis fill, memory per ban and check() at a million bans. The event-loop figures at a million
// bans (both stores) are measured by operator-scale.bench.js.
import { createJailkeeper } from '@jailkeeper/core';
import { createManualClock } from '@jailkeeper/core/operator';
import { createRedisStore } from '@jailkeeper/redis';
import { Redis } from 'ioredis';
// @jailkeeper/ops is not a dependency of the benchmarks: its build is imported by path.
import { exportBanPages } from '../packages/ops/dist/index.js';
import { fillRedis } from './fill-redis.js';
import { ensureRedis } from './http/harness.js';
import { measure } from './measure.js';

const N = Number(process.argv[2] ?? 1_000_000);
const quiet = { info() {}, warn() {}, error() {} };
const jails = { login: { statuses: [401], paths: ['/login'], maxRetry: 5, banTime: '1h' } };
const gc = () => globalThis.gc?.();
const heap = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};
const mb = (bytes) => `${(bytes / 1048576).toFixed(1)} MB`;
/** Half IPv4 addresses, half IPv6 /64 client keys. */
const client = (i) =>
  i % 2 === 0
    ? `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
    : `2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::/64`;

/**
 * The longest the event loop was blocked while `work` ran: the longest gap between the ticks of
 * a 1 ms probe, with the CPU time the process used in that gap (on a shared machine, a gap with
 * little CPU was the process waiting for a core, not the event loop blocked).
 */
async function longestBlock(work) {
  let last = performance.now();
  let lastCpu = process.cpuUsage();
  let longest = 0;
  let longestCpu = 0;
  const probe = setInterval(() => {
    const now = performance.now();
    const cpu = process.cpuUsage(lastCpu);
    if (now - last > longest) {
      longest = now - last;
      longestCpu = (cpu.user + cpu.system) / 1000;
    }
    last = now;
    lastCpu = process.cpuUsage();
  }, 1);
  const started = performance.now();
  await work();
  const total = performance.now() - started;
  clearInterval(probe);
  return { longest, longestCpu, total };
}

// REDIS_URL, or a redis-server of the harness's own, stopped when this process exits.
const url = await ensureRedis();
const prefix = `jkscale${process.pid}:`;
const admin = new Redis(url);
const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1]);
console.log(
  `node ${process.version}, ${N.toLocaleString('en')} bans, Redis at ${url}, load average ${(await import('node:os')).loadavg()[0].toFixed(1)}`,
);

// ------------------------------------------------------------------ Redis: fill, through the write-back script
const memoryBefore = await usedMemory();
const now = Number((await admin.time())[0]) * 1000;
const filled = await fillRedis(admin, {
  prefix,
  n: N,
  client,
  startMs: now,
  endOf: (i) => now + 600_000 + (i % 3_000_000),
});
const memoryAfter = await usedMemory();

// ------------------------------------------------------------------ a new instance on Redis
let before = heap();
const started = Date.now();
const redisClient = new Redis(url);
const onRedis = createJailkeeper({
  jails,
  logger: quiet,
  store: createRedisStore({ client: redisClient, prefix, startTimeout: '60s' }),
});
const load = await longestBlock(() => onRedis.ready);
const readyMs = Date.now() - started;
const loaded = Object.values(onRedis.banCounts()).reduce((a, b) => a + b, 0);
const redisHeap = heap() - before;

// ------------------------------------------------------------------ check()
const empty = createJailkeeper({ jails, logger: quiet });
const ids = Array.from({ length: 1024 }, (_, i) => onRedis.identify(`198.51.${i >> 8}.${i & 255}`));
const bannedIds = Array.from({ length: 1024 }, (_, i) =>
  onRedis.identify(i % 2 ? `2001:db8:${(i >> 16).toString(16)}:${i.toString(16)}::1` : client(i)),
);
let sink = 0;
const check0 = measure('check(), client not banned, 0 bans', 5_000_000, (i) => {
  sink += empty.check(ids[i & 1023]).banned ? 1 : 0;
});
const check1 = measure(`check(), client not banned, ${N.toLocaleString('en')} bans`, 5_000_000, (i) => {
  sink += onRedis.check(ids[i & 1023]).banned ? 1 : 0;
});
const checkBanned = measure(`check(), banned client, ${N.toLocaleString('en')} bans`, 5_000_000, (i) => {
  sink += onRedis.check(bannedIds[i & 1023]).banned ? 1 : 0;
});

// ------------------------------------------------------------------ a full export, and bans()
async function* pages(keeper) {
  let after;
  do {
    const page = await keeper.bansPage({ after, limit: 2000 });
    yield page.bans;
    after = page.next;
  } while (after !== undefined);
}
let exported = 0;
const exportRedis = await longestBlock(async () => {
  exported = (await exportBanPages(pages(onRedis), 'nginx-geo')).length;
});
const listRedis = await longestBlock(() => onRedis.bans());
await onRedis.close();
redisClient.disconnect();

// ------------------------------------------------------------------ an instance on the memory store
const clock = createManualClock(Date.now());
before = heap();
const onMemory = createJailkeeper({ jails, logger: quiet, clock });
for (let i = 0; i < N; i += 10_000) {
  const wave = [];
  // A botnet wave: every ban ends within the same minute.
  for (let k = i; k < Math.min(N, i + 10_000); k++)
    wave.push(onMemory.ban(client(k), { jail: 'login', duration: 3_600_000 + (k % 60_000) }));
  await Promise.all(wave);
}
const memoryHeap = heap() - before;
const exportMemory = await longestBlock(async () => {
  await exportBanPages(pages(onMemory), 'nginx-geo');
});
clock.advance(3_700_000);
const expiry = await longestBlock(() => onMemory.sweep());
const left = onMemory.activeBans().length;
await onMemory.close();
await empty.close();

// ------------------------------------------------------------------ report
const ms = (x) => `${x.longest.toFixed(1)} ms (${x.longestCpu.toFixed(1)} ms CPU)`;
console.log('');
console.log('| measure | result |');
console.log('| --- | ---: |');
console.log(
  `| bans written to Redis (write-back script, 200 a call) | ${N.toLocaleString('en')} in ${(filled / 1000).toFixed(1)} s |`,
);
console.log(
  `| Redis memory per ban (ban, its shard entry and its history key) | ${((memoryAfter - memoryBefore) / N).toFixed(0)} B |`,
);
console.log(
  `| new instance on Redis: ready after | ${(readyMs / 1000).toFixed(2)} s (${loaded.toLocaleString('en')} bans loaded) |`,
);
console.log(`| ... longest event-loop block while loading | ${ms(load)} |`);
console.log(
  `| heap per ban, instance on Redis (the engine's index) | ${(redisHeap / N).toFixed(0)} B (${mb(redisHeap)}) |`,
);
console.log(
  `| heap per ban, instance on the memory store (index and store) | ${(memoryHeap / N).toFixed(0)} B (${mb(memoryHeap)}) |`,
);
console.log(`| check(), client not banned, 0 bans | ${check0.toFixed(1)} ns |`);
console.log(`| check(), client not banned, ${N.toLocaleString('en')} bans | ${check1.toFixed(1)} ns |`);
console.log(`| check(), banned client, ${N.toLocaleString('en')} bans | ${checkBanned.toFixed(1)} ns |`);
console.log(
  `| full export (nginx-geo, paged), instance on Redis: longest block / total | ${ms(exportRedis)} / ${(exportRedis.total / 1000).toFixed(2)} s (${mb(exported)}) |`,
);
console.log(
  `| full export (nginx-geo, paged), memory store: longest block / total | ${ms(exportMemory)} / ${(exportMemory.total / 1000).toFixed(2)} s |`,
);
console.log(
  `| bans() (all, sorted), instance on Redis: longest block / total | ${ms(listRedis)} / ${(listRedis.total / 1000).toFixed(2)} s |`,
);
console.log(
  `| expiry of ${N.toLocaleString('en')} bans ending within one minute: longest block / total | ${ms(expiry)} / ${(expiry.total / 1000).toFixed(2)} s (${left} left) |`,
);
void sink;

// Leave the shared Redis as found.
let cursor = '0';
do {
  const [next, batch] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 10_000);
  cursor = next;
  if (batch.length > 0) await admin.del(...batch);
} while (cursor !== '0');
admin.disconnect();
