// Where a configuration's instructions go, by JavaScript function: the configuration in process
// (inprocess-child.js) under callgrind, as inprocess.bench.js --callgrind runs it, with V8 writing
// its code addresses (--perf-basic-prof), so that the code callgrind can only name by address is
// named by the function V8 compiled it from. Prints, per request:
// - the self instructions of the JavaScript functions (by package, then the top functions);
// - the functions whose property reads went through V8's megamorphic load stubs, with how many
//   reads a request and the instructions those cost in all (a read that misses the stub cache goes
//   on to V8's runtime: on Express, whose req and res change prototype on every request, about
//   2,000 instructions a read);
// - the top native (V8, Node) functions, self.
//
// Run: npx tsc -b && node bench/http/callgrind-functions.js <framework> <config> <kind>
//   [--requests 6000] [--warmup 10000] [--top 30] [--match packages/]
// (`--match`: only the load-stub callers whose name contains it; default all.)
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureRedis, instructionsOf, startCounted } from './harness.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    requests: { type: 'string', default: '6000' },
    warmup: { type: 'string', default: '10000' },
    top: { type: 'string', default: '30' },
    match: { type: 'string', default: '' },
  },
});
const [framework, config, kind] = positionals;
if (!kind) throw new Error('usage: callgrind-functions.js <framework> <config> <kind>');
const N = Number(values.requests);
const TOP = Number(values.top);

if (config.endsWith('-redis')) await ensureRedis();
const unit = await startCounted(framework, config, kind, {
  nodeArgs: [
    '--perf-basic-prof',
    '--no-compact-code-space',
    '--interpreted-frames-native-stack',
    // --perf-basic-prof also writes V8's log: not into the working directory
    '--no-logfile-per-isolate',
    '--logfile=/dev/null',
  ],
});
for (let done = 0; done < Number(values.warmup); done += 2000) await unit.run(2000);
const perRequest = await instructionsOf(unit, N);
unit.child.kill();
const out = readdirSync(unit.dir)
  .filter((f) => f.startsWith('cg.out.'))
  .sort((a, b) => Number(b.split('.').pop()) - Number(a.split('.').pop()))[0];
const file = join(unit.dir, out);

// V8's map of its generated code: start, size, name.
const code = readFileSync(`/tmp/perf-${unit.pid}.map`, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((line) => {
    const [start, size, ...name] = line.split(' ');
    return [Number.parseInt(start, 16), Number.parseInt(size, 16), name.join(' ')];
  })
  .sort((a, b) => a[0] - b[0]);
function nameAt(address) {
  let lo = 0;
  let hi = code.length - 1;
  let best = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (code[mid][0] <= address) {
      best = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  if (best >= 0 && address < code[best][0] + code[best][1]) return code[best][2].replace(/^JS:[*~^+]?/, '');
  return `0x${address.toString(16)}`;
}
rmSync(`/tmp/perf-${unit.pid}.map`, { force: true });
const named = (text) => {
  const address = /0x([0-9a-f]+)/.exec(text);
  return address ? nameAt(Number.parseInt(address[1], 16)) : text.replace(/ \[.*$/, '');
};
const number = (text) => Number(text.replace(/,/g, ''));
const annotate = (args) =>
  execFileSync('callgrind_annotate', [...args, file], { maxBuffer: 1 << 30, encoding: 'utf8' });
const packageOf = (name) =>
  (/packages\/([^/]+)\//.exec(name) ??
    /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(name) ??
    /(node:[a-z_]+)/.exec(name) ?? [null, '(other)'])[1];
const row = (n, text) => `| ${Math.round(n).toLocaleString('en-US')} | ${text} |`;

// Self instructions, JavaScript by function, the rest by native function.
const js = new Map();
const native = [];
for (const line of annotate(['--inclusive=no', '--threshold=100']).split('\n')) {
  const m = /^\s*([\d,]+) \([^)]*\)\s+(.*)$/.exec(line);
  if (!m || m[2].startsWith('PROGRAM TOTALS')) continue;
  const where = m[2].replace(/^\?\?\?:/, '');
  if (/^0x[0-9a-f]+/.test(where)) {
    const name = named(where);
    js.set(name, (js.get(name) ?? 0) + number(m[1]));
  } else native.push([number(m[1]), where.replace(/ \[.*$/, '').slice(0, 120)]);
}
const byPackage = new Map();
for (const [name, n] of js) byPackage.set(packageOf(name), (byPackage.get(packageOf(name)) ?? 0) + n);

// Callers of the megamorphic load stubs: the blocks of `--tree=caller` list a callee's callers
// (`<` lines, with their call counts) before the callee (`*` line).
const stubs = /Builtins_(Keyed)?LoadIC(Trampoline)?_Megamorphic \[/;
const readers = new Map();
let callers = [];
for (const line of annotate(['--tree=caller', '--inclusive=yes']).split('\n')) {
  const caller = /^\s*([\d,]+) \([^)]*\)\s+<\s+(\S+?)(?: \(([\d,]+)x\))? /.exec(line);
  if (caller) {
    callers.push([number(caller[1]), caller[2], number(caller[3] ?? '0')]);
    continue;
  }
  const callee = /^\s*[\d,]+ \([^)]*\)\s+\*\s+(.*)$/.exec(line);
  if (callee) {
    if (stubs.test(callee[1])) {
      for (const [n, who, calls] of callers) {
        if (who.includes('Builtins_')) continue; // a stub calling another: counted at its caller
        const name = named(who);
        const seen = readers.get(name) ?? [0, 0];
        seen[0] += n;
        seen[1] += calls;
        readers.set(name, seen);
      }
    }
    callers = [];
  }
}

console.log(
  `**${framework} ${config} ${kind}**: ${Math.round(perRequest).toLocaleString('en-US')} instructions a request over ${N} requests (callgrind, node --single-threaded --perf-basic-prof)\n`,
);
console.log('| instructions/request, self | JavaScript package |\n| ---: | --- |');
for (const [name, n] of [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, TOP))
  console.log(row(n / N, name));
console.log('\n| instructions/request, self | JavaScript function |\n| ---: | --- |');
for (const [name, n] of [...js].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(row(n / N, name));
console.log(
  '\n| instructions/request | reads/request | function reading through the megamorphic load stubs |\n| ---: | ---: | --- |',
);
for (const [name, [n, calls]] of [...readers]
  .filter(([name]) => name.includes(values.match))
  .sort((a, b) => b[1][0] - a[1][0])
  .slice(0, TOP)) {
  console.log(`| ${Math.round(n / N).toLocaleString('en-US')} | ${(calls / N).toFixed(2)} | ${name} |`);
}
console.log('\n| instructions/request, self | native function |\n| ---: | --- |');
for (const [n, name] of native.sort((a, b) => b[0] - a[0]).slice(0, TOP)) console.log(row(n / N, name));
rmSync(unit.dir, { recursive: true, force: true });
