// The garbage collector's share of a configuration under load: how much of what the server
// allocated survived the young generation's scavenges, and their pauses. A request's objects that
// outlive it by a few milliseconds (held by a timer, a listener, a property on Node's response)
// survive the scavenge that finds them, are copied, often promoted, and every scavenge costs more;
// CPU per request shows the sum, this shows the cause. It found @jailkeeper/hono's writeHead hook
// (23.8% survived, against 1.4% for bare Hono; 4.0% without the hook).
//
// Run: npx tsc -b && node bench/http/gc.bench.js [--frameworks hono,fastify] [--configs bare,jailkeeper]
//   [--scenario failures] [--seconds 3]
//
// Each configuration runs in its own server.js process (core 0) under load.js's load (core 1),
// one after another, with node --trace-gc-nvp; the figures cover the --seconds after a 1 s
// warm-up. Redis configurations use REDIS_URL, or a redis-server started on a free port.
import { parseArgs } from 'node:util';
import { ensureRedis, pinRunner, startServer } from './harness.js';
import { runLoad } from './load.js';
import { clientsFor } from './scenarios.js';

const { values } = parseArgs({
  options: {
    frameworks: { type: 'string', default: 'express,fastify,hono' },
    configs: { type: 'string', default: 'bare,jailkeeper,jailkeeper-redis,rlf-redis' },
    scenario: { type: 'string', default: 'failures' },
    seconds: { type: 'string', default: '3' },
  },
});
pinRunner();

/** The name=value fields of one --trace-gc-nvp line. */
function fields(line) {
  const out = {};
  for (const m of line.matchAll(/(\w[\w.]*)=([\d.]+)/g)) out[m[1]] ??= Number(m[2]);
  return out;
}

const rows = [];
for (const framework of values.frameworks.split(',')) {
  for (const config of values.configs.split(',')) {
    if (config.endsWith('-redis')) await ensureRedis();
    let server;
    try {
      server = await startServer(framework, config, values.scenario, { nodeArgs: ['--trace-gc-nvp'] });
    } catch (error) {
      console.error(`${framework} ${config}: ${error.message}`);
      continue;
    }
    let out = '';
    server.child.stdout.on('data', (d) => {
      out += d;
    });
    const load = clientsFor(values.scenario);
    await runLoad({ port: server.port, durationMs: 1000, ...load });
    const from = out.length;
    const r = await runLoad({ port: server.port, durationMs: Number(values.seconds) * 1000, ...load });
    const lines = out.slice(from).split('\n');
    await server.stop();
    let scavenges = 0;
    let scavengeMs = 0;
    let allocated = 0;
    let survived = 0;
    let promoted = 0;
    let marks = 0;
    let markMs = 0;
    for (const line of lines) {
      if (/ gc=s /.test(line)) {
        const f = fields(line);
        scavenges++;
        scavengeMs += f.pause ?? 0;
        allocated += f.allocated ?? 0;
        survived += f.new_space_survived ?? 0;
        promoted += f.promoted ?? 0;
      } else if (/ gc=(mc|ms) /.test(line)) {
        marks++;
        markMs += fields(line).pause ?? 0;
      }
    }
    const requests = Math.max(1, r.responses + r.dropped);
    const row = {
      framework,
      config,
      requests,
      scavenges,
      scavengeMs,
      survivedPct: allocated > 0 ? (100 * survived) / allocated : Number.NaN,
      promotedPerRequest: promoted / requests,
      marks,
      markMs,
    };
    rows.push(row);
    console.error(
      `${framework} ${config}: ${requests} requests, ${scavenges} scavenges (${scavengeMs.toFixed(0)} ms), ${row.survivedPct.toFixed(1)}% survived`,
    );
  }
}

console.log(
  `\n${values.scenario}, ${values.seconds} s each after 1 s of warm-up (node --trace-gc-nvp, server on core 0)\n`,
);
console.log(
  '| framework | configuration | requests | scavenges | their pauses ms | survived the young generation | promoted B/req | mark-compacts (ms) |',
);
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) {
  console.log(
    `| ${r.framework} | ${r.config} | ${r.requests} | ${r.scavenges} | ${r.scavengeMs.toFixed(0)} | ${r.survivedPct.toFixed(1)}% | ${r.promotedPerRequest.toFixed(0)} | ${r.marks} (${r.markMs.toFixed(0)}) |`,
  );
}
