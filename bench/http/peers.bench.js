// jailkeeper against the peers (express-rate-limit with rate-limit-redis, @fastify/rate-limit,
// rate-limiter-flexible, @nestjs/throttler, hono-rate-limiter), on Express, Fastify, NestJS (on
// Express) and Hono (on @hono/node-server), with their memory stores and with Redis.
//
// Run (from a fresh clone): npx --yes pnpm@10.34.9 install && npx --yes pnpm@10.34.9 bench:peers
// or, after `tsc -b`: node bench/http/peers.bench.js [--rounds 21] [--other-rounds 11] [--seconds 1]
//   [--scenarios clean,banned,mixed,failures] [--frameworks express,fastify,nestjs,hono] [--seed n]
//   [--out dir] [--no-readme] [--note "what else ran on the machine"]
//
// Each server runs pinned to core 0 (taskset), the load generator (load.js, raw sockets from many
// 127.x addresses) on core 1. Configurations are interleaved in rounds, in a new shuffled order
// each round, so drift hits all alike (run-scenario.js). The primary figure is the server's CPU
// time per request (from /proc) over bare's in the same round; every figure is a median over
// rounds with a 95% interval, and bare and a no-op middleware run in every scenario. Writes
// bench/results/peers.md (or --out), peers.svg and peers.json, and the table into the README
// between its peers markers.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MAX_RETRY } from './app.js';
import { chart } from './chart.js';
import { ensureRedis, machine, pinRunner } from './harness.js';
import { describeRow, runScenario, summarise } from './run-scenario.js';
import { formatCI, formatPercentCI, formatRatioCI } from './stats.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '21' },
    'other-rounds': { type: 'string', default: '11' },
    seconds: { type: 'string', default: '1' },
    warmup: { type: 'string', default: '1' },
    scenarios: { type: 'string', default: 'clean,banned,mixed,failures' },
    frameworks: { type: 'string', default: 'express,fastify,nestjs,hono' },
    seed: { type: 'string' },
    'no-readme': { type: 'boolean', default: false },
    out: { type: 'string' },
    // the run's conditions, printed under the command (a shared machine, another job running)
    note: { type: 'string' },
  },
});
const CLEAN_ROUNDS = Number(values.rounds);
const OTHER_ROUNDS = Number(values['other-rounds']);
const SECONDS = Number(values.seconds);
const WARMUP = Number(values.warmup);
const SEED = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
const started = Date.now();
// The load generator is this process: on core 1, away from the servers on core 0.
pinRunner();

const PEERS = {
  express: ['erl', 'erl-redis', 'rlf', 'rlf-redis'],
  fastify: ['frl', 'frl-redis', 'rlf', 'rlf-redis'],
  // their own limiters, with the memory store they ship (neither ships a Redis one); on Hono,
  // rate-limiter-flexible too (framework-agnostic), for a Redis peer
  nestjs: ['throttler'],
  hono: ['hrl', 'rlf', 'rlf-redis'],
};
// bare and the no-op reference in every scenario: the reference's own distance from bare is the
// noise floor of the run.
const CONFIGS = {
  clean: (fw) => ['bare', 'noop', 'jailkeeper', 'jailkeeper-redis', ...PEERS[fw]],
  banned: (fw) => ['bare', 'noop', 'jailkeeper', 'jailkeeper-drop', ...PEERS[fw]],
  mixed: (fw) => ['bare', 'noop', 'jailkeeper', 'jailkeeper-redis', ...PEERS[fw]],
  failures: (fw) => ['bare', 'noop', 'jailkeeper', 'jailkeeper-redis', ...PEERS[fw]],
};
export const LABELS = {
  bare: 'bare',
  noop: 'no-op middleware / hook (reference)',
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

await ensureRedis();
const results = []; // one row per server and round (run-scenario.js)
const memory = []; // { scenario, framework, config, heapMB, rssMB }
const scenarios = values.scenarios.split(',');
for (const scenario of scenarios) {
  const units = FRAMEWORKS.flatMap((framework) =>
    CONFIGS[scenario](framework).map((config) => ({ framework, config })),
  );
  const run = await runScenario({
    scenario,
    units,
    rounds: scenario === 'clean' ? CLEAN_ROUNDS : OTHER_ROUNDS,
    seconds: SECONDS,
    warmup: WARMUP,
    seed: SEED,
    log: (row) => process.stderr.write(`${describeRow(row)}\n`),
  });
  results.push(...run.rows);
  memory.push(...run.memory);
}

// The memory spray, in its own process.
const spray = spawnSync(process.execPath, ['--expose-gc', join(here, 'spray.js')], { encoding: 'utf8' });
const sprayRows = spray.stdout
  .trim()
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l));

