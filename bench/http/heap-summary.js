// Reads .heapprofile files (V8's sampling heap profiler, collected objects kept) and summarises
// bytes allocated per request: by the allocating function (self), by the nearest frame in a
// library or in jailkeeper (walking up past Node's internals and native frames: the "site"), and
// by package.
//
// Run: node bench/http/heap-summary.js <file.heapprofile>:<requests> [...] [--top 30]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

/** Which package a script URL belongs to. */
export function packageOf(url) {
  if (!url) return '(native)';
  if (url.startsWith('node:')) return 'node';
  let m = /\/packages\/([\w-]+)\/(?:dist|cjs)\//.exec(url);
  if (m) return `jailkeeper/${m[1]}`;
  m = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[\w.-]+\/)?[\w.-]+)\//.exec(url);
  if (m) return m[1];
  if (url.includes('/bench/')) return 'bench';
  return url;
}

function shortUrl(url) {
  if (!url) return '';
  if (url.startsWith('node:')) return url;
  let m = /\/packages\/([\w-]+)\/(?:dist|cjs)\/(.*)$/.exec(url);
  if (m) return `${m[1]}/${m[2]}`;
  m = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?(.*)$/.exec(url);
  if (m) return m[1];
  m = /\/bench\/(.*)$/.exec(url);
  if (m) return `bench/${m[1]}`;
  return url;
}

const frameName = (cf) =>
  `${cf.functionName || '(anonymous)'} ${shortUrl(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
const isSite = (cf) => cf.url && !cf.url.startsWith('node:');

/** { total, self: Map, site: Map, pkg: Map, sitePkg: Map } in bytes. */
export function summariseHeap(file) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const self = new Map();
  const site = new Map();
  const pkg = new Map();
  const sitePkg = new Map();
  let total = 0;
  const add = (map, key, n) => map.set(key, (map.get(key) ?? 0) + n);
  const walk = (node, nearestSite) => {
    const cf = node.callFrame;
    const here = isSite(cf) ? cf : nearestSite;
    if (node.selfSize > 0) {
      total += node.selfSize;
      add(self, frameName(cf), node.selfSize);
      add(pkg, packageOf(cf.url), node.selfSize);
      const s = here ? frameName(here) : `(no library frame) ${frameName(cf)}`;
      add(site, s, node.selfSize);
      add(sitePkg, here ? packageOf(here.url) : '(none)', node.selfSize);
    }
    for (const child of node.children) walk(child, here);
  };
  walk(profile.head, undefined);
  return { total, self, site, pkg, sitePkg };
}

export function formatHeap(title, s, requests, top = 30) {
  const per = (n) => (n / requests).toFixed(0);
  const lines = [
    `### ${title}: ${(s.total / requests / 1024).toFixed(2)} KB per request (${requests} requests)`,
  ];
  const table = (heading, map, n) => {
    lines.push('', `| ${heading} | B/req | share |`, '| --- | ---: | ---: |');
    const rows = [...map].sort((a, b) => b[1] - a[1]).slice(0, n);
    for (const [k, v] of rows) lines.push(`| ${k} | ${per(v)} | ${((100 * v) / s.total).toFixed(1)}% |`);
  };
  table('package of the allocating frame', s.pkg, 20);
  table('package of the nearest library frame', s.sitePkg, 20);
  table('nearest library frame (site)', s.site, top);
  table('allocating function (self)', s.self, top);
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '30' } },
  });
  for (const arg of positionals) {
    const i = arg.lastIndexOf(':');
    const file = arg.slice(0, i);
    const requests = Number(arg.slice(i + 1));
    console.log(`${formatHeap(file, summariseHeap(file), requests, Number(values.top))}\n`);
  }
}
