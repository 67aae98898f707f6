import { createJailkeeper } from '@jailkeeper/core';
import { createRedisStore } from '@jailkeeper/redis';
import { Redis } from 'ioredis';
import { ensureRedis } from './http/harness.js';

// REDIS_URL, or a redis-server of the harness's own, stopped when this process exits.
const url = await ensureRedis();
const quiet = { info() {}, warn() {}, error() {} };
const jails = { login: { statuses: [401], paths: ['/login'], maxRetry: 5, banTime: '1h' } };
const clients = [];
const make = (prefix) => {
  const client = new Redis(url);
  clients.push(client);
  return createJailkeeper({
    jails,
    logger: quiet,
    store: createRedisStore({ client, prefix, timeout: 1000 }),
  });
};
const admin = new Redis(url);
const stats = async () => {
  const info = await admin.info('commandstats');
  const calls = (name) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
  const all = [...info.matchAll(/calls=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
  return { all, scripts: calls('evalsha') + calls('eval') };
};

const prefix = `jkbench${process.pid}:`;
const a = make(prefix);
const b = make(prefix);
await Promise.all([a.ready, b.ready]);

// 1. Clean requests: check() and observe() of a 200.
let before = await stats();
const N = 100_000;
for (let i = 0; i < N; i++) {
  const id = a.identify(`198.51.${(i >> 8) & 255}.${i & 255}`);
  a.check(id);
  await a.observe({ client: id, method: 'GET', route: '/', path: '/', status: 200 });
}
let after = await stats();
console.log(
  `Redis commands per clean request:   ${((after.all - before.all - 1) / N).toFixed(4)} (${after.all - before.all - 1} over ${N}; the INFO call excluded)`,
);

// 2. Counted failures: 4 per client (below maxRetry) and 1,000 bans.
before = await stats();
let failures = 0;
for (let c = 0; c < 2000; c++) {
  for (let i = 0; i < (c < 1000 ? 4 : 5); i++) {
    await a.observe({
      client: `203.0.${c >> 8}.${c & 255}`,
      method: 'POST',
      route: '/login',
      path: '/login',
      status: 401,
    });
    failures++;
  }
}
after = await stats();
console.log(
  `script calls per counted failure:   ${((after.scripts - before.scripts) / failures).toFixed(3)} (${after.scripts - before.scripts} over ${failures} failures, 1,000 of them bans)`,
);
console.log(
  `  (commands Redis ran inside the script per failure: ${((after.all - before.all - 1 - (after.scripts - before.scripts)) / failures).toFixed(2)}; one round trip)`,
);

// 3. Propagation: a ban made on A, seen by B (its 'ban' event from pub/sub).
const latencies = [];
for (let i = 0; i < 1000; i++) {
  const ip = `192.0.2.${i & 255}`;
  if (i >= 256 && i % 256 === 0) await a.unbanAll();
  const seen = new Promise((resolve) => {
    const on = (event) => {
      if (event.client === ip && event.origin === 'remote') {
        b.off('ban', on);
        resolve();
      }
    };
    b.on('ban', on);
  });
  const start = process.hrtime.bigint();
  await a.ban(ip, { duration: '1h', jail: 'login' });
  await seen;
  latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
}
latencies.sort((x, y) => x - y);
const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))].toFixed(2);
console.log(
  `ban propagation A -> B (1,000 bans): p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${q(1)} ms (ban call included)`,
);

await Promise.all([a.close(), b.close()]);
for (const c of [...clients, admin]) c.disconnect();
