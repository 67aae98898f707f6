// jailkeeper's adapters against the bare framework and a no-op middleware, over HTTP on loopback,
// with the server's CPU time per request as the primary figure and a 95% interval beside each.
//
// Run: npx tsc -b && node bench/http/adapters.bench.js [--rounds 21] [--seconds 1] [--warmup 1]
//   [--flood-rounds 7] [--flood-seconds 3]
//   [--scenarios clean,banned,failures,flood] [--frameworks express,fastify] [--seed n] [--json file]
//
// Each server is its own process pinned to core 0; this process generates the load (load.js: raw
// keep-alive sockets, each client on its own 127.x address) on core 1. Every scenario runs all its
// configurations in every round, in a new shuffled order per round; a figure is the median of the
// per-round values, and a ratio the median of per-round ratios to bare in the same round.
// Scenarios:
// - clean: 50 clean clients, GET /;
// - banned: 50 connections of one banned client (bare serves it; jailkeeper refuses it: 403, or
//   drop at accept);
// - failures: every request a 401 on POST /login from 50 addresses, limits never reached:
//   jailkeeper counts each one; jailkeeper-uncounted answers the same 401 through the same adapter
//   with no jail watching the route;
// - flood: a login flood, 10 attackers each guessing on 100 connections at once beside 50 clean
//   clients (jail: 401 on POST /login, maxRetry 5); prints the login handler's runs per attacker.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { MAX_RETRY } from './app.js';
import { ensureRedis, machine, pinRunner } from './harness.js';
import { cpuDifference, describeRow, runScenario, summarise } from './run-scenario.js';
import { FLOOD } from './scenarios.js';
import { formatCI, formatPercentCI, formatRatioCI, median, medianCI } from './stats.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '21' },
    seconds: { type: 'string', default: '1' },
    'flood-rounds': { type: 'string', default: '7' },
    'flood-seconds': { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    scenarios: { type: 'string', default: 'clean,banned,failures,flood' },
    frameworks: { type: 'string', default: 'express,fastify' },
    seed: { type: 'string' },
    json: { type: 'string' },
  },
});
const ROUNDS = Number(values.rounds);
const SECONDS = Number(values.seconds);
// A flood round opens 1,050 connections and needs time for every guess in flight to land.
const FLOOD_ROUNDS = Number(values['flood-rounds']);
const FLOOD_SECONDS = Number(values['flood-seconds']);
const WARMUP = Number(values.warmup);
const SEED = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
const FRAMEWORKS = values.frameworks.split(',');
const SCENARIOS = values.scenarios.split(',');

const CONFIGS = {
  clean: ['bare', 'noop', 'jailkeeper', 'jailkeeper-redis'],
  banned: ['bare', 'noop', 'jailkeeper', 'jailkeeper-drop'],
  failures: ['bare', 'noop', 'jailkeeper-uncounted', 'jailkeeper', 'jailkeeper-redis'],
  flood: ['bare', 'noop', 'jailkeeper', 'jailkeeper-redis'],
};
const LABELS = {
  bare: 'bare',
  noop: 'no-op middleware / onRequest hook (reference)',
  jailkeeper: 'jailkeeper (memory)',
  'jailkeeper-redis': 'jailkeeper (Redis)',
  'jailkeeper-drop': 'jailkeeper (memory), drop at accept',
  'jailkeeper-uncounted': 'jailkeeper (memory), the 401 not counted',
};
const TITLES = {
  clean: 'Clean traffic: 50 clients, each from its own 127.x address, GET /',
  banned: 'A banned client: 50 connections from 127.0.0.1 (bare serves it; the rate is refusals/s)',
  failures: 'Failure-heavy: every request a 401 on POST /login from 50 addresses, limits never reached',
  flood: `Login flood: ${FLOOD.attackers} attackers × ${FLOOD.parallel} parallel guesses, ${FLOOD.clean} clean clients (jail: 401 on POST /login, maxRetry ${MAX_RETRY})`,
};

