// jailkeeper against the peers (express-rate-limit with rate-limit-redis, @fastify/rate-limit,
// rate-limiter-flexible, @nestjs/throttler, hono-rate-limiter), on Express, Fastify, NestJS (on
// Express) and Hono (on @hono/node-server), with their memory stores and with Redis.
//
// Run (from a fresh clone): npx --yes pnpm@10.34.9 install && npx --yes pnpm@10.34.9 bench:peers
// or, after `tsc -b`: node bench/http/peers.bench.js [--rounds 13] [--other-rounds 6] [--seconds 1]
//   [--scenarios clean,banned,mixed,failures] [--frameworks express,fastify,nestjs,hono] [--no-readme]
//
// Each server runs pinned to core 0 (taskset), the load generator (load.js, raw sockets from many
// 127.x addresses) on core 1. Configurations are interleaved in rounds, in alternating order, so
// drift hits all alike; the figure is the median of per-round ratios to the bare framework of the
// same round, beside the server's CPU time per request from /proc. Writes bench/results/peers.md,
// peers.svg and peers.json, and the table into the README between its peers markers.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chart } from './chart.js';
import { httpRequest, loopback, runLoad } from './load.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '13' },
    'other-rounds': { type: 'string', default: '6' },
    seconds: { type: 'string', default: '1' },
    warmup: { type: 'string', default: '1' },
    scenarios: { type: 'string', default: 'clean,banned,mixed,failures' },
    frameworks: { type: 'string', default: 'express,fastify,nestjs,hono' },
    'no-readme': { type: 'boolean', default: false },
  },
});
const CLEAN_ROUNDS = Number(values.rounds);
const OTHER_ROUNDS = Number(values['other-rounds']);
const SECONDS = Number(values.seconds);
const WARMUP = Number(values.warmup);
const MAX_RETRY = 5;
const CONNECTIONS = 50;
const TICKS = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s
const pin = spawnSync('taskset', ['-c', '0', 'true']).status === 0 && cpus().length >= 2;
const started = Date.now();
// The load generator is this process: on core 1, away from the server on core 0.
if (pin) spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });

// The Redis configurations need a Redis: REDIS_URL, or a redis-server of our own on core 1.
let redisServer;
if (!process.env.REDIS_URL) {
  const probe = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => probe.once('listening', resolve));
  const { port } = probe.address();
  probe.close();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  redisServer = pin
    ? spawn('taskset', ['-c', '1', 'redis-server', ...args], { stdio: 'ignore' })
    : spawn('redis-server', args, { stdio: 'ignore' });
  await new Promise((resolve) => setTimeout(resolve, 300));
  process.env.REDIS_URL = `redis://127.0.0.1:${port}`;
}

const PEERS = {
  express: ['erl', 'erl-redis', 'rlf', 'rlf-redis'],
  fastify: ['frl', 'frl-redis', 'rlf', 'rlf-redis'],
  nestjs: ['throttler'],
  hono: ['hrl'],
};
const CONFIGS = {
  clean: (fw) => ['bare', 'jailkeeper', 'jailkeeper-redis', ...PEERS[fw]],
  banned: (fw) => ['bare', 'jailkeeper', 'jailkeeper-drop', ...PEERS[fw]],
  mixed: (fw) => ['bare', 'jailkeeper', 'jailkeeper-redis', ...PEERS[fw]],
  failures: (fw) => ['bare', 'jailkeeper', 'jailkeeper-redis', ...PEERS[fw]],
};
export const LABELS = {
  bare: 'bare',
  jailkeeper: 'jailkeeper (memory)',
  'jailkeeper-redis': 'jailkeeper (Redis)',
  'jailkeeper-drop': 'jailkeeper (memory), drop',
  erl: 'express-rate-limit (memory)',
  'erl-redis': 'express-rate-limit + rate-limit-redis',
  frl: '@fastify/rate-limit (memory)',
  'frl-redis': '@fastify/rate-limit (Redis)',
  rlf: 'rate-limiter-flexible (memory)',
  'rlf-redis': 'rate-limiter-flexible (Redis)',
  throttler: '@nestjs/throttler (memory)',
  hrl: 'hono-rate-limiter (memory)',
};
const FRAMEWORKS = values.frameworks.split(',');
const GET = httpRequest('GET', '/');
const LOGIN = httpRequest('POST', '/login', { body: '{"user":"alice","password":"guess"}' });

