// Micro-benchmarks of the engine's hot path, on the built package.
// Run: pnpm -r build && node --expose-gc bench/core.bench.js

import { createJailkeeper, presets } from '@jailkeeper/core';
import { createManualClock } from '@jailkeeper/core/operator';
import { measure, measureAsync } from './measure.js';

const clock = createManualClock();

const jails = {
  login: { statuses: [401], paths: ['/login'], maxRetry: 5, exempt: ['/ws'] },
  scan: { statuses: [404], maxRetry: 20 },
};
const keeper = createJailkeeper({ clock, jails, ignoreIp: ['10.0.0.0/8'] });
const ids = Array.from({ length: 1024 }, (_, i) => keeper.identify(`198.51.${i >> 8}.${i & 255}`));
// A few banned clients, so that the index is not empty.
for (let i = 0; i < 100; i++) await keeper.ban(`203.0.113.${i}`);
const banned = keeper.identify('203.0.113.7');

let sink = 0;
console.log(`node ${process.version}, ${process.arch}`);
measure('check(): client not banned', 5_000_000, (i) => {
  sink += keeper.check(ids[i & 1023]).banned ? 1 : 0;
});
measure('check(): banned client', 5_000_000, () => {
  sink += keeper.check(banned).banned ? 1 : 0;
});
const clean = { client: ids[0], method: 'GET', route: '/', path: '/', status: 200 };
await measureAsync('observe(): clean 200 response', 1_000_000, () => keeper.observe(clean));

// A failure of a client already counting (an attacker guessing): the typical counted failure.
// maxRetry is high so that no ban interrupts; the clock moves so that windows slide.
const repeatKeeper = createJailkeeper({
  clock,
  jails: { login: { statuses: [401], paths: ['/login'], maxRetry: 1000, findTime: '1m' } },
});
const repeatEvents = ids.map((client) => ({
  client,
  method: 'POST',
  route: '/login',
  path: '/login',
  status: 401,
}));
let r = 0;
await measureAsync('observe(): a failure of a client already counting', 1_000_000, () => {
  if ((++r & 1023) === 0) clock.advance(100);
  return repeatKeeper.observe(repeatEvents[r & 1023]);
});

// Failures of 1,000,000 distinct clients (each below maxRetry): the cost of counting.
const failKeeper = createJailkeeper({ clock, jails });
let n = 0;
const failIds = Array.from({ length: 1_000_000 }, (_, i) =>
  failKeeper.identify(`11.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`),
);
await measureAsync('observe(): a failure of a new client at the cap (worst case)', 300_000, () =>
  failKeeper.observe({
    client: failIds[n++ % 1_000_000],
    method: 'POST',
    route: '/login',
    path: '/login',
    status: 401,
  }),
);

// The same in a jail on every route (an app-wide jail, as the memory bound test has): each client
// counted there is also remembered for its next request's slot, in a table capped at
// maxTrackedClients. Evicting its oldest entry one at a time scanned the holes V8 leaves at a
// Map's front: 125 µs per failure past the cap, a spray's amplifier (now the oldest tenth at once).
const wideKeeper = createJailkeeper({ clock, jails: { wide: { statuses: [401], maxRetry: 5 } } });
let w = 0;
await measureAsync('observe(): a new client in an app-wide jail, past the cap', 300_000, () =>
  wideKeeper.observe({
    client: failIds[w++ % 1_000_000],
    method: 'POST',
    route: '/login',
    path: '/login',
    status: 401,
  }),
);

// 404s judged by the scanners preset (distinct paths, shared paths, probes) against the same
// jail without the judge: what the judge adds to a counted failure (a clean request pays nothing).
const plain404 = createJailkeeper({ clock, jails: { scan: { statuses: [404], maxRetry: 1000 } } });
const judged404 = createJailkeeper({
  clock,
  jails: { scan: { ...presets.scanners, maxRetry: 1000 } },
  logger: { info() {}, warn() {}, error() {} },
});
const misses = ids.map((client, i) => ({
  client,
  method: 'GET',
  route: null,
  path: `/missing/${i & 63}`,
  status: 404,
}));
let m = 0;
await measureAsync('observe(): a 404, plain jail', 1_000_000, () => {
  if ((++m & 1023) === 0) clock.advance(100);
  return plain404.observe(misses[m & 1023]);
});
await measureAsync('observe(): a 404, presets.scanners (a repeat: not counted)', 1_000_000, () => {
  if ((++m & 1023) === 0) clock.advance(100);
  return judged404.observe(misses[m & 1023]);
});
// Without distinct every miss reaches the store: the shared-path tracker and the probe match
// are what is added to the plain jail's cost.
const counted404 = createJailkeeper({
  clock,
  jails: { scan: { ...presets.scanners, distinct: false, maxRetry: 1000 } },
  logger: { info() {}, warn() {}, error() {} },
});
await measureAsync('observe(): a 404, presets.scanners without distinct', 1_000_000, () => {
  if ((++m & 1023) === 0) clock.advance(100);
  return counted404.observe(misses[m & 1023]);
});
await Promise.all([plain404.close(), judged404.close(), counted404.close()]);

// Heap of 100,000 tracked clients.
global.gc?.();
const before = process.memoryUsage().heapUsed;
const heapKeeper = createJailkeeper({ clock, jails });
for (let i = 0; i < 100_000; i++) {
  await heapKeeper.observe({
    client: `12.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    method: 'POST',
    route: '/login',
    path: '/login',
    status: 401,
  });
}
global.gc?.();
const after = process.memoryUsage().heapUsed;
console.log(
  `${'heap used by 100,000 tracked clients'.padEnd(58)} ${((after - before) / 1048576).toFixed(1).padStart(8)} MB`,
);
await Promise.all([keeper.close(), failKeeper.close(), heapKeeper.close(), repeatKeeper.close()]);
if (sink < 0) console.log(sink);
