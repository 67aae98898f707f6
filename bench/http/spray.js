// 1,000,000 distinct failing addresses against the memory store with the default cap (100,000
// counters): the heap after a GC, every 100,000 addresses. Prints one JSON line per sample.
// Run: node --expose-gc bench/http/spray.js [addresses]
import { createJailkeeper } from '@jailkeeper/core';

if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc');
const total = Number(process.argv[2] ?? 1_000_000);
const keeper = createJailkeeper({
  jails: { login: { statuses: [401], paths: ['/login'], maxRetry: 5, findTime: '10m', banTime: '1h' } },
  logger: { info() {}, warn() {}, error() {} },
});
const sample = (addresses) => {
  globalThis.gc();
  const { heapUsed, rss } = process.memoryUsage();
  console.log(JSON.stringify({ addresses, heapMB: heapUsed / 1e6, rssMB: rss / 1e6 }));
};
sample(0);
const started = performance.now();
for (let i = 0; i < total; i++) {
  // 10.0.0.0/8 and then 11.0.0.0/8: every address distinct
  const ip = `${10 + (i >>> 24)}.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;
  keeper.check(ip);
  await keeper.observe({ client: ip, method: 'POST', route: '/login', path: '/login', status: 401 });
  if ((i + 1) % 100_000 === 0) sample(i + 1);
}
const status = await keeper.status();
console.log(
  JSON.stringify({
    done: total,
    seconds: (performance.now() - started) / 1000,
    currentlyFailed: status.jails.login?.currentlyFailed,
    banned: status.jails.login?.currentlyBanned,
  }),
);
await keeper.close();
