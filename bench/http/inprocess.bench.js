// The adapters' own cost, in process: the same request through Node's HTTP server on in-memory
// connections (inprocess-child.js), N at a time, with and without jailkeeper. No kernel, no load
// generator, no scheduler between request and response. For regressions that the HTTP run
// cannot see.
//
// Run: npx tsc -b && node bench/http/inprocess.bench.js [--batches 31] [--requests 2000]
//   [--warmup 40000] [--kinds clean,banned,failure] [--frameworks express,fastify] [--redis] [--seed n]
//   [--processes 3] [--configs a,b] [--node-args="--flag ..."] [--callgrind [--reps 3]]
//
// CPU time (default): each configuration is a process of its own (so that one configuration's code
// never shares JIT feedback with another's), pinned to core 0; this process only sends commands.
// Every round runs one batch of every configuration, in a new shuffled order; the figures are
// medians over batches with 95% intervals, and differences are per round, so that what the
// machine does around the process (other work on the core, its sibling, the caches) cancels.
//
// Instructions (--callgrind): each configuration runs under valgrind's callgrind, with counting
// switched on (callgrind_control) only for --reps batches after the warm-up. Instructions per
// request do not depend on the machine's load; they are not time (a cache miss costs more than an
// add), and valgrind runs about 50 times slower, so this mode uses fewer requests.
//
// Kinds:
// - clean: GET / answered 200;
// - banned: a banned client's GET / (jailkeeper: 403; bare and noop serve it: 200);
// - failure: POST /login answered 401, limits never reached (jailkeeper counts it;
//   jailkeeper-uncounted answers the same 401 with no jail watching the route).
import { parseArgs } from 'node:util';
import { ensureRedis, instructionsOf, interleave, machine, startCounted, startInprocess } from './harness.js';
import { formatCI, median, medianCI } from './stats.js';

const { values } = parseArgs({
  options: {
    batches: { type: 'string', default: '21' },
    processes: { type: 'string', default: '3' },
    requests: { type: 'string' },
    warmup: { type: 'string' },
    kinds: { type: 'string', default: 'clean,banned,failure' },
    frameworks: { type: 'string', default: 'express,fastify' },
    redis: { type: 'boolean', default: false },
    seed: { type: 'string' },
    callgrind: { type: 'boolean', default: false },
    reps: { type: 'string', default: '3' },
    configs: { type: 'string' },
    'node-args': { type: 'string', default: '' },
  },
});
const CALLGRIND = values.callgrind;
const BATCHES = Number(values.batches);
const PROCESSES = Number(values.processes);
const N = Number(values.requests ?? (CALLGRIND ? 2000 : 2000));
const WARMUP = Number(values.warmup ?? (CALLGRIND ? 10000 : 40000));
// No forced GC between batches: a full gc() makes V8 throw away compiled code, and every batch
// after it would pay for compiling again (ten times the steady cost of a request on Fastify).
const NODE_ARGS = values['node-args'].split(' ').filter(Boolean);
const REPS = Number(values.reps);
const SEED = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
const CONFIGS = {
  clean: ['bare', 'noop', 'jailkeeper', ...(values.redis ? ['jailkeeper-redis'] : [])],
  banned: ['bare', 'noop', 'jailkeeper'],
  failure: [
    'bare',
    'noop',
    'jailkeeper-uncounted',
    'jailkeeper',
    ...(values.redis ? ['jailkeeper-redis'] : []),
  ],
};
// --configs: these configurations (any of app.js, steps-<n> included) after bare, in this order.
if (values.configs) {
  const chosen = values.configs.split(',').filter((c) => c !== 'bare');
  for (const kind of Object.keys(CONFIGS)) CONFIGS[kind] = ['bare', ...chosen];
}
const LABELS = {
  bare: 'bare',
  noop: 'no-op middleware / hook',
  jailkeeper: 'jailkeeper (memory)',
  'jailkeeper-redis': 'jailkeeper (Redis)',
  'jailkeeper-uncounted': 'jailkeeper, 401 not counted',
};

/** Warms a unit up: the JIT settles, and a failure's counters fill to their kept maximum. */
async function warm(unit) {
  for (let done = 0; done < WARMUP; done += N) await unit.run(N);
}

/**
 * CPU µs per request of every configuration, round by round: Map config -> [per round], each the
 * mean of the configuration's processes in that round; and the median of each process alone,
 * Map config -> [per process], which shows how much a process differs from another of the same
 * configuration (its JIT decisions and heap layout stay with it for its whole life).
 */
