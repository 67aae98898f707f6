// Throughput of each adapter against the bare framework, measured in the same run.
// Run: npx tsc -b && node bench/http/adapters.bench.js [rounds] [seconds]
// Each server runs pinned to core 0 (taskset), the load generator to core 1. Configurations are
// interleaved in rounds so that drift hits all alike; the figure is the median per-round ratio.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const here = dirname(fileURLToPath(import.meta.url));

// The redis configuration needs a Redis: REDIS_URL, or a redis-server of our own.
let redisServer;
if (!process.env.REDIS_URL) {
  const { createServer } = await import('node:net');
  const probe = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => probe.once('listening', resolve));
  const { port } = probe.address();
  probe.close();
  redisServer = spawn(
    'taskset',
    [
      '-c',
      '1',
      'redis-server',
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
    ],
    { stdio: 'ignore' },
  );
  await new Promise((resolve) => setTimeout(resolve, 300));
  process.env.REDIS_URL = `redis://127.0.0.1:${port}`;
}
const rounds = Number(process.argv[2] ?? 7);
const seconds = Number(process.argv[3] ?? 3);
const CONFIGS = (process.env.CONFIGS ?? 'bare,noop,jailkeeper,redis,banned').split(',');
const FRAMEWORKS = ['express', 'fastify'];
const TICKS = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s

function startServer(framework, mode) {
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', ['-c', '0', process.execPath, join(here, 'server.js'), framework, mode], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child.stdout.on('data', (data) => {
      const m = /ready (\d+)/.exec(String(data));
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.on('error', reject);
  });
}

function cpuTicks(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

async function load(port) {
  const result = await autocannon({ url: `http://127.0.0.1:${port}/`, connections: 50, duration: seconds });
  return {
    rps: result.requests.average,
    p99: result.latency.p99,
    errors: result.errors,
    non2xx: result.non2xx,
  };
}

const results = {}; // framework -> mode -> [{rps, p99, cpuUs}]
for (let round = 1; round <= rounds; round++) {
  for (const framework of FRAMEWORKS) {
    for (const mode of round % 2 ? CONFIGS : [...CONFIGS].reverse()) {
      const { child, port } = await startServer(framework, mode);
      await load(port); // warm-up (JIT, connection setup) at a lower weight: not recorded
      const before = cpuTicks(child.pid);
      const r = await load(port);
      const cpu = ((cpuTicks(child.pid) - before) / TICKS) * 1e6;
      child.kill();
      const perRequest = cpu / (r.rps * seconds);
      results[framework] ??= {};
      results[framework][mode] ??= [];
      results[framework][mode].push({ ...r, cpuUs: perRequest });
      process.stderr.write(
        `round ${round} ${framework} ${mode}: ${Math.round(r.rps)} req/s, p99 ${r.p99} ms, ${perRequest.toFixed(1)} us CPU/req\n`,
      );
    }
  }
}

const LABELS = {
  bare: 'bare',
  noop: 'a no-op middleware / onRequest hook (reference)',
  jailkeeper: 'jailkeeper (memory), clean client',
  redis: 'jailkeeper (Redis), clean client',
  banned: 'jailkeeper, banned client (403)',
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(
  `\n| framework | configuration | req/s (median) | p99 ms | server CPU µs/req | ratio to bare (median of rounds) |`,
);
console.log('| --- | --- | ---: | ---: | ---: | ---: |');
for (const framework of FRAMEWORKS) {
  const bare = results[framework].bare;
  for (const mode of CONFIGS) {
    const runs = results[framework][mode];
    const ratios = runs.map((r, i) => r.rps / bare[i].rps);
    console.log(
      `| ${framework} | ${LABELS[mode]} | ${Math.round(median(runs.map((r) => r.rps)))} | ${median(runs.map((r) => r.p99))} | ${median(runs.map((r) => r.cpuUs)).toFixed(1)} | ${(median(ratios) * 100).toFixed(1)}% |`,
    );
  }
}
redisServer?.kill();
console.log(
  `\n${rounds} rounds of ${seconds} s, 50 connections, node ${process.version}, server on core 0, load on core 1.`,
);
