// Operators' calls, exports, expiry, sweep and a restart at a million bans, on the memory store
// (persist on) and on a real Redis (a redis-server of the bench's own on a free port, stopped at
// the end), each measured for its longest event-loop block with monitorEventLoopDelay, the
// machine's 1-minute load average beside each figure. Successor of ban-scale.bench.js's
// event-loop rows (issue 26).
//   node --expose-gc bench/operator-scale.bench.js [bans=1000000] [--only memory|redis]
//
// Beside each block: the CPU time the process used during the longest gap of a 1 ms probe (a gap
// with little CPU was the process waiting for a core on a loaded machine, not its loop blocked),
// the most CPU the process used in any one gap (with that gap's length: on a loaded machine the
// longest gap is often a wait for a core, and the real longest block is a shorter gap with more
// CPU; GC helper threads count too, so it can exceed its gap), and the longest garbage-collection
// pause V8 reported while the call ran (with its kind).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { createJailkeeper, createMemoryStore } from '@jailkeeper/core';
import { createManualClock } from '@jailkeeper/core/operator';
import { createRedisStore } from '@jailkeeper/redis';
import { Redis } from 'ioredis';
// @jailkeeper/ops is not a dependency of the benchmarks: its build is imported by path.
import { createAdminApi, createMetrics } from '../packages/ops/dist/index.js';
import { fillRedis } from './fill-redis.js';

const args = process.argv.slice(2);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
const N = Number(args.find((a) => /^\d+$/.test(a)) ?? 1_000_000);
const quiet = { info() {}, warn() {}, error() {} };
const jails = { login: { statuses: [401], paths: ['/login'], maxRetry: 5, banTime: '1h' } };
const TOKEN = 'a-bench-token-of-16+';
const gc = () => globalThis.gc?.();
/** Live heap, settled: collected until it stops shrinking. */
const heap = async () => {
  let last = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 6; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
    const used = process.memoryUsage().heapUsed;
    if (used >= last - 65_536) return used;
    last = used;
  }
  return last;
};
const mb = (bytes) => `${(bytes / 1048576).toFixed(1)} MB`;
/** Half IPv4 addresses, half IPv6 /64 client keys. */
const client = (i) =>
  i % 2 === 0
    ? `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
    : `2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::/64`;

// The longest GC pause while a call runs (PerformanceObserver 'gc' entries).
const GC_KIND = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak callbacks',
};
let gcWatch;
new PerformanceObserver((list) => {
  if (gcWatch === undefined) return;
  for (const e of list.getEntries()) {
    if (e.duration > gcWatch.max) {
      gcWatch.max = e.duration;
      gcWatch.kind = GC_KIND[e.detail?.kind] ?? String(e.detail?.kind);
    }
  }
}).observe({ entryTypes: ['gc'] });

const rows = [];
/**
 * Runs `work` and records its longest event-loop block (monitorEventLoopDelay, 1 ms resolution),
 * the CPU the process used in the longest gap of a 1 ms probe, the longest GC pause, the total time
 * and the load average at the end.
 */
async function block(part, name, work) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  let last = performance.now();
  let lastCpu = process.cpuUsage();
  let gap = 0;
  let gapCpu = 0;
  let cpuMax = 0;
  let cpuMaxGap = 0;
  // The probe also keeps the loop turning while `work` waits on nothing but itself.
  const probe = setInterval(() => {
    const now = performance.now();
    const cpu = process.cpuUsage(lastCpu);
    const used = (cpu.user + cpu.system) / 1000;
    if (now - last > gap) {
      gap = now - last;
      gapCpu = used;
    }
    if (used > cpuMax) {
      cpuMax = used;
      cpuMaxGap = now - last;
    }
    last = now;
    lastCpu = process.cpuUsage();
  }, 1);
  h.enable();
  // The histogram records the gap between two of its ticks: the first tick must come before the work.
  await new Promise((resolve) => setTimeout(resolve, 5));
  gcWatch = { max: 0, kind: '' };
  const started = performance.now();
  const result = await work();
  const total = performance.now() - started;
  // A block is recorded when the loop next turns: let it turn before reading.
  await new Promise((resolve) => setTimeout(resolve, 5));
  h.disable();
  clearInterval(probe);
  const gcPause = gcWatch;
  gcWatch = undefined;
  const row = {
    part,
    name,
    blockMs: h.max / 1e6,
    gapCpu,
    cpuMax,
    cpuMaxGap,
    gc: gcPause,
    total,
    load: loadavg()[0],
    note: result ?? '',
  };
  rows.push(row);
  console.log(
    `${part.padEnd(6)} ${name.padEnd(58)} block ${row.blockMs.toFixed(1).padStart(7)} ms (cpu ${gapCpu.toFixed(0)}, most cpu ${cpuMax.toFixed(0)} in ${cpuMaxGap.toFixed(0)}, gc ${gcPause.max.toFixed(0)} ${gcPause.kind})  total ${(total / 1000).toFixed(2).padStart(6)} s  load ${row.load.toFixed(1)}  ${row.note}`,
  );
  return row;
}

/** Reads a stream answer to its end; returns its size. */
async function drain(body) {
  if (typeof body === 'string') return body.length;
  let size = 0;
  for await (const chunk of body) size += chunk.length;
  return size;
}

const get = (admin, path) => {
  const url = new URL(path, 'http://x');
  return admin.handle({
    method: 'GET',
    path: url.pathname,
    query: url.searchParams,
    headers: { authorization: `Bearer ${TOKEN}` },
    peer: '127.0.0.1',
    body: undefined,
  });
};

/** The operators' calls both stores answer: the admin API, the keeper's own, the exports. */
async function operatorRows(part, keeper) {
  const admin = createAdminApi(keeper, { token: TOKEN });
  await block(part, 'admin GET /bans (no query)', async () => {
    const body = JSON.parse((await get(admin, '/bans')).body);
    return `${body.bans.length} bans, next: ${body.next !== undefined}`;
  });
  await block(
    part,
    'admin GET /bans?limit=5000',
    async () => `${(await drain((await get(admin, '/bans?limit=5000')).body)).toLocaleString('en')} B`,
  );
  await block(
    part,
    'keeper.bansPage({ limit: 1000 })',
    async () => `${(await keeper.bansPage({ limit: 1000 })).bans.length} bans`,
  );
  await block(part, 'every page of keeper.bansPage({ limit: 1000 })', async () => {
    let after;
    let count = 0;
    do {
      const page = await keeper.bansPage({ after, limit: 1000 });
      count += page.bans.length;
      after = page.next;
    } while (after !== undefined);
    return `${count.toLocaleString('en')} bans`;
  });
  await block(part, 'admin GET /bans/stream (every ban, NDJSON)', async () =>
    mb(await drain((await get(admin, '/bans/stream')).body)),
  );
  await block(part, 'admin GET /status', async () => (await get(admin, '/status')).status);
  await block(part, 'keeper.status()', async () => {
    const login = (await keeper.status()).jails.login;
    return `${login.currentlyBanned.toLocaleString('en')} banned, ${login.bannedClients.length} listed`;
  });
  await block(
    part,
    'console page (GET /bans?sort=endMs&limit=50)',
    async () => (await get(admin, '/bans?sort=endMs&limit=50')).status,
  );
  await block(
    part,
    'console search (GET /bans?q=10.1.&limit=50)',
    async () => (await get(admin, '/bans?q=10.1.&limit=50')).status,
  );
  await block(part, 'admin GET /export?format=nginx-geo', async () =>
    mb(await drain((await get(admin, '/export?format=nginx-geo')).body)),
  );
  await block(part, 'admin GET /export?format=ipset', async () =>
    mb(await drain((await get(admin, '/export?format=ipset')).body)),
  );
  admin.close();
}

console.log(`node ${process.version}, ${N.toLocaleString('en')} bans`);
console.log(
  `load average at start ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);