async function cpuBatches(framework, kind) {
  const units = [];
  for (const config of CONFIGS[kind]) {
    for (let p = 0; p < PROCESSES; p++) {
      const unit = await startInprocess(framework, config, kind, { nodeArgs: NODE_ARGS });
      await warm(unit);
      units.push(Object.assign(unit, { batches: [] }));
    }
  }
  await interleave(units, BATCHES, SEED, async (unit) => {
    const r = await unit.run(N);
    unit.batches.push(r.cpuUs / r.n);
  });
  for (const unit of units) unit.child.kill();
  const rounds = new Map();
  const processes = new Map();
  for (const config of CONFIGS[kind]) {
    const mine = units.filter((u) => u.config === config);
    rounds.set(
      config,
      Array.from({ length: BATCHES }, (_, i) => mine.reduce((a, u) => a + u.batches[i], 0) / mine.length),
    );
    processes.set(
      config,
      mine.map((u) => median(u.batches)),
    );
  }
  return { rounds, processes };
}

/** Instructions per request of every configuration, rep by rep, under callgrind. */
async function instructionBatches(framework, kind) {
  const rounds = new Map();
  for (const config of CONFIGS[kind]) {
    const unit = await startCounted(framework, config, kind, { nodeArgs: NODE_ARGS });
    await warm(unit);
    const reps = [];
    for (let rep = 0; rep < REPS; rep++) reps.push(await instructionsOf(unit, N));
    unit.child.kill();
    rounds.set(config, reps);
    process.stderr.write(
      `${framework} ${kind} ${config}: ${reps.map((x) => Math.round(x)).join(', ')} instructions/request\n`,
    );
  }
  return { rounds, processes: undefined };
}

if (values.redis) await ensureRedis();
const kinds = values.kinds.split(',');
const frameworks = values.frameworks.split(',');
const started = Date.now();
const out = [];
const unit = CALLGRIND ? 'instructions/request' : 'CPU µs/request';
const digits = CALLGRIND ? 0 : 2;
for (const framework of frameworks) {
  for (const kind of kinds) {
    const { rounds: batches, processes } = CALLGRIND
      ? await instructionBatches(framework, kind)
      : await cpuBatches(framework, kind);
    // Differences pair round i of each configuration.
    const bare = batches.get('bare');
    const spread = (xs) => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;
    out.push(
      `**${framework}, ${kind}** (${N} requests per batch, ${CALLGRIND ? `${REPS} batches under callgrind` : `${BATCHES} rounds × ${PROCESSES} processes per configuration`})`,
      '',
    );
    out.push(
      CALLGRIND
        ? `| configuration | ${unit} | spread (min–max) | minus bare | minus the row above |`
        : `| configuration | ${unit} [95% CI] | spread of rounds (min–max) | medians of its processes | minus bare [95% CI] | minus the row above [95% CI] |`,
      CALLGRIND ? '| --- | ---: | ---: | ---: | ---: |' : '| --- | ---: | ---: | ---: | ---: | ---: |',
    );
    const show = (xs) => (CALLGRIND ? median(xs).toFixed(0) : formatCI(medianCI(xs), digits));
    let above;
    for (const config of CONFIGS[kind]) {
      const xs = batches.get(config);
      const diff = xs.map((x, i) => x - bare[i]);
      const step = above && xs.map((x, i) => x - above[i]);
      const each = processes
        ? ` ${processes
            .get(config)
            .map((x) => x.toFixed(digits))
            .join(', ')} |`
        : '';
      out.push(
        `| ${LABELS[config] ?? config} | ${show(xs)} | ${spread(xs)} |${each} ${config === 'bare' ? '-' : show(diff)} | ${step ? show(step) : '-'} |`,
      );
      above = xs;
    }
    const uncounted = kind === 'failure' ? batches.get('jailkeeper-uncounted') : undefined;
    if (uncounted !== undefined) {
      for (const counted of ['jailkeeper', 'jailkeeper-redis']) {
        const xs = batches.get(counted);
        if (xs === undefined) continue;
        const d = xs.map((x, i) => x - uncounted[i]);
        out.push(
          '',
          `A counted failure (${LABELS[counted]}) minus the same 401 uncounted: ${show(d)} ${unit}.`,
        );
      }
    }
    out.push('');
    process.stderr.write(`${framework} ${kind} done\n`);
  }
}
out.push(
  CALLGRIND
    ? `Instructions counted by callgrind over ${REPS} batches after ${WARMUP} requests of warm-up (node --single-threaded); the figure is the median batch. ${Math.round((Date.now() - started) / 1000)} s.`
    : `Batches interleaved in a shuffled order per round (seed ${SEED}); CPU time is process.cpuUsage() of the configuration's own process (all threads), per request; ${machine().replace('server on core 0, load on core 1', 'pinned to core 0')}; ${Math.round((Date.now() - started) / 1000)} s.`,
);
console.log(out.join('\n'));
process.exit(0);
