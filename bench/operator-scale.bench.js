// Operators' calls, exports, expiry, sweep and a restart at a million bans on the memory store
// (persist on), each measured for its longest event-loop block with monitorEventLoopDelay, the
// machine's 1-minute load average beside each figure. Successor of ban-scale.bench.js's memory
// part (issue 26); the Redis part stays there.
//   node --expose-gc bench/operator-scale.bench.js [bans=1000000]
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createJailkeeper, createManualClock, createMemoryStore } from '@jailkeeper/core';
// @jailkeeper/ops is not a dependency of the benchmarks: its build is imported by path.
import { createAdminApi, createMetrics } from '../packages/ops/dist/index.js';

const N = Number(process.argv[2] ?? 1_000_000);
const quiet = { info() {}, warn() {}, error() {} };
const jails = { login: { statuses: [401], paths: ['/login'], maxRetry: 5, banTime: '1h' } };
const TOKEN = 'a-bench-token-of-16+';
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

const rows = [];
/**
 * Runs `work` and records its longest event-loop block (monitorEventLoopDelay, 1 ms resolution:
 * the delay past the resolution is the block), the total time and the load average at the end.
 */
async function block(name, work) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  // A timer keeps the loop turning while `work` waits on nothing but itself.
  const tick = setInterval(() => {}, 1);
  h.enable();
  // The histogram records the gap between two of its ticks: the first tick must come before the work.
  await new Promise((resolve) => setTimeout(resolve, 5));
  const started = performance.now();
  const result = await work();
  const total = performance.now() - started;
  // A block is recorded when the loop next turns: let it turn before reading.
  await new Promise((resolve) => setTimeout(resolve, 5));
  h.disable();
  clearInterval(tick);
  const row = { name, blockMs: h.max / 1e6, total, load: loadavg()[0], note: result ?? '' };
  rows.push(row);
  console.log(
    `${name.padEnd(64)} block ${row.blockMs.toFixed(1).padStart(7)} ms  total ${(total / 1000).toFixed(2).padStart(6)} s  load ${row.load.toFixed(1)}  ${row.note}`,
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

const dir = mkdtempSync(join(tmpdir(), 'jk-opscale-'));
const file = join(dir, 'bans.json');
console.log(`node ${process.version}, ${N.toLocaleString('en')} bans, memory store, persist ${file}`);
console.log(
  `load average at start ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);

const clock = createManualClock(Date.now());
const base = heap();
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
const heapBefore = heap() - base;
console.log(`heap of the keeper with ${N.toLocaleString('en')} bans: ${mb(heapBefore)}`);

let admin = createAdminApi(keeper, { token: TOKEN });
let metrics = createMetrics(keeper);
await block('admin GET /bans (no query)', async () => {
  const res = await get(admin, '/bans');
  return `${JSON.parse(res.body).bans.length} bans, next: ${JSON.parse(res.body).next !== undefined}`;
});
await block(
  'admin GET /bans?limit=5000',
  async () => `${(await drain((await get(admin, '/bans?limit=5000')).body)).toLocaleString('en')} B`,
);
await block('admin GET /bans/stream (every ban, NDJSON)', async () =>
  mb(await drain((await get(admin, '/bans/stream')).body)),
);
await block('admin GET /status', async () => (await get(admin, '/status')).status);
await block(
  'keeper.status()',
  async () => `${(await keeper.status()).jails.login.bannedClients.length} listed`,
);
await block(
  'keeper.bansPage({ limit: 5000 })',
  async () => `${(await keeper.bansPage({ limit: 5000 })).bans.length} bans`,
);
await block(
  'console page (GET /bans?sort=endMs&limit=50): snapshot + sort',
  async () => (await get(admin, '/bans?sort=endMs&limit=50')).status,
);
await block(
  'console search (GET /bans?q=10.1.&limit=50)',
  async () => (await get(admin, '/bans?q=10.1.&limit=50')).status,
);
await block('admin GET /export?format=nginx-geo', async () =>
  mb(await drain((await get(admin, '/export?format=nginx-geo')).body)),
);
await block('admin GET /export?format=ipset', async () =>
  mb(await drain((await get(admin, '/export?format=ipset')).body)),
);
await block('metrics text()', async () => `${metrics.text().length} B`);
await block('sweep, nothing due', () => keeper.sweep());
admin.close();
admin = undefined;
metrics = undefined; // it holds the keeper

// A restart: close (writes the snapshot), then a new keeper restores it.
const closeRow = await block('close() (the final snapshot, written a chunk at a time)', async () => {
  await keeper.close();
  return mb(statSync(file).size);
});
void closeRow;
keeper = undefined;
gc();
let restarted;
await block('restart: construct + ready (restore of the snapshot)', async () => {
  restarted = createJailkeeper({
    jails,
    logger: quiet,
    clock,
    store: createMemoryStore({ persist: file, persistDelay: '1h' }),
  });
  await restarted.ready;
  return `${Object.values(restarted.banCounts())
    .reduce((a, b) => a + b, 0)
    .toLocaleString(
      'en',
    )} bans, ${(await restarted.status()).jails.login.currentlyFailed.toLocaleString('en')} counters`;
});
const heapAfter = heap() - base;
console.log(
  `heap before the restart ${mb(heapBefore)}, after ${mb(heapAfter)} (${(((heapAfter - heapBefore) / heapBefore) * 100).toFixed(1)}%)`,
);

clock.advance(3_700_000);
await block(`expiry wave: ${N.toLocaleString('en')} bans ending within one minute (sweep)`, async () => {
  await restarted.sweep();
  return `${restarted.activeBans().length} left`;
});
await restarted.close();
rmSync(dir, { recursive: true, force: true });

console.log('');
console.log('| measure | longest block | total | load avg (1 min) | note |');
console.log('| --- | ---: | ---: | ---: | --- |');
for (const r of rows) {
  console.log(
    `| ${r.name} | ${r.blockMs.toFixed(1)} ms | ${r.total >= 1000 ? `${(r.total / 1000).toFixed(2)} s` : `${r.total.toFixed(0)} ms`} | ${r.load.toFixed(1)} | ${r.note} |`,
  );
}
console.log(
  `| heap before / after the restart | ${mb(heapBefore)} / ${mb(heapAfter)} | | ${loadavg()[0].toFixed(1)} | |`,
);