// ------------------------------------------------------------------ the memory store, with persist
let heapLine = '';
if (only === undefined || only === 'memory') {
  const dir = mkdtempSync(join(tmpdir(), 'jk-opscale-'));
  const file = join(dir, 'bans.json');
  const clock = createManualClock(Date.now());
  const base = await heap();
  let keeper = createJailkeeper({
    jails,
    logger: quiet,
    clock,
    store: createMemoryStore({ persist: file, persistDelay: '1h' }),
  });
  for (let i = 0; i < N; i += 10_000) {
    const wave = [];
    // A botnet wave: every ban ends within the same minute.
    for (let k = i; k < Math.min(N, i + 10_000); k++)
      wave.push(keeper.ban(client(k), { jail: 'login', duration: 3_600_000 + (k % 60_000) }));
    await Promise.all(wave);
  }
  const heapBans = (await heap()) - base;
  // Failures of 100,000 clients below the threshold: counters the snapshot keeps.
  for (let i = 0; i < 100_000; i++) {
    await keeper.observe({
      client: `172.${16 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
      method: 'POST',
      route: '/login',
      path: '/login',
      status: 401,
    });
  }
  const heapBefore = (await heap()) - base;
  console.log(
    `heap of the keeper: ${mb(heapBans)} with ${N.toLocaleString('en')} bans, ${mb(heapBefore)} with the counters too`,
  );

  await operatorRows('memory', keeper);
  // In a function: the metrics hold the keeper, which must be gone before the restart's heap.
  await (async (metrics) => {
    await block('memory', 'metrics text()', async () => `${metrics.text().length} B`);
  })(createMetrics(keeper));
  await block('memory', 'sweep, nothing due', () => keeper.sweep());

  // A restart: close (writes the snapshot), then a new keeper restores it.
  await block('memory', 'close() (the final snapshot)', async () => {
    await keeper.close();
    return mb(statSync(file).size);
  });
  keeper = undefined;
  await heap();
  let restarted;
  await block('memory', 'restart: construct + ready (restore)', async () => {
    restarted = createJailkeeper({
      jails,
      logger: quiet,
      clock,
      store: createMemoryStore({ persist: file, persistDelay: '1h' }),
    });
    await restarted.ready;
    const login = (await restarted.status()).jails.login;
    return `${login.currentlyBanned.toLocaleString('en')} bans, ${login.currentlyFailed.toLocaleString('en')} counters`;
  });
  const heapAfter = (await heap()) - base;
  heapLine = `heap of the keeper before the restart ${mb(heapBefore)}, after ${mb(heapAfter)} (${(((heapAfter - heapBefore) / heapBefore) * 100).toFixed(1)}%), load ${loadavg()[0].toFixed(1)}`;
  console.log(heapLine);

  clock.advance(3_700_000);
  await block('memory', `expiry wave: ${N.toLocaleString('en')} bans ending within a minute`, async () => {
    await restarted.sweep();
    return `${restarted.banCounts().login ?? 0} left`;
  });
  await restarted.close();
  rmSync(dir, { recursive: true, force: true });
}

// ------------------------------------------------------------------ Redis
if (only === undefined || only === 'redis') {
  const server = await startRedis();
  try {
    await redisPart(server.url);
  } finally {
    await server.stop();
  }
}

/** A redis-server of this bench's own on a free port; `stop()` stops only it. */
async function startRedis() {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address();
  probe.close();
  await once(probe, 'close');
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const c = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    c.on('error', () => {});
    try {
      await c.connect();
      await c.ping();
      c.disconnect();
      break;
    } catch (error) {
      c.disconnect();
      if (i === 100) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    url,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
  };
}

async function redisPart(url) {
  const prefix = 'jkopscale:';
  const admin = new Redis(url);
  const now = Number((await admin.time())[0]) * 1000;
  // Every ban ends within one minute, `waveMs` after the fill: the expiry wave comes after the rows.
  const waveMs = Number(process.env.JK_WAVE_MS ?? 240_000);
  const filled = await fillRedis(admin, {
    prefix,
    n: N,
    client,
    startMs: now,
    endOf: (i) => now + waveMs + (i % 60_000),
    reason: 'maxRetry (5) failures',
  });
  console.log(`redis  ${N.toLocaleString('en')} bans written in ${(filled / 1000).toFixed(1)} s`);

  const redisClient = new Redis(url);
  let keeper;
  await block('redis', 'a new instance: construct + ready (load)', async () => {
    keeper = createJailkeeper({
      jails,
      logger: quiet,
      store: createRedisStore({ client: redisClient, prefix, startTimeout: '60s' }),
    });
    await keeper.ready;
    return `${(keeper.banCounts().login ?? 0).toLocaleString('en')} bans loaded`;
  });
  await operatorRows('redis', keeper);
  const wait = now + waveMs - Date.now();
  if (wait < 0) console.log(`redis  the rows took longer than the wave's start (${waveMs} ms): JK_WAVE_MS`);
  else await new Promise((resolve) => setTimeout(resolve, wait));
  await block('redis', `expiry wave: ${N.toLocaleString('en')} bans ending within a minute`, async () => {
    // The keeper's own sweeps (its timer) expire them as they end.
    while (Date.now() < now + waveMs + 60_000 + 2000 || (keeper.banCounts().login ?? 0) > 0) {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return `${keeper.banCounts().login ?? 0} left`;
  });
  await block('redis', 'close()', () => keeper.close());
  redisClient.disconnect();
  admin.disconnect();
}

console.log('');
console.log(
  '| store | measure | longest block | CPU in the longest gap | most CPU in one gap (its length) | longest GC pause | total | load avg (1 min) | note |',
);
console.log('| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | --- |');
for (const r of rows) {
  console.log(
    `| ${r.part} | ${r.name} | ${r.blockMs.toFixed(1)} ms | ${r.gapCpu.toFixed(0)} ms | ${r.cpuMax.toFixed(0)} ms (${r.cpuMaxGap.toFixed(0)} ms) | ${r.gc.max.toFixed(1)} ms ${r.gc.kind} | ${r.total >= 1000 ? `${(r.total / 1000).toFixed(2)} s` : `${r.total.toFixed(0)} ms`} | ${r.load.toFixed(1)} | ${r.note} |`,
  );
}
if (heapLine) console.log(`\n${heapLine}`);
