// A new app instance on a Redis that holds N bans (default 1,000,000), measured in a real app
// process: an Express app with the jailkeeper middleware on the Redis store, in a child process of
// its own. Reports how long until keeper.ready and the CPU the app and Redis used meanwhile, the
// longest event-loop block while loading (a 1 ms probe, with the CPU the process used in that gap:
// on a shared machine a gap with little CPU was a wait for a core) and the gap with the most CPU
// (the longest the loop was really held), the heap per loaded ban (heapUsed after GC, before and
// after the load), and that the app then answers and refuses a banned client.
// Run: npx tsc -b && node bench/redis-app-load.bench.js [N]
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { fillRedis } from './fill-redis.js';
import { ensureRedis } from './http/harness.js';

const client = (i) =>
  i % 2 === 0
    ? `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
    : `2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::/64`;

if (process.argv[2] === '--app') {
  // ------------------------------------------------------------------ the app process
  const [, , , url, prefix, n] = process.argv;
  const N = Number(n);
  const { createJailkeeper } = await import('@jailkeeper/core');
  const { createRedisStore } = await import('@jailkeeper/redis');
  const { jailkeeper } = await import('@jailkeeper/express');
  const { default: express } = await import('express');
  const heap = () => {
    globalThis.gc();
    globalThis.gc();
    return process.memoryUsage().heapUsed;
  };
  // Redis' own CPU, asked on a connection of the bench's.
  const info = new Redis(url);
  await info.ping();
  const redisCpu = async () => {
    const text = await info.info('cpu');
    const field = (name) => Number(new RegExp(`${name}:([\\d.]+)`).exec(text)?.[1] ?? Number.NaN);
    return field('used_cpu_user') + field('used_cpu_sys');
  };
  const redisBefore = await redisCpu();
  // As an app does: the client is created with the keeper, not awaited first (its 'ready' then
  // comes while the keeper starts).
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  const app = express();
  const before = heap();
  const keeper = createJailkeeper({
    jails: { login: { statuses: [401], paths: ['/login'], maxRetry: 5, banTime: '1h' } },
    logger: { info() {}, warn() {}, error() {} },
    store: createRedisStore({ client: redis, prefix, startTimeout: '60s' }),
  });
  app.use(jailkeeper(keeper));
  app.get('/', (_req, res) => res.send('ok'));
  let last = performance.now();
  let lastCpu = process.cpuUsage();
  let longest = 0;
  let longestCpu = 0;
  let mostCpu = 0;
  let mostCpuGap = 0;
  const probe = setInterval(() => {
    const now = performance.now();
    const used = process.cpuUsage(lastCpu);
    const cpu = (used.user + used.system) / 1000;
    if (now - last > longest) {
      longest = now - last;
      longestCpu = cpu;
    }
    // The CPU of a gap counts every thread of the process (the collector's helpers too): at most
    // the gap's length is the loop's own.
    if (Math.min(cpu, now - last) > mostCpu) {
      mostCpu = Math.min(cpu, now - last);
      mostCpuGap = now - last;
    }
    last = now;
    lastCpu = process.cpuUsage();
  }, 1);
  const started = performance.now();
  const startedCpu = process.cpuUsage();
  await keeper.ready;
  const readyMs = performance.now() - started;
  const loadCpu = process.cpuUsage(startedCpu);
  clearInterval(probe);
  const redisMs = ((await redisCpu()) - redisBefore) * 1000;
  const loaded = Object.values(keeper.banCounts()).reduce((a, b) => a + b, 0);
  const after = heap();
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  const clean = await fetch(`http://127.0.0.1:${port}/`);
  const banned = keeper.check(client(2)).banned;
  process.send({
    readyMs,
    cpuMs: (loadCpu.user + loadCpu.system) / 1000,
    redisMs,
    longest,
    longestCpu,
    mostCpu,
    mostCpuGap,
    loaded,
    perBan: (after - before) / N,
    heapMb: (after - before) / 1048576,
    cleanStatus: clean.status,
    banned,
  });
  server.close();
  await keeper.close();
  redis.disconnect();
  info.disconnect();
} else {
  // ------------------------------------------------------------------ the runner
  const N = Number(process.argv[2] ?? 1_000_000);
  const url = await ensureRedis();
  const prefix = `jkload${process.pid}:`;
  const admin = new Redis(url);
  const now = Number((await admin.time())[0]) * 1000;
  const filled = await fillRedis(admin, { prefix, n: N, client, startMs: now, endOf: () => now + 3_600_000 });
  const load = loadavg()[0].toFixed(1);
  const child = fork(fileURLToPath(import.meta.url), ['--app', url, prefix, String(N)], {
    execArgv: ['--expose-gc'],
  });
  const [result] = await once(child, 'message');
  await once(child, 'exit');
  admin.disconnect();
  console.log(
    `node ${process.version}, ${N.toLocaleString('en')} bans written in ${(filled / 1000).toFixed(1)} s; load average ${load} before the app started, ${loadavg()[0].toFixed(1)} after`,
  );
  console.log('| a new Express app instance on Redis | result |');
  console.log('| --- | ---: |');
  console.log(
    `| ready after | ${(result.readyMs / 1000).toFixed(2)} s (${result.loaded.toLocaleString('en')} bans loaded) |`,
  );
  console.log(
    `| CPU while loading: the app, Redis | ${(result.cpuMs / 1000).toFixed(2)} s, ${(result.redisMs / 1000).toFixed(2)} s |`,
  );
  console.log(
    `| longest event-loop block while loading | ${result.longest.toFixed(1)} ms (${result.longestCpu.toFixed(1)} ms CPU) |`,
  );
  console.log(
    `| the gap with the most CPU | ${result.mostCpu.toFixed(1)} ms CPU (in ${result.mostCpuGap.toFixed(1)} ms) |`,
  );
  console.log(
    `| heap per loaded ban (heapUsed after GC) | ${result.perBan.toFixed(0)} B (${result.heapMb.toFixed(1)} MB) |`,
  );
  console.log(`| then: a clean request, a banned client | ${result.cleanStatus}, banned ${result.banned} |`);
  process.exit(0);
}
