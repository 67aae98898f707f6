// What the HTTP runs share: servers pinned to core 0 in processes of their own, the runner (the
// load generator) on core 1, a Redis of our own when REDIS_URL is not set, the servers' CPU time
// from /proc, and interleaved rounds in a seeded shuffled order.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seededRandom, shuffled } from './stats.js';

const here = dirname(fileURLToPath(import.meta.url));
const TICKS = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s

// Every child (servers, Redis) goes when this process does, however it ends.
const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill();
});
// Interrupted or stopped: leave through 'exit', so that the children go too.
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130));
function own(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Whether servers and load can be pinned to cores of their own (taskset, 2 cores or more). */
export const pinned = spawnSync('taskset', ['-c', '0', 'true']).status === 0 && cpus().length >= 2;

export const machine = () =>
  `${cpus().length} × ${cpus()[0]?.model.trim()}, Node ${process.version}, ${pinned ? 'server on core 0, load on core 1' : 'not pinned'}`;

/** Moves this process (every thread) to core 1, away from the servers. */
export function pinRunner() {
  if (pinned) spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
}

/** A command under taskset on `core` when pinning works. */
export function onCore(core, command, args) {
  return pinned ? ['taskset', ['-c', String(core), command, ...args]] : [command, args];
}

async function freePort() {
  const probe = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => probe.once('listening', resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/**
 * REDIS_URL, or a redis-server of our own on a free port (on core 1), started once and stopped
 * when this process exits. Sets process.env.REDIS_URL for the servers.
 */
export async function ensureRedis() {
  if (process.env.REDIS_URL) return process.env.REDIS_URL;
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  const [command, argv] = onCore(1, 'redis-server', args);
  // unref: the runner may end while it runs ('exit' stops it)
  own(spawn(command, argv, { stdio: 'ignore' })).unref();
  // Wait until it answers, with a deadline.
  const deadline = Date.now() + 5000;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = connect({ port, host: '127.0.0.1' }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) throw new Error('redis-server did not start');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  process.env.REDIS_URL = `redis://127.0.0.1:${port}`;
  return process.env.REDIS_URL;
}

/**
 * A child process on core 0 that prints "ready[ <port>]" and then answers commands on stdin with
 * lines "<prefix> <json>". Returns { child, pid, port, ask }: `ask(command, prefix)` sends one
 * command and resolves with the JSON of the next line starting with `prefix` (default: the
 * command's first word).
 */
function startChild(script, args, nodeArgs, what, wrapper = [], core = 0) {
  return new Promise((resolve, reject) => {
    const node = [process.execPath, ...nodeArgs, join(here, script), ...args];
    const [command, argv] = wrapper.length
      ? onCore(core, wrapper[0], [...wrapper.slice(1), ...node])
      : onCore(core, node[0], node.slice(1));
    const child = own(spawn(command, argv, { stdio: ['pipe', 'pipe', 'inherit'] }));
    let out = '';
    const waiting = []; // [prefix, resolve]
    const ask = (line, prefix = line.split(' ')[0]) =>
      new Promise((done) => {
        waiting.push([prefix, done]);
        child.stdin.write(`${line}\n`);
      });
    child.stdout.on('data', (data) => {
      out += data;
      let nl = out.indexOf('\n');
      while (nl !== -1) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        const ready = /^ready(?: (\d+))?$/.exec(line);
        // Under taskset the child execs node: the pid is the server's.
        if (ready) resolve({ child, pid: child.pid, port: Number(ready[1]), ask });
        const i = waiting.findIndex(([prefix]) => line.startsWith(`${prefix} `));
        if (i !== -1) {
          const [[prefix, done]] = waiting.splice(i, 1);
          done(JSON.parse(line.slice(prefix.length + 1)));
        }
        nl = out.indexOf('\n');
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      const error = new Error(`${what} exited with ${code}`);
      reject(error);
      for (const [, done] of waiting.splice(0)) done(undefined);
    });
  });
}

/**
 * A server process (server.js) for one framework, configuration and scenario, pinned to core 0.
 * `nodeArgs` go before the script (e.g. --cpu-prof). Returns { child, pid, port, ask, stop }:
 * `ask('runs')` resolves with the JSON the server prints for that command; `stop()` asks it to
 * exit and resolves with its memory ({ rss, heapUsed }).
 */
export async function startServer(framework, config, scenario, { nodeArgs = [] } = {}) {
  const server = await startChild(
    'server.js',
    [framework, config, scenario],
    ['--expose-gc', ...nodeArgs],
    `server ${framework} ${config} ${scenario}`,
  );
  return {
    ...server,
    stop: async () => {
      const exited = new Promise((r) => server.child.once('exit', r));
      const mem = await server.ask('exit', 'mem');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      return mem ?? { rss: 0, heapUsed: 0 };
    },
  };
}

/**
 * A process of the in-process measure (inprocess-child.js), pinned to core 0. Returns
 * { child, pid, ask, run }: `run(n)` resolves with { n, cpuUs, userUs, systemUs, wallNs }.
 * `wrapper` runs node under another command (valgrind); `core` is the core it is pinned to.
 */
export async function startInprocess(
  framework,
  config,
  kind,
  { nodeArgs = [], wrapper = [], core = 0 } = {},
) {
  const unit = await startChild(
    'inprocess-child.js',
    [framework, config, kind],
    nodeArgs,
    `in-process ${framework} ${config} ${kind}`,
    wrapper,
    core,
  );
  return { ...unit, framework, config, kind, run: (n) => unit.ask(`run ${n}`, 'done') };
}

/**
 * `startInprocess` under valgrind's callgrind, counting off until `instructionsOf` switches it on.
 * One thread (--single-threaded: no concurrent JIT or GC threads), so the count is of one
 * thread's work in a fixed order; it does not depend on the core (core 1 by default leaves core 0
 * to a CPU-time run at the same time).
 */
export async function startCounted(framework, config, kind, { nodeArgs = [], core = 1 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'jk-callgrind-'));
  const unit = await startInprocess(framework, config, kind, {
    wrapper: [
      'valgrind',
      '-q',
      '--tool=callgrind',
      '--instr-atstart=no',
      `--callgrind-out-file=${join(dir, 'cg.out')}`,
    ],
    nodeArgs: ['--single-threaded', ...nodeArgs],
    core,
  });
  return { ...unit, dir };
}

/** Instructions a request over `n` requests of a `startCounted` unit, counted for them only. */
export async function instructionsOf(unit, n) {
  const pid = String(unit.pid);
  execFileSync('callgrind_control', ['--zero', pid], { stdio: 'ignore' });
  execFileSync('callgrind_control', ['--instr=on', pid], { stdio: 'ignore' });
  await unit.run(n);
  execFileSync('callgrind_control', ['--instr=off', pid], { stdio: 'ignore' });
  execFileSync('callgrind_control', ['--dump', pid], { stdio: 'ignore' });
  // each dump is a new file, cg.out.1, cg.out.2, ...: the newest holds these requests' totals
  const newest = readdirSync(unit.dir)
    .filter((f) => f.startsWith('cg.out.'))
    .sort((a, b) => Number(b.split('.').pop()) - Number(a.split('.').pop()))[0];
  const totals = /^totals: (\d+)/m.exec(readFileSync(join(unit.dir, newest), 'utf8'));
  return Number(totals?.[1] ?? Number.NaN) / n;
}

/**
 * A process's CPU time so far, all threads: `ns` from /proc/<pid>/task/<tid>/schedstat (the
 * scheduler's run time, in nanoseconds; undefined where the kernel does not offer it) and
 * `ticks` of utime + stime from /proc/<pid>/stat (1/100 s). Both count the same time; the
 * schedstat sum is what a 1 s round can resolve to better than 1%.
 */
export function processCpu(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const userTicks = Number(fields[11]);
  const systemTicks = Number(fields[12]);
  const ticks = userTicks + systemTicks;
  let ns;
  const tasks = `/proc/${pid}/task`;
  if (existsSync(`${tasks}/${pid}/schedstat`)) {
    ns = 0;
    for (const tid of readdirSync(tasks)) {
      try {
        ns += Number(readFileSync(`${tasks}/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // a thread that ended between the listing and the read
      }
    }
  }
  return { ns, ticks, userTicks, systemTicks };
}

/** CPU seconds between two processCpu() readings: from schedstat when both have it, else ticks. */
export function cpuSeconds(before, after) {
  if (before.ns !== undefined && after.ns !== undefined) return (after.ns - before.ns) / 1e9;
  return (after.ticks - before.ticks) / TICKS;
}

/** CPU seconds from the ticks alone (the utime + stime cross-check), and the two apart. */
export function tickSeconds(before, after) {
  return {
    total: (after.ticks - before.ticks) / TICKS,
    user: (after.userTicks - before.userTicks) / TICKS,
    system: (after.systemTicks - before.systemTicks) / TICKS,
  };
}

/**
 * Interleaved rounds: every round runs every unit once, in an order shuffled anew each round
 * from `seed`, so that neither drift nor a unit's position in the round favours any unit.
 * `run(unit, round)` is awaited one at a time.
 */
export async function interleave(units, rounds, seed, run) {
  const random = seededRandom(seed);
  for (let round = 1; round <= rounds; round++) {
    for (const unit of shuffled(units, random)) await run(unit, round);
  }
}
