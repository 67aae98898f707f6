// Instructions per request under callgrind, two built checkouts side by side: the same
// configuration in process (inprocess-child.js, as `inprocess.bench.js --callgrind` runs it), so
// that a change to the request path is measured against the build before it whatever else the
// machine is doing. Instructions are not time, but they repeat where the CPU time of one
// short run does not.
//
// Run: node bench/http/ab-callgrind.js <before checkout> <after checkout> <framework> <config> <kind>
//   [--reps 5] [--requests 6000] [--warmup 10000]
// (each checkout built, with its own node_modules: `git worktree add ../before HEAD~1`, then
// install and `npx tsc -b` there; a checkout before startCounted was in harness.js needs it added)
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    reps: { type: 'string', default: '5' },
    requests: { type: 'string', default: '6000' },
    warmup: { type: 'string', default: '10000' },
  },
});
const [before, after, framework, config, kind] = positionals;
if (!kind) throw new Error('usage: ab-callgrind.js <before> <after> <framework> <config> <kind>');
const N = Number(values.requests);

async function count(root, core) {
  const harness = await import(join(resolve(root), 'bench', 'http', 'harness.js'));
  if (config.endsWith('-redis')) await harness.ensureRedis();
  const unit = await harness.startCounted(framework, config, kind, { core });
  for (let done = 0; done < Number(values.warmup); done += N) await unit.run(N);
  const counts = [];
  for (let rep = 0; rep < Number(values.reps); rep++)
    counts.push(Math.round(await harness.instructionsOf(unit, N)));
  unit.child.kill();
  return counts;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const [a, b] = await Promise.all([count(before, 0), count(after, 1)]);
const show = (xs) => `${median(xs)} (${Math.min(...xs)}–${Math.max(...xs)})`;
console.log(
  `${framework} ${config} ${kind}, instructions a request: before ${show(a)}; after ${show(b)}; after ÷ before ${(median(b) / median(a)).toFixed(3)}`,
);
process.exit(0);
