// Bytes allocated per request, by site: V8's sampling heap profiler (objects the GC collected
// kept, so it counts allocation, not retention) on a server under load, for the measured window
// only. One configuration at a time (server on core 0, load on core 1).
//
// Run: npx tsc -b && REDIS_URL=redis://127.0.0.1:<port> node bench/http/heap-profile.js
//   [--frameworks fastify,hono] [--configs jailkeeper-redis,rlf-redis] [--scenario failures]
//   [--seconds 4] [--interval 4096] [--out dir] [--top 30] [--node-args '--no-turbo-inlining']
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureRedis, pinRunner, startServer } from './harness.js';
import { formatHeap, summariseHeap } from './heap-summary.js';
import { runLoad } from './load.js';
import { clientsFor } from './scenarios.js';

const { values } = parseArgs({
  options: {
    frameworks: { type: 'string', default: 'fastify,hono' },
    configs: { type: 'string', default: 'jailkeeper-redis,rlf-redis' },
    scenario: { type: 'string', default: 'failures' },
    seconds: { type: 'string', default: '4' },
    interval: { type: 'string', default: '4096' },
    out: { type: 'string' },
    top: { type: 'string', default: '30' },
    'node-args': { type: 'string', default: '' },
  },
});
const out = values.out ?? mkdtempSync(join(tmpdir(), 'jk-heap-'));
mkdirSync(out, { recursive: true });
pinRunner();

/** Redis's calls so far (INFO commandstats), when redis-cli is at hand: { calls, bytes in } */
function redisCalls() {
  try {
    const url = new URL(process.env.REDIS_URL);
    const port = url.port || '6379';
    // calls from the client only: script runs (a script's own commands are counted apart)
    const stats = execFileSync('redis-cli', ['-h', url.hostname, '-p', port, 'INFO', 'commandstats'], {
      encoding: 'utf8',
    });
    const stats2 = execFileSync('redis-cli', ['-h', url.hostname, '-p', port, 'INFO', 'stats'], {
      encoding: 'utf8',
    });
    let calls = 0;
    for (const m of stats.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm))
      if (m[1] === 'evalsha' || m[1] === 'eval' || m[1] === 'multi') calls += Number(m[2]);
    const bytes = Number(/total_net_input_bytes:(\d+)/.exec(stats2)?.[1] ?? 0);
    return { calls, bytes };
  } catch {
    return undefined;
  }
}

const totals = [];
for (const framework of values.frameworks.split(',')) {
  for (const config of values.configs.split(',')) {
    if (config.endsWith('-redis')) await ensureRedis();
    const nodeArgs = values['node-args'].split(' ').filter(Boolean);
    const server = await startServer(framework, config, values.scenario, { nodeArgs });
    const load = clientsFor(values.scenario);
    await runLoad({ port: server.port, durationMs: 1000, ...load });
    const file = join(out, `${framework}-${config}-${values.scenario}.heapprofile`);
    const before = config.endsWith('-redis') ? redisCalls() : undefined;
    await server.ask(`heap-start ${values.interval}`, 'heaping');
    const r = await runLoad({ port: server.port, durationMs: Number(values.seconds) * 1000, ...load });
    await server.ask(`heap-stop ${file}`, 'heaped');
    const after = before === undefined ? undefined : redisCalls();
    await server.stop();
    const requests = r.responses + r.dropped;
    const s = summariseHeap(file);
    const calls = after === undefined ? Number.NaN : (after.calls - before.calls) / requests;
    const redisBytes = after === undefined ? Number.NaN : (after.bytes - before.bytes) / requests;
    totals.push({ framework, config, requests, kb: s.total / requests / 1024, calls, redisBytes });
    writeFileSync(`${file}.requests`, String(requests));
    console.log(
      `${formatHeap(`${framework} ${config} ${values.scenario}`, s, requests, Number(values.top))}\n`,
    );
  }
}
console.log(
  '| framework | configuration | requests | KB allocated per request | Redis calls (EVALSHA) per request | bytes sent to Redis per request |',
);
console.log('| --- | --- | ---: | ---: | ---: | ---: |');
for (const t of totals)
  console.log(
    `| ${t.framework} | ${t.config} | ${t.requests} | ${t.kb.toFixed(2)} | ${t.calls.toFixed(3)} | ${t.redisBytes.toFixed(0)} |`,
  );
console.log(`\nProfiles: ${out}`);
process.exit(0);