const summary = [];
for (const scenario of scenarios) {
  for (const framework of FRAMEWORKS) {
    const rows = results.filter((r) => r.scenario === scenario && r.framework === framework);
    // a banned flood is measured in refusals (a dropped connection is one), bare in what it served
    const rate = (r) => (scenario === 'banned' && r.config !== 'bare' ? r.refusals : r.rps);
    for (const config of CONFIGS[scenario](framework)) {
      const s = summarise(rows, config, { rate });
      const verify = rows
        .filter((r) => r.config === config)
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
        rounds: s.rounds,
        rps: s.rate.median,
        throughput: s.rateRatio,
        cpuUs: s.cpuUs,
        cpuRatio: s.cpuRatio,
        // the chart's bar: requests per server CPU-second, as a share of bare's
        ratio: s.capacity.median,
        capacity: s.capacity,
        p99: s.p99.median,
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
const where = machine();
const lines = [
  `Measured ${date} on ${where}; ${CLEAN_ROUNDS} interleaved rounds of ${SECONDS} s for clean traffic, ${OTHER_ROUNDS} for the others, in a new shuffled order each round (seed ${SEED}).`,
  `Command: \`node bench/http/peers.bench.js\` (${Math.round((Date.now() - started) / 1000)} s for this run).`,
  ...(values.note ? [values.note] : []),
  'Each figure is the median over rounds with its 95% interval in brackets (order statistics). "CPU/req vs bare" is the primary figure: the server\'s CPU time per request (from /proc) over bare\'s in the same round, lower is better; the no-op reference shows how far from +0% a configuration that does nothing lands. "Throughput vs bare" is requests (refusals when banned) per second over bare\'s.',
  '',
];
for (const scenario of scenarios) {
  lines.push(`**${SCENARIO_TITLES[scenario]}**`, '');
  const mixed = scenario === 'mixed';
  lines.push(
    `| framework | configuration | ${scenario === 'banned' ? 'refusals/s' : 'req/s'} | server CPU µs/req | CPU/req vs bare | throughput vs bare | p99 ms | heap MB |${mixed ? ' attackers stopped at maxRetry | clean requests refused |' : ''}`,
    `| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |${mixed ? ' ---: | ---: |' : ''}`,
  );
  for (const s of summary.filter((x) => x.scenario === scenario)) {
    const v = s.verify;
    const bare = s.config === 'bare';
    lines.push(
      `| ${s.framework} | ${s.label} | ${Math.round(s.rps)} | ${formatCI(s.cpuUs)} | ${bare ? '-' : formatRatioCI(s.cpuRatio)} | ${bare ? '-' : formatPercentCI(s.throughput)} | ${s.p99.toFixed(2)} | ${s.heapMB.toFixed(1)} |${mixed ? (bare ? ' - | - |' : ` ${v.exact}/${v.attackers} | ${v.cleanRefused} |`) : ''}`,
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

const out = values.out ?? join(root, 'bench', 'results');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'peers.md'), `# jailkeeper against the peers\n\n${markdown}`);
writeFileSync(
  join(out, 'peers.json'),
  `${JSON.stringify({ date, machine: where, seed: SEED, summary, results, spray: sprayRows }, null, 2)}\n`,
);
writeFileSync(join(out, 'peers.svg'), chart(summary, sprayRows, `${date}, ${where}`));
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
  `Wrote ${out}/peers.md, peers.svg, peers.json${values['no-readme'] ? '' : ' and the README table'}.`,
);
process.exit(0);
