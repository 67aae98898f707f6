// Summarises a V8 .cpuprofile (node --cpu-prof, or profile.js): self and inclusive time by
// function and self time by package, per request; or where one profile's extra time over another
// goes. Idle samples (the event loop waiting) are left out: the figures are CPU, not wall time.
// Run: node bench/http/profile-summary.js <a.cpuprofile> --requests n [--top 25]
//   [--against <b.cpuprofile> --against-requests m]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

/** Which package a script belongs to: a workspace package, a node_modules package, node itself. */
export function packageOf(url) {
  if (url === '') return '(V8 / native)';
  if (url.startsWith('node:')) {
    const parts = url.slice(5).split('/');
    return `node:${parts[0] === 'internal' ? parts[1] : parts[0]}`;
  }
  const pnpm = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pnpm) return pnpm[1];
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (nm) return nm[1];
  const ws = /\/packages\/([^/]+)\//.exec(url);
  if (ws) return `@jailkeeper/${ws[1]}`;
  const bench = /\/bench\/(.+)$/.exec(url);
  if (bench) return `bench/${bench[1]}`;
  return url;
}

const shortUrl = (url) =>
  url
    .replace(/^file:\/\/.*?\/node_modules\/\.pnpm\/[^/]+\/node_modules\//, '')
    .replace(/^file:\/\/.*?\/(packages|bench)\//, '$1/');

/** Reads a profile: total, and per function self and inclusive µs, per package self µs. */
export function summarise(file) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const keyOf = (n) => {
    const f = n.callFrame;
    const name = f.functionName || '(anonymous)';
    return f.url ? `${name} ${shortUrl(f.url)}:${f.lineNumber + 1}` : name;
  };
  const self = new Map();
  const inclusive = new Map();
  const byPackage = new Map();
  let total = 0;
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i + 1] is the time from this sample to the next: the time this one stands for.
    const us = timeDeltas[i + 1] ?? 0;
    const node = nodes.get(samples[i]);
    if (node.callFrame.functionName === '(idle)') continue;
    total += us;
    const key = keyOf(node);
    self.set(key, (self.get(key) ?? 0) + us);
    const pkg = packageOf(node.callFrame.url);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us);
    const seen = new Set();
    for (let id = samples[i]; id !== undefined; id = parent.get(id)) {
      const k = keyOf(nodes.get(id));
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + us);
    }
  }
  return { total, self, inclusive, byPackage };
}

const ns = (us, requests) => ((us / requests) * 1000).toFixed(0);
const top = (m, n) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n);

/** One profile per request, as Markdown. */
export function formatProfile(title, s, requests, n = 25) {
  const lines = [
    `### ${title}: ${requests} requests, ${ns(s.total, requests)} ns of CPU sampled per request`,
    '',
  ];
  lines.push('| ns/req (self) | package |', '| ---: | --- |');
  for (const [k, us] of top(s.byPackage, n)) lines.push(`| ${ns(us, requests)} | ${k} |`);
  lines.push('', '| ns/req (self) | ns/req (inclusive) | function |', '| ---: | ---: | --- |');
  for (const [k, us] of top(s.self, n)) {
    lines.push(`| ${ns(us, requests)} | ${ns(s.inclusive.get(k) ?? 0, requests)} | ${k} |`);
  }
  return lines.join('\n');
}

/** Where profile a's time per request differs from profile b's, as Markdown. */
export function formatDifference(title, a, na, b, nb, n = 25) {
  const diff = (ma, mb) =>
    [...new Set([...ma.keys(), ...mb.keys()])]
      .map((k) => [k, ((ma.get(k) ?? 0) / na - (mb.get(k) ?? 0) / nb) * 1000])
      .sort((x, y) => Math.abs(y[1]) - Math.abs(x[1]))
      .slice(0, n);
  const lines = [
    `### ${title}: ${((a.total / na - b.total / nb) * 1000).toFixed(0)} ns of CPU per request`,
    '',
  ];
  lines.push('| ns/req | package |', '| ---: | --- |');
  for (const [k, d] of diff(a.byPackage, b.byPackage)) lines.push(`| ${d.toFixed(0)} | ${k} |`);
  lines.push('', '| ns/req (self) | function |', '| ---: | --- |');
  for (const [k, d] of diff(a.self, b.self)) lines.push(`| ${d.toFixed(0)} | ${k} |`);
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      requests: { type: 'string' },
      top: { type: 'string', default: '25' },
      against: { type: 'string' },
      'against-requests': { type: 'string' },
    },
  });
  const n = Number(values.top);
  const requests = Number(values.requests ?? 1);
  const a = summarise(positionals[0]);
  console.log(formatProfile(positionals[0], a, requests, n));
  if (values.against) {
    const b = summarise(values.against);
    const m = Number(values['against-requests'] ?? requests);
    console.log(`\n${formatProfile(values.against, b, m, n)}`);
    console.log(`\n${formatDifference(`${positionals[0]} minus ${values.against}`, a, requests, b, m, n)}`);
  }
}
