/**
 * `jailkeeper replay` throughput on a generated combined-format log (target: 500,000 lines/s).
 * Run: node --import tsx bench/replay.bench.ts [lines]   (default 1,000,000; after `tsc -b`)
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { replay } from '../packages/cli/src/replay.js';
import { REPLAY_CONFIG, writeAccessLog } from '../test/access-log.js';

const lines = Number(process.argv[2] ?? 1_000_000);
const dir = await mkdtemp(join(tmpdir(), 'jk-replay-bench-'));
const file = join(dir, 'access.log');
await writeAccessLog(file, lines);
const { size } = await stat(file);
console.log(`log: ${lines} lines, ${(size / 1e6).toFixed(1)} MB`);
const rates: number[] = [];
for (let run = 1; run <= 5; run++) {
  const report = await replay(file, REPLAY_CONFIG);
  rates.push(report.linesPerSecond);
  console.log(
    `run ${run}: ${report.seconds} s, ${report.linesPerSecond} lines/s, ${report.bans.length} bans`,
  );
}
rates.sort((a, b) => a - b);
console.log(`median: ${rates[2]} lines/s (${((rates[2] ?? 0) / 1e6).toFixed(2)}M lines/s)`);
await rm(dir, { recursive: true });