pinRunner();
if (SCENARIOS.some((s) => CONFIGS[s]?.some((c) => c.endsWith('-redis')))) await ensureRedis();
const started = Date.now();
const all = [];
const lines = [];
for (const scenario of SCENARIOS) {
  const units = FRAMEWORKS.flatMap((framework) => CONFIGS[scenario].map((config) => ({ framework, config })));
  const { rows } = await runScenario({
    scenario,
    units,
    rounds: scenario === 'flood' ? FLOOD_ROUNDS : ROUNDS,
    seconds: scenario === 'flood' ? FLOOD_SECONDS : SECONDS,
    warmup: WARMUP,
    seed: SEED,
    log: (row) => process.stderr.write(`${describeRow(row)}\n`),
  });
  all.push(...rows);

  lines.push(`**${TITLES[scenario]}**`, '');
  const flood = scenario === 'flood';
  lines.push(
    flood
      ? '| framework | configuration | clean req/s | clean throughput vs bare | server CPU µs/req | CPU/req vs bare | login handler runs per attacker (median, max; attackers never served) | clean refused |'
      : `| framework | configuration | ${scenario === 'banned' ? 'refusals/s' : 'req/s'} | throughput vs bare | server CPU µs/req | CPU/req vs bare | user + system µs (ticks) | p99 ms |`,
    flood
      ? '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |'
      : '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const framework of FRAMEWORKS) {
    const fwRows = rows.filter((r) => r.framework === framework);
    for (const config of CONFIGS[scenario]) {
      if (flood) {
        const s = summarise(fwRows, config, { rate: (r) => r.cleanRps });
        // clean throughput against bare's clean throughput of the same round
        const bare = new Map(fwRows.filter((r) => r.config === 'bare').map((r) => [r.round, r]));
        const mine = fwRows.filter((r) => r.config === config && bare.has(r.round));
        const cleanRatio =
          config === 'bare'
            ? '-'
            : formatPercentCI(medianCI(mine.map((r) => r.cleanRps / bare.get(r.round).cleanRps)));
        const runs = mine.flatMap((r) => r.verify.handlerRuns);
        const refused = mine.reduce((a, r) => a + r.verify.cleanRefused, 0);
        lines.push(
          `| ${framework} | ${LABELS[config]} | ${Math.round(s.rate.median)} | ${cleanRatio} | ${formatCI(s.cpuUs)} | ${config === 'bare' ? '-' : formatRatioCI(s.cpuRatio)} | ${median(runs)}, ${Math.max(...runs)}; ${runs.filter((n) => n === 0).length} of ${runs.length} | ${refused} |`,
        );
        continue;
      }
      const rate = scenario === 'banned' ? (r) => (r.config === 'bare' ? r.rps : r.refusals) : (r) => r.rps;
      const s = summarise(fwRows, config, { rate });
      lines.push(
        `| ${framework} | ${LABELS[config]} | ${Math.round(s.rate.median)} | ${config === 'bare' ? '-' : formatPercentCI(s.rateRatio)} | ${formatCI(s.cpuUs)} | ${config === 'bare' ? '-' : formatRatioCI(s.cpuRatio)} | ${s.userUs.median.toFixed(1)} + ${s.systemUs.median.toFixed(1)} | ${s.p99.median.toFixed(2)} |`,
      );
    }
  }
  if (scenario === 'failures') {
    lines.push('');
    for (const framework of FRAMEWORKS) {
      const fwRows = rows.filter((r) => r.framework === framework);
      for (const counted of ['jailkeeper', 'jailkeeper-redis']) {
        const d = cpuDifference(fwRows, counted, 'jailkeeper-uncounted');
        lines.push(
          `- ${framework}: a counted failure (${LABELS[counted]}) costs ${formatCI(d, 2)} µs of server CPU more than the same 401 uncounted (per-round differences, median [95% CI]).`,
        );
      }
    }
  }
  lines.push('');
}

lines.push(
  `${ROUNDS} interleaved rounds of ${SECONDS} s (the flood: ${FLOOD_ROUNDS} of ${FLOOD_SECONDS} s; warm-up ${WARMUP} s), order shuffled per round (seed ${SEED}); ${machine()}; ${Math.round((Date.now() - started) / 1000)} s.`,
  'Figures: median over rounds [order-statistic 95% interval]. Ratios are per-round ratios to bare of the same round; server CPU is utime + stime of the server process, read per thread from /proc/<pid>/task/*/schedstat (ns); "user + system" are utime and stime from /proc/<pid>/stat (10 ms resolution).',
);
console.log(`\n${lines.join('\n')}`);
if (values.json)
  writeFileSync(values.json, `${JSON.stringify({ seed: SEED, machine: machine(), rows: all }, null, 2)}\n`);
process.exit(0);
