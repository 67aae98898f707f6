// Healing from data loss, without HTTP traffic: K app instances (default 3), each in a process of
// its own with the Redis store as the Redis README sets it up, on a Redis holding N bans (default
// 100,000); then FLUSHALL, ROUNDS times (default 3). Per round: when the heal started (the restore
// lease appears) and when Redis held every ban again; the CPU each instance used from the FLUSHALL
// until 3 s after, and its longest event-loop gap with the CPU used in it (a 2 ms probe: on a
// shared machine a gap with little CPU was a wait for a core, not a block); Redis' CPU; and what a
// hot-path call waits for meanwhile: a PING every 2 ms on a connection of its own, its slowest
// round trip and how many took over 10 ms. Figures that hold up on a loaded machine: CPU, not wall.
// Run: npx tsc -b && node bench/redis-heal.bench.js [N] [K] [ROUNDS]
// JK_BENCH_ROOT=<a checkout, built> runs that tree's packages instead (to compare with main).
// JK_BENCH_PROF=<dir>: each instance writes a CPU profile of each round there. Round 0 is the
// same window without a FLUSHALL: what the instances and Redis use anyway (the probes included).
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { fillRedis } from './fill-redis.js';
import { ensureRedis } from './http/harness.js';

const client = (i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
const root = process.env.JK_BENCH_ROOT ?? join(fileURLToPath(import.meta.url), '..', '..');
const pkg = (name) => pathToFileURL(join(root, 'packages', name, 'dist', 'index.js')).href;

if (process.argv[2] === '--app') {
  // ------------------------------------------------------------------ an app instance
  const [, , , url, prefix] = process.argv;
  const { createJailkeeper } = await import(pkg('core'));
  const { createRedisStore } = await import(pkg('redis'));
  const redis = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: (n) => Math.min(n * 100, 500) });
  redis.on('error', () => {});
  const keeper = createJailkeeper({
    jails: { login: { statuses: [401], paths: ['/login'], maxRetry: 5, banTime: '1h' } },
    logger: { info() {}, warn() {}, error() {} },
    store: createRedisStore({ client: redis, prefix }),
  });
  let downs = 0;
  keeper.on('storeDown', () => downs++);
  await keeper.ready;
  let since = process.cpuUsage();
  let last = performance.now();
  let lastCpu = process.cpuUsage();
  let gap = { ms: 0, cpu: 0 };
  let cpuGap = { ms: 0, cpu: 0 };
  setInterval(() => {
    const now = performance.now();
    const at = process.cpuUsage(); // one call a tick: it is a system call, and it adds up
    const cpu = (at.user - lastCpu.user + at.system - lastCpu.system) / 1000;
    if (now - last > gap.ms) gap = { ms: now - last, cpu };
    if (cpu > cpuGap.cpu) cpuGap = { ms: now - last, cpu };
    last = now;
    lastCpu = at;
  }, 2);
  const profiling = process.env.JK_BENCH_PROF;
  let session;
  let round = 0;
  process.on('message', async (m) => {
    if (m === 'mark') {
      if (profiling) {
        session = new Session();
        session.connect();
        await session.post('Profiler.enable');
        await session.post('Profiler.start');
      }
      since = process.cpuUsage();
      gap = { ms: 0, cpu: 0 };
      cpuGap = { ms: 0, cpu: 0 };
      downs = 0;
      process.send({ marked: true });
    } else if (m === 'report') {
      const used = process.cpuUsage(since);
      if (profiling) {
        const { profile } = await session.post('Profiler.stop');
        session.disconnect();
        writeFileSync(join(profiling, `round-${round++}-${process.pid}.cpuprofile`), JSON.stringify(profile));
      }
      process.send({ cpuMs: (used.user + used.system) / 1000, gap, cpuGap, downs });
    } else if (m === 'exit') {
      keeper.close().then(() => process.exit(0));
    }
  });
  process.send({ ready: true });
} else {
  // ------------------------------------------------------------------ the runner
  const N = Number(process.argv[2] ?? 100_000);
  const K = Number(process.argv[3] ?? 3);
  const ROUNDS = Number(process.argv[4] ?? 3);
  const url = await ensureRedis();
  const prefix = `jkheal${process.pid}:`;
  const admin = new Redis(url);
  const probe = new Redis(url);
  const now = Number((await admin.time())[0]) * 1000;
  await fillRedis(admin, { prefix, n: N, client, startMs: now, endOf: () => now + 3_600_000 });
  const apps = Array.from({ length: K }, () =>
    fork(fileURLToPath(import.meta.url), ['--app', url, prefix], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  await Promise.all(apps.map((a) => once(a, 'message')));
  const ask = (a, m) => {
    const answer = once(a, 'message');
    a.send(m);
    return answer.then(([x]) => x);
  };
  // A Lua call per 128 shards (in one, it held Redis several ms: what the PING measures).
  const count = `local total = 0
    for n = tonumber(ARGV[2]), tonumber(ARGV[2]) + 127 do
      local key = ARGV[1] .. '{s' .. n .. '}:b'
      total = total + redis.call('HLEN', key) - redis.call('HEXISTS', key, '#x') - redis.call('HEXISTS', key, '#c')
    end
    return total`;
  const redisCpu = async () => {
    const info = await admin.info('cpu');
    const of = (name) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? 0);
    return (of('used_cpu_user') + of('used_cpu_sys')) * 1000;
  };
  console.log(
    `node ${process.version}, ${N.toLocaleString('en')} bans, ${K} app processes, packages of ${root}`,
  );
  console.log(
    '| round | load | heal started | Redis whole | Redis CPU | CPU per instance (ms) | longest gap per instance, ms (CPU in it) | most CPU in one gap (ms) | PING every 2 ms: slowest, over 10 ms | storeDown |',
  );
  console.log('| ---: | ---: | ---: | ---: | ---: | --- | --- | --- | --- | ---: |');
  for (let round = 0; round <= ROUNDS; round++) {
    await sleep(2000);
    const load = loadavg()[0].toFixed(1);
    await Promise.all(apps.map((a) => ask(a, 'mark')));
    const cpu0 = await redisCpu();
    const flushed = Date.now();
    if (round > 0) await admin.flushall();
    const t0 = Date.now();
    let started = -1;
    let whole = -1;
    let running = true;
    const pings = [];
    const pinging = (async () => {
      while (running) {
        const at = performance.now();
        const replies = await probe.pipeline().ping().get(`${prefix}restore`).exec();
        const holder = replies?.[1]?.[1] ?? null;
        pings.push(performance.now() - at);
        if (started < 0 && holder !== null) started = Date.now() - t0;
        await sleep(2);
      }
    })();
    while (round > 0 && Date.now() - t0 < 30_000) {
      let held = 0;
      for (let from = 0; from < 1024; from += 128) held += Number(await admin.eval(count, 0, prefix, from));
      if (held >= N) {
        whole = Date.now() - t0;
        break;
      }
      await sleep(50);
    }
    await sleep(3000);
    running = false;
    await pinging;
    const redisMs = (await redisCpu()) - cpu0;
    const reports = await Promise.all(apps.map((a) => ask(a, 'report')));
    console.log(
      `| ${round} | ${load} | ${started} ms | ${whole} ms (FLUSHALL ${t0 - flushed} ms) | ${redisMs.toFixed(0)} ms | ${reports.map((r) => r.cpuMs.toFixed(0)).join(' / ')} | ${reports.map((r) => `${r.gap.ms.toFixed(0)} (${r.gap.cpu.toFixed(0)})`).join(' / ')} | ${reports.map((r) => r.cpuGap.cpu.toFixed(0)).join(' / ')} | ${Math.max(...pings).toFixed(1)} ms, ${pings.filter((p) => p > 10).length} of ${pings.length} | ${reports.map((r) => r.downs).join('/')} |`,
    );
  }
  await Promise.all(apps.map((a) => Promise.all([once(a, 'exit'), a.send('exit')])));
  admin.disconnect();
  probe.disconnect();
  process.exit(0);
}
