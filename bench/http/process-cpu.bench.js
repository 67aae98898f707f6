// The clean path as a whole process sees it: a server process (server.js) serves N `GET /` over
// keep-alive connections from this process, and its CPU time (all threads, user + system, from
// /proc) between "ready" and the last answer is divided by N. Everything a server pays per
// request counts here, what an in-process loop may miss: per-connection listeners, objects and
// closures made per request, the garbage they leave for the collector, JIT warm-up on the way.
//
// Run: npx tsc -b && node bench/http/process-cpu.bench.js [--frameworks fastify,express,hono]
//   [--pairs 9] [--requests 20000] [--connections 8] [--configs noop,jailkeeper]
//
// Each pair runs bare, then each configuration, in a new process each, in turn (A B C A B C …),
// the server on core 0 and this process on core 1 when taskset works. The figure of a pair is
// the configuration's CPU per request over bare's in the same pair (+x %); the report gives the
// median over pairs and its 95% interval, with the machine's load average beside it.
import { Agent, request } from 'node:http';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { cpuSeconds, machine, pinRunner, processCpu, startServer } from './harness.js';
import { formatCI, median, medianCI } from './stats.js';

const { values } = parseArgs({
  options: {
    frameworks: { type: 'string', default: 'fastify,express,hono' },
    pairs: { type: 'string', default: '9' },
    requests: { type: 'string', default: '20000' },
    connections: { type: 'string', default: '8' },
    configs: { type: 'string', default: 'noop,jailkeeper' },
  },
});
const PAIRS = Number(values.pairs);
const N = Number(values.requests);
const CONNECTIONS = Number(values.connections);
const CONFIGS = values.configs.split(',');

/** Sends N `GET /` over CONNECTIONS keep-alive connections; resolves when all are answered. */
function load(port) {
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  let sent = 0;
  let done = 0;
  return new Promise((resolve, reject) => {
    const next = () => {
      if (sent >= N) return;
      sent++;
      const req = request({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        res.resume();
        res.on('end', () => {
          if (++done === N) {
            agent.destroy();
            resolve();
          } else next();
        });
      });
      req.on('error', reject);
      req.end();
    };
    for (let i = 0; i < CONNECTIONS; i++) next();
  });
}

/** CPU µs per request of one server process of `config`. */
async function measure(framework, config) {
  const server = await startServer(framework, config, 'clean');
  const before = processCpu(server.pid);
  await load(server.port);
  const after = processCpu(server.pid);
  await server.stop();
  return (cpuSeconds(before, after) * 1e6) / N;
}

pinRunner();
console.log(
  `# process CPU per clean request: ${machine()}; N=${N}, ${CONNECTIONS} connections, ${PAIRS} pairs`,
);
for (const framework of values.frameworks.split(',')) {
  const over = new Map(CONFIGS.map((c) => [c, []]));
  const bare = [];
  const loads = [];
  for (let pair = 0; pair < PAIRS; pair++) {
    loads.push(loadavg()[0]);
    const base = await measure(framework, 'bare');
    bare.push(base);
    for (const config of CONFIGS) {
      const cost = await measure(framework, config);
      over.get(config).push((cost / base - 1) * 100);
    }
  }
  console.log(
    `${framework}: bare ${median(bare).toFixed(2)} µs/request; load average ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}`,
  );
  for (const config of CONFIGS) {
    const figures = over.get(config);
    console.log(
      `  ${config.padEnd(12)} ${`${formatCI(medianCI(figures))} %`} over bare (pairs: ${figures.map((f) => f.toFixed(1)).join(' ')})`,
    );
  }
}
