// One scenario of an HTTP run: every server of it at once (idle ones cost nothing), each warmed up,
// then short loads interleaved in rounds, each round in a new shuffled order. The figures are
// per-round ratios to the bare framework of the same round, so drift between rounds cancels.
import { cpuSeconds, interleave, processCpu, startServer, tickSeconds } from './harness.js';
import { runLoad } from './load.js';
import { clientsFor, verifyFlood, verifyMixed } from './scenarios.js';
import { medianCI } from './stats.js';

/**
 * Runs `units` ([{ framework, config }]) through `scenario`. Returns { rows, memory }: one row per
 * unit and round, and each server's memory when it stopped.
 */
export async function runScenario({ scenario, units, rounds, seconds, warmup, seed, log = () => {} }) {
  const servers = [];
  for (const unit of units) {
    const server = await startServer(unit.framework, unit.config, scenario);
    await runLoad({ port: server.port, durationMs: warmup * 1000, ...clientsFor(scenario) });
    servers.push({ ...unit, server });
  }
  const rows = [];
  await interleave(servers, rounds, seed, async ({ framework, config, server }, round) => {
    const load = clientsFor(scenario);
    const before = processCpu(server.pid);
    const r = await runLoad({ port: server.port, durationMs: seconds * 1000, ...load });
    const after = processCpu(server.pid);
    const requests = Math.max(1, r.responses + r.dropped);
    const ticks = tickSeconds(before, after);
    const row = {
      scenario,
      framework,
      config,
      round,
      rps: r.rps,
      refusals: r.refusalsPerSecond,
      p99: r.p99,
      cpuUs: (cpuSeconds(before, after) * 1e6) / requests,
      cpuUsTicks: (ticks.total * 1e6) / requests,
      userUs: (ticks.user * 1e6) / requests,
      systemUs: (ticks.system * 1e6) / requests,
      ...(scenario === 'mixed' ? { verify: verifyMixed(r.byAddress) } : {}),
    };
    if (scenario === 'flood') {
      row.verify = verifyFlood(r.byAddress, load.attackers, await server.ask('runs'));
      row.cleanRps = row.verify.cleanOk / r.seconds;
    }
    rows.push(row);
    log(row);
  });
  const memory = [];
  for (const { framework, config, server } of servers) {
    const mem = await server.stop();
    memory.push({ scenario, framework, config, heapMB: mem.heapUsed / 1e6, rssMB: mem.rss / 1e6 });
  }
  return { rows, memory };
}

/** A one-line progress report of a row, for stderr. */
export function describeRow(row) {
  const rate = row.scenario === 'banned' ? row.refusals : row.rps;
  const extra =
    row.scenario === 'flood'
      ? ` clean ${Math.round(row.cleanRps)}/s, handler runs per attacker ${row.verify.handlerRuns.join(',')}`
      : row.verify
        ? ` ${JSON.stringify(row.verify)}`
        : '';
  return `${row.scenario} r${row.round} ${row.framework} ${row.config}: ${Math.round(rate)}/s p99 ${row.p99.toFixed(2)} ms ${row.cpuUs.toFixed(1)} µs CPU/req (user ${row.userUs.toFixed(1)}, system ${row.systemUs.toFixed(1)})${extra}`;
}

/**
 * The figures of one configuration against bare, from the rows of one scenario and framework:
 * medians with 95% intervals of the rate, the CPU per request, and their per-round ratios to bare
 * (rate: config ÷ bare, higher is better; CPU: config ÷ bare, lower is better).
 */
export function summarise(rows, config, { rate = (r) => r.rps } = {}) {
  const bare = new Map(rows.filter((r) => r.config === 'bare').map((r) => [r.round, r]));
  const runs = rows.filter((r) => r.config === config);
  const paired = runs.filter((r) => bare.has(r.round));
  return {
    config,
    rounds: runs.length,
    rate: medianCI(runs.map(rate)),
    rateRatio: medianCI(paired.map((r) => rate(r) / bare.get(r.round).rps)),
    cpuUs: medianCI(runs.map((r) => r.cpuUs)),
    cpuUsTicks: medianCI(runs.map((r) => r.cpuUsTicks)),
    userUs: medianCI(runs.map((r) => r.userUs)),
    systemUs: medianCI(runs.map((r) => r.systemUs)),
    cpuRatio: medianCI(paired.map((r) => r.cpuUs / bare.get(r.round).cpuUs)),
    /** Requests per server CPU-second, as a fraction of bare's: bare's CPU/req ÷ this one's. */
    capacity: medianCI(paired.map((r) => bare.get(r.round).cpuUs / r.cpuUs)),
    p99: medianCI(runs.map((r) => r.p99)),
  };
}

/** Per-round differences of CPU µs/request between two configurations (a − b), with an interval. */
export function cpuDifference(rows, a, b) {
  const byRound = new Map(rows.filter((r) => r.config === b).map((r) => [r.round, r]));
  return medianCI(
    rows
      .filter((r) => r.config === a && byRound.has(r.round))
      .map((r) => r.cpuUs - byRound.get(r.round).cpuUs),
  );
}
