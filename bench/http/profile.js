// A CPU profile of one configuration under load, covering only the measured window, summarised
// per request; with --against, the same for a second configuration and where the difference goes.
//
// Run: npx tsc -b && node bench/http/profile.js <express|fastify> <config> <scenario>
//   [--against <config>] [--seconds 5] [--inprocess] [--requests 100000] [--out dir] [--top 25]
//
// Over HTTP (default), the server is server.js on core 0 under load.js's load on core 1 for
// --seconds after a 1 s warm-up. With --inprocess, the configuration runs in inprocess-child.js
// (scenario: clean, banned or failure) for --requests after 40,000 of warm-up: no kernel time,
// so the profile is the JavaScript alone. Profiles (.cpuprofile) are written to --out (default
// a temporary directory); profile-summary.js reads them.
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureRedis, pinRunner, startInprocess, startServer } from './harness.js';
import { runLoad } from './load.js';
import { formatDifference, formatProfile, summarise } from './profile-summary.js';
import { clientsFor } from './scenarios.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    against: { type: 'string' },
    seconds: { type: 'string', default: '5' },
    inprocess: { type: 'boolean', default: false },
    requests: { type: 'string', default: '100000' },
    out: { type: 'string' },
    top: { type: 'string', default: '25' },
  },
});
const [framework, config, scenario] = positionals;
if (!scenario) throw new Error('usage: profile.js <framework> <config> <scenario> [--against <config>]');
const out = values.out ?? mkdtempSync(join(tmpdir(), 'jk-profile-'));
mkdirSync(out, { recursive: true });
const TOP = Number(values.top);

async function profileOne(cfg) {
  const file = join(out, `${framework}-${cfg}-${scenario}${values.inprocess ? '-inprocess' : ''}.cpuprofile`);
  if (cfg.endsWith('-redis')) await ensureRedis();
  if (values.inprocess) {
    const unit = await startInprocess(framework, cfg, scenario);
    for (let done = 0; done < 40_000; done += 2000) await unit.run(2000);
    await unit.ask('profile-start', 'profiling');
    const r = await unit.run(Number(values.requests));
    await unit.ask(`profile-stop ${file}`, 'profiled');
    unit.child.kill();
    return { file, requests: r.n, cpuUs: r.cpuUs };
  }
  const server = await startServer(framework, cfg, scenario);
  await runLoad({ port: server.port, durationMs: 1000, ...clientsFor(scenario) });
  await server.ask('profile-start', 'profiling');
  const r = await runLoad({
    port: server.port,
    durationMs: Number(values.seconds) * 1000,
    ...clientsFor(scenario),
  });
  await server.ask(`profile-stop ${file}`, 'profiled');
  await server.stop();
  return { file, requests: r.responses + r.dropped };
}

if (!values.inprocess) pinRunner();
const where = values.inprocess ? ' (in process)' : ' (HTTP)';
const a = await profileOne(config);
const sa = summarise(a.file);
console.log(formatProfile(`${framework} ${config} ${scenario}${where}`, sa, a.requests, TOP));
if (values.against) {
  const b = await profileOne(values.against);
  const sb = summarise(b.file);
  console.log(
    `\n${formatProfile(`${framework} ${values.against} ${scenario}${where}`, sb, b.requests, TOP)}`,
  );
  console.log(
    `\n${formatDifference(`${config} minus ${values.against}`, sa, a.requests, sb, b.requests, TOP)}`,
  );
}
console.log(`\nProfiles: ${out}`);
process.exit(0);
