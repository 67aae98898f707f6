// The longest single insert while a ban table fills to a million clients (half IPv4, half IPv6
// /64 keys), as a snapshot restore or a Redis load fills it: a table grows its client Maps and
// its typed arrays by doubling, and one growth is one synchronous step. Run after `tsc -b`:
//   node bench/ban-table-growth.bench.js [clients]
// @jailkeeper/core's ban table is internal: its build is imported by path.
import { loadavg } from 'node:os';
import { BanTable } from '../packages/core/dist/store/ban-table.js';

const N = Number(process.argv[2] ?? 1_000_000);
const table = new BanTable();
const now = Date.now();
let worst = 0;
let worstAt = 0;
/** The inserts at the powers of two past 65,536: where the typed arrays (and one Map) double. */
const growth = [];
const started = performance.now();
for (let i = 0; i < N; i++) {
  const client =
    i % 2
      ? `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
      : `2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::/64`;
  const t0 = performance.now();
  table.upsert({
    jail: 'login',
    client,
    startMs: now,
    endMs: now + 3_600_000 + i,
    banCount: 1,
    manual: false,
  });
  const took = performance.now() - t0;
  if (i >= 65_536 && (i & (i - 1)) === 0) growth.push(`${i.toLocaleString('en')}: ${took.toFixed(1)} ms`);
  if (took > worst) {
    worst = took;
    worstAt = i;
  }
}
console.log(
  `${N.toLocaleString('en')} clients in ${(performance.now() - started).toFixed(0)} ms; ` +
    `longest single insert ${worst.toFixed(1)} ms, at client ${worstAt.toLocaleString('en')} ` +
    `(load average ${loadavg()[0]?.toFixed(1)}; a pause of the collector or of the machine can be the longest); ` +
    `at the doublings: ${growth.join(', ')}`,
);
