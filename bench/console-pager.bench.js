// The console's bans pager at 100,000 and 1,000,000 bans: how long each query takes, and the
// longest the event loop was held meanwhile (a timer that should fire every millisecond measures
// the gaps). Run by hand: node bench/console-pager.bench.js [count ...]
import { createBanPager } from '@jailkeeper/ops';

function bans(n) {
  const now = Date.now();
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = {
      jail: i % 3 === 0 ? 'login' : 'scan',
      client: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
      startMs: now - ((i * 7919) % 3_600_000),
      endMs: now + 3_600_000 + ((i * 104729) % 86_400_000),
      banCount: 1 + (i % 5),
      reason: i % 1000 === 0 ? 'credential stuffing' : 'maxRetry (5) failures within 10m',
      manual: false,
    };
  }
  // Bans arrive in no particular order: shuffle (deterministically) so no order is given for free.
  let seed = 42;
  for (let i = n - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    const j = seed % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

async function measure(label, run) {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  const started = performance.now();
  const page = await run();
  const ms = performance.now() - started;
  clearInterval(timer);
  longest = Math.max(longest, performance.now() - last);
  console.log(
    `  ${label.padEnd(44)} ${ms.toFixed(0).padStart(6)} ms   longest loop block ${longest.toFixed(0).padStart(4)} ms   (${page.total} matched)`,
  );
}

for (const n of process.argv.slice(2).map(Number).filter(Boolean).length > 0
  ? process.argv.slice(2).map(Number)
  : [100_000, 1_000_000]) {
  const list = bans(n);
  const pager = createBanPager(() => list);
  console.log(`${n.toLocaleString('en-US')} bans (Node ${process.version})`);
  await measure('first page (snapshot, order by time left)', () => pager.page({}));
  await measure('next page', () => pager.page({ offset: 50 }));
  await measure('page 1000, descending', () => pager.page({ offset: 50_000, order: 'desc' }));
  await measure('sort by address (first time)', () => pager.page({ sort: 'client' }));
  await measure('sort by address, next page', () => pager.page({ sort: 'client', offset: 50 }));
  await measure('sort by start (first time)', () => pager.page({ sort: 'startMs' }));
  await measure('search an address', () => pager.page({ q: '10.1.2.3' }));
  await measure('search a network /16', () => pager.page({ q: '10.1.0.0/16' }));
  await measure('search a network /16, page 2', () => pager.page({ q: '10.1.0.0/16', offset: 50 }));
  await measure('search part of an address ("10.1.2")', () => pager.page({ q: '10.1.2' }));
  await measure('search text in reasons ("stuffing")', () => pager.page({ q: 'stuffing' }));
  await measure('one jail', () => pager.page({ jail: 'login' }));
  pager.invalidate();
  await measure('after a change: new snapshot, first page', () => pager.page({}));
}