let attackerSerial = 0;
function clientsFor(scenario) {
  if (scenario === 'banned') {
    return {
      clients: Array.from({ length: CONNECTIONS }, () => ({
        address: '127.0.0.1',
        requests: [GET],
        repeat: true,
      })),
    };
  }
  if (scenario === 'failures') {
    return {
      clients: Array.from({ length: CONNECTIONS }, (_, i) => ({
        address: loopback(1, i),
        requests: [LOGIN],
        repeat: true,
      })),
    };
  }
  if (scenario === 'mixed') {
    // 90% clean clients; 10% attackers, each failing 5 × maxRetry times, then a fresh attacker
    const attack = Array.from({ length: 5 * MAX_RETRY }, () => LOGIN);
    const nextAttacker = () => ({
      address: loopback(2 + Math.floor(attackerSerial / 60000), attackerSerial++ % 60000),
      requests: attack,
      repeat: false,
    });
    const clients = Array.from({ length: CONNECTIONS }, (_, i) =>
      i % 10 === 9 ? nextAttacker() : { address: loopback(1, i), requests: [GET], repeat: true },
    );
    return { clients, next: nextAttacker };
  }
  return {
    clients: Array.from({ length: CONNECTIONS }, (_, i) => ({
      address: loopback(1, i),
      requests: [GET],
      repeat: true,
    })),
  };
}

function startServer(framework, config, scenario) {
  return new Promise((resolve, reject) => {
    const args = ['--expose-gc', join(here, 'peer-server.js'), framework, config, scenario];
    const child = pin
      ? spawn('taskset', ['-c', '0', process.execPath, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
      : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (data) => {
      out += data;
      const m = /ready (\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]), output: () => out });
    });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`${framework} ${config} exited with ${code}: ${out}`)));
  });
}

function cpuTicks(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

/** The pid of the node process (under taskset, the child execs node: same pid). */
async function stopServer(server) {
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.removeAllListeners('exit');
  server.child.kill('SIGINT');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
  const m = /mem (\{.*\})/.exec(server.output());
  return m ? JSON.parse(m[1]) : { rss: 0, heapUsed: 0 };
}

/** Mixed traffic: were the attackers stopped at exactly maxRetry, and was any clean client refused? */
function verifyMixed(byAddress) {
  let attackers = 0;
  let exact = 0;
  let cleanRefused = 0;
  for (const [address, counts] of byAddress) {
    if (address.startsWith('127.1.')) {
      for (const [status, n] of Object.entries(counts)) if (status !== '200') cleanRefused += n;
      continue;
    }
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    if (total < 5 * MAX_RETRY) continue; // cut off by the end of the run
    attackers++;
    if ((counts[401] ?? 0) === MAX_RETRY) exact++;
  }
  return { attackers, exact, cleanRefused };
}

const results = []; // { scenario, framework, config, round, rps, refusals, p99, cpuUs, verify }
const memory = []; // { scenario, framework, config, heapMB, rssMB }
const scenarios = values.scenarios.split(',');
for (const scenario of scenarios) {
  const rounds = scenario === 'clean' ? CLEAN_ROUNDS : OTHER_ROUNDS;
  // Every server of the scenario runs at once (idle ones cost nothing) and is warmed up once;
  // then the rounds interleave short loads across them, in alternating order.
  const servers = [];
  for (const framework of FRAMEWORKS) {
    for (const config of CONFIGS[scenario](framework)) {
      const server = await startServer(framework, config, scenario);
      await runLoad({ port: server.port, durationMs: WARMUP * 1000, ...clientsFor(scenario) });
      servers.push({ framework, config, server });
    }
  }
  for (let round = 1; round <= rounds; round++) {
    for (const { framework, config, server } of round % 2 ? servers : [...servers].reverse()) {
      const before = cpuTicks(server.child.pid);
      const r = await runLoad({ port: server.port, durationMs: SECONDS * 1000, ...clientsFor(scenario) });
      const cpuSeconds = (cpuTicks(server.child.pid) - before) / TICKS;
      const row = {
        scenario,
        framework,
        config,
        round,
        rps: r.rps,
        refusals: r.refusalsPerSecond,
        p99: r.p99,
        cpuUs: (cpuSeconds * 1e6) / Math.max(1, r.responses + r.dropped),
        ...(scenario === 'mixed' ? { verify: verifyMixed(r.byAddress) } : {}),
      };
      results.push(row);
      process.stderr.write(
        `${scenario} r${round} ${framework} ${config}: ${Math.round(scenario === 'banned' ? row.refusals : row.rps)}/s p99 ${row.p99.toFixed(2)} ms ${row.cpuUs.toFixed(1)} µs CPU/req${row.verify ? ` ${JSON.stringify(row.verify)}` : ''}\n`,
      );
    }
  }
  for (const { framework, config, server } of servers) {
    const mem = await stopServer(server);
    memory.push({ scenario, framework, config, heapMB: mem.heapUsed / 1e6, rssMB: mem.rss / 1e6 });
  }
}

// The memory spray, in its own process.
const spray = spawnSync(process.execPath, ['--expose-gc', join(here, 'spray.js')], { encoding: 'utf8' });
const sprayRows = spray.stdout
  .trim()
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l));
redisServer?.kill();

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const summary = [];
for (const scenario of scenarios) {
  for (const framework of FRAMEWORKS) {
    const rows = results.filter((r) => r.scenario === scenario && r.framework === framework);
    const bare = rows.filter((r) => r.config === 'bare');
    for (const config of CONFIGS[scenario](framework)) {
      const runs = rows.filter((r) => r.config === config);
      const metric = (r) => (scenario === 'banned' && r.config !== 'bare' ? r.refusals : r.rps);
      const ratios = runs.map((r) => metric(r) / (bare.find((b) => b.round === r.round)?.rps ?? Number.NaN));
      const verify = runs
        .map((r) => r.verify)
        .filter(Boolean)
        .reduce(
          (a, v) => ({
            attackers: a.attackers + v.attackers,
            exact: a.exact + v.exact,
            cleanRefused: a.cleanRefused + v.cleanRefused,
          }),
          { attackers: 0, exact: 0, cleanRefused: 0 },
        );
      summary.push({
        scenario,
        framework,
        config,
        label: LABELS[config],
        rps: median(runs.map(metric)),
        p99: median(runs.map((r) => r.p99)),
        cpuUs: median(runs.map((r) => r.cpuUs)),
        ratio: median(ratios),
        heapMB:
          memory.find((m) => m.scenario === scenario && m.framework === framework && m.config === config)
            ?.heapMB ?? 0,
        ...(scenario === 'mixed' ? { verify } : {}),
      });
    }
  }
}

