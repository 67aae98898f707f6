// Failure-heavy traffic at several numbers of connections: whether a configuration's CPU per
// request is the work of a request or the wait of a latency-bound closed loop (more connections
// raise the throughput of a server that waits, and leave its CPU per request as it is when the
// work is real). Each connection is a client of its own 127.x address sending 401 logins one at a
// time, as the peers bench's failure scenario does with 50. Servers as in peers.bench.js (core 0),
// every configuration and count interleaved in each round; medians over the rounds.
//   npx tsc -b && node bench/http/connections.bench.js [framework=fastify]
//     [configs=jailkeeper-redis,rlf-redis,bare] [counts=50,200] [rounds=5]
import { cpuSeconds, ensureRedis, pinRunner, processCpu, startServer } from './harness.js';
import { loopback, runLoad } from './load.js';
import { LOGIN } from './scenarios.js';

const [
  framework = 'fastify',
  configList = 'jailkeeper-redis,rlf-redis,bare',
  countList = '50,200',
  roundsArg = '5',
] = process.argv.slice(2);
const configs = configList.split(',');
const counts = countList.split(',').map(Number);
const rounds = Number(roundsArg);

await ensureRedis();
pinRunner();
const servers = new Map();
for (const config of configs) servers.set(config, await startServer(framework, config, 'failures'));
const clients = (n) =>
  Array.from({ length: n }, (_, i) => ({ address: loopback(1, i), requests: [LOGIN], repeat: true }));
for (const server of servers.values())
  await runLoad({ port: server.port, durationMs: 1500, clients: clients(50) });

const results = new Map();
for (let round = 0; round < rounds; round++) {
  for (const n of counts) {
    for (const [config, server] of servers) {
      const before = processCpu(server.pid);
      const r = await runLoad({ port: server.port, durationMs: 1500, clients: clients(n) });
      const after = processCpu(server.pid);
      const key = `${config} × ${n}`;
      if (!results.has(key)) results.set(key, []);
      results
        .get(key)
        .push({ rps: r.rps, cpuUs: (cpuSeconds(before, after) * 1e6) / Math.max(1, r.responses) });
    }
  }
}
const median = (list) => [...list].sort((a, b) => a - b)[Math.floor((list.length - 1) / 2)];
console.log(`| ${framework}: configuration × connections | req/s | server CPU µs/req |`);
console.log('| --- | ---: | ---: |');
for (const [key, rows] of results) {
  console.log(
    `| ${key} | ${median(rows.map((r) => r.rps)).toFixed(0)} | ${median(rows.map((r) => r.cpuUs)).toFixed(1)} |`,
  );
}
for (const server of servers.values()) await server.stop();
process.exit(0);