const SCENARIO_TITLES = {
  clean: 'Clean traffic (50 clients, each from its own 127.x address, GET /)',
  banned:
    'A banned client flood (the client is over its limit; the figure is refusals per second, against bare serving it)',
  mixed: `Mixed traffic (90% clean clients, 10% attackers failing 5 × maxRetry = ${5 * MAX_RETRY} times each, then fresh attackers)`,
  failures:
    'Failure-heavy (every request a 401 from 50 addresses; limits never reached: the cost of counting)',
};
const date = new Date().toISOString().slice(0, 10);
const machine = `${cpus().length} × ${cpus()[0]?.model.trim()}, Node ${process.version}, ${pin ? 'server on core 0, load on core 1' : 'not pinned'}`;
const lines = [
  `Measured ${date} on ${machine}; ${CLEAN_ROUNDS} interleaved rounds of ${SECONDS} s for clean traffic, ${OTHER_ROUNDS} for the others; medians of per-round ratios to bare.`,
  `Command: \`node bench/http/peers.bench.js\` (${Math.round((Date.now() - started) / 1000)} s for this run).`,
  '',
];
for (const scenario of scenarios) {
  lines.push(`**${SCENARIO_TITLES[scenario]}**`, '');
  const mixed = scenario === 'mixed';
  lines.push(
    `| framework | configuration | ${scenario === 'banned' ? 'refusals/s' : 'req/s'} | ratio to bare | p99 ms | server CPU µs/req | heap MB |${mixed ? ' attackers stopped at maxRetry | clean requests refused |' : ''}`,
    `| --- | --- | ---: | ---: | ---: | ---: | ---: |${mixed ? ' ---: | ---: |' : ''}`,
  );
  for (const s of summary.filter((x) => x.scenario === scenario)) {
    const v = s.verify;
    lines.push(
      `| ${s.framework} | ${s.label} | ${Math.round(s.rps)} | ${(s.ratio * 100).toFixed(1)}% | ${s.p99.toFixed(2)} | ${s.cpuUs.toFixed(1)} | ${s.heapMB.toFixed(1)} |${mixed ? (s.config === 'bare' ? ' - | - |' : ` ${v.exact}/${v.attackers} | ${v.cleanRefused} |`) : ''}`,
    );
  }
  lines.push('');
}
lines.push(
  '**Memory: 1,000,000 distinct failing addresses against the memory store (default cap 100,000 counters)**',
  '',
);
lines.push('| addresses | heap MB (after GC) | RSS MB |', '| ---: | ---: | ---: |');
for (const row of sprayRows.filter((r) => r.addresses !== undefined)) {
  lines.push(
    `| ${row.addresses.toLocaleString('en-US')} | ${row.heapMB.toFixed(1)} | ${row.rssMB.toFixed(0)} |`,
  );
}
lines.push('');
const markdown = lines.join('\n');

const out = join(root, 'bench', 'results');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'peers.md'), `# jailkeeper against the peers\n\n${markdown}`);
writeFileSync(
  join(out, 'peers.json'),
  `${JSON.stringify({ date, machine, summary, results, spray: sprayRows }, null, 2)}\n`,
);
writeFileSync(join(out, 'peers.svg'), chart(summary, sprayRows, `${date}, ${machine}`));
if (!values['no-readme']) {
  const readmePath = join(root, 'README.md');
  const readme = readFileSync(readmePath, 'utf8');
  const startMark = '<!-- peers:start -->';
  const endMark = '<!-- peers:end -->';
  const a = readme.indexOf(startMark);
  const b = readme.indexOf(endMark);
  if (a !== -1 && b > a) {
    writeFileSync(
      readmePath,
      `${readme.slice(0, a + startMark.length)}\n\n![jailkeeper against the peers](bench/results/peers.svg)\n\n${markdown}\n${readme.slice(b)}`,
    );
  }
}
console.log(markdown);
console.log(
  `Wrote bench/results/peers.md, peers.svg, peers.json${values['no-readme'] ? '' : ' and the README table'}.`,
);
