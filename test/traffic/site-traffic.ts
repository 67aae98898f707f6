/**
 * A day of traffic on a small public site, with known answers, for issue 19 ("ban the scanner,
 * not the reader"): readers (one with the broken web fonts of a talk page, one who mistypes URLs),
 * a crawler following broken links, and scanners of every kind. The same site answers in the
 * adapter tests (Express, Fastify) and in the generated access log that `jailkeeper replay` reads
 * in the tests and in docs/detection.md. Deterministic: a seeded generator, a fixed start.
 *
 * Run as a script to write the log and the config docs/detection.md replays:
 *   node --import tsx test/traffic/site-traffic.ts access.log jailkeeper.config.mjs
 */
import { writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { presets } from '@jailkeeper/core';

/** What a client is, and for an attacker how many of its requests may reach the app before the ban. */
interface Client {
  readonly ip: string;
  readonly kind: 'reader' | 'crawler' | 'scanner';
  readonly name: string;
  /** For a scanner: the preset that must ban it and the most requests it may get answered. */
  readonly bannedBy?: string;
  readonly within?: number;
}

export interface Request {
  readonly ip: string;
  readonly ua: string;
  readonly timeMs: number;
  readonly method: 'GET' | 'POST';
  readonly path: string;
  /** For POST /login: whether the password is right. */
  readonly ok?: boolean;
}

/** The jails the presets make, as a config file holds them. */
export const PRESET_CONFIG = {
  jails: {
    login: presets.login,
    scanners: presets.scanners,
    forbidden: presets.forbidden,
    badBots: presets.badBots,
  },
};

/** The jail fail2ban users copy first: 404 × 5 within 10 minutes bans for an hour. */
export const NAIVE_CONFIG = {
  jails: { 'nginx-404': { statuses: [404], maxRetry: 5, findTime: '10m', banTime: '1h' } },
};

const START_MS = Date.UTC(2026, 2, 2, 8, 0, 0);

export const PAGES: readonly string[] = [
  '/',
  '/about',
  '/talks',
  '/talks/node-security',
  ...Array.from({ length: 24 }, (_, i) => `/posts/${i + 1}`),
];
const POSTS = 24;
export const ASSETS: readonly string[] = ['/css/site.css', '/js/site.js', '/img/logo.png', '/js/deck.js'];
/** The talk page's web fonts: referenced by the page, missing on the server. */
export const MISSING_FONTS: readonly string[] = [
  '/fonts/deck-regular.woff2',
  '/fonts/deck-bold.woff2',
  '/fonts/deck-mono.woff',
];
/** Links of the site's own pages to pages that are gone. */
const BROKEN_LINKS: readonly string[] = ['/posts/old-welcome', '/files/node-security.pdf'];

/** What the site answers (the adapters' apps answer the same through their routers). */
export function statusOf(method: string, path: string, ok?: boolean): number {
  if (method === 'POST') return path === '/login' ? (ok ? 200 : 401) : 404;
  if (path === '/admin' || path.startsWith('/admin/')) return 403;
  const post = /^\/posts\/([^/]+)$/.exec(path);
  if (post !== null) {
    const n = Number(post[1]);
    return Number.isInteger(n) && n >= 1 && n <= POSTS && String(n) === post[1] ? 200 : 404;
  }
  return PAGES.includes(path) || ASSETS.includes(path) ? 200 : 404;
}

/** The probe list of a scanner (every path on the probes preset's list, under a few prefixes). */
export const PROBES: readonly string[] = [
  '/wp-login.php',
  '/xmlrpc.php',
  '/.env',
  '/.git/config',
  '/phpmyadmin/index.php',
  '/fckeditor/editor/filemanager/connectors/test.html',
  '/js/fckeditor/editor/filemanager/upload/test.html',
  '/FCKeditor/_samples/default.html',
  '/cgi-bin/luci',
  '/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php',
  '/wp-content/plugins/hello.php',
  '/blog/wp-login.php',
  '/.env.backup',
  '/pma/index.php',
  '/xampp/phpinfo.php',
  '/actuator/env',
  '/HNAP1',
  '/boaform/admin/formLogin',
  '/.aws/credentials',
  '/server-status',
];

/** Paths a scanner guesses that are on no signature list: only their number gives it away. */
export const GUESSES: readonly string[] = [
  '/backup.zip',
  '/backup.tar.gz',
  '/db.sql',
  '/dump.sql',
  '/site.tar.gz',
  '/old',
  '/test',
  '/dev',
  '/staging',
  '/api/v1/debug',
  '/config.json',
  '/database.sql',
  '/www.zip',
  '/public.zip',
  '/debug',
  '/tmp',
  '/logs/error.log',
  '/storage/logs/app.log',
  '/uploads',
  '/private',
];

const BROWSERS = [
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
  'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
];

/** mulberry32: a small seeded generator, so the day is the same on every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Traffic {
  readonly clients: readonly Client[];
  /** Every request, in time order. */
  readonly requests: readonly Request[];
}

/** The day's traffic. */
export function siteTraffic(seed = 19): Traffic {
  const rnd = random(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)] as T;
  const clients: Client[] = [];
  const requests: Request[] = [];
  const send = (
    ip: string,
    ua: string,
    timeMs: number,
    path: string,
    method: 'GET' | 'POST' = 'GET',
    ok?: boolean,
  ) => requests.push({ ip, ua, timeMs, method, path, ...(ok === undefined ? {} : { ok }) });

  /** A page view as a browser makes it: the page, its assets, the talk's fonts twice each. */
  const view = (ip: string, ua: string, t: number, page: string, first: boolean): void => {
    send(ip, ua, t, page);
    if (statusOf('GET', page) !== 200) return;
    for (const [i, asset] of ASSETS.slice(0, 3).entries()) if (first) send(ip, ua, t + 100 + i * 20, asset);
    if (first) send(ip, ua, t + 200, '/favicon.ico');
    if (page === '/talks/node-security') {
      send(ip, ua, t + 150, '/js/deck.js');
      // The browser asks for each missing font twice (the page's @font-face, then a fallback format).
      for (const [i, font] of MISSING_FONTS.entries()) {
        send(ip, ua, t + 300 + i * 10, font);
        send(ip, ua, t + 900 + i * 10, font);
      }
    }
  };
  /** A reader's visit: a few pages, sometimes the talk, sometimes a broken link of the site. */
  const session = (ip: string, ua: string, start: number, pages: number): number => {
    let t = start;
    for (let i = 0; i < pages; i++) {
      const r = rnd();
      const page =
        r < 0.2 ? '/talks/node-security' : r < 0.27 ? pick(BROKEN_LINKS) : r < 0.35 ? '/' : pick(PAGES);
      view(ip, ua, t, page, i === 0);
      t += 5_000 + Math.floor(rnd() * 55_000);
    }
    return t;
  };

  // Readers: 40, each from a network of its own, over eight hours.
  for (let i = 0; i < 40; i++) {
    const ip = `81.${10 + i}.${20 + (i % 7)}.${30 + i}`;
    clients.push({ ip, kind: 'reader', name: `reader ${i + 1}` });
    const ua = pick(BROWSERS);
    const start = START_MS + Math.floor(rnd() * 8 * 3_600_000);
    session(ip, ua, start, 3 + Math.floor(rnd() * 10));
  }

  // The reader of issue 19: an iPhone, then a desktop browser, over the day; the talk page several times.
  const talkReader = '93.184.77.21';
  clients.push({ ip: talkReader, kind: 'reader', name: 'the reader of the talk (broken fonts)' });
  let t = START_MS + 20 * 60_000;
  for (const [n, ua] of [BROWSERS[0], BROWSERS[0], BROWSERS[1], BROWSERS[1]].entries()) {
    view(talkReader, ua as string, t, '/talks/node-security', true);
    t = session(talkReader, ua as string, t + 30_000, 12);
    view(talkReader, ua as string, t, '/talks/node-security', false);
    t += (n + 1) * 3_600_000;
  }

  // A reader who mistypes three URLs.
  const typist = '151.101.33.7';
  clients.push({ ip: typist, kind: 'reader', name: 'a reader who mistypes URLs' });
  t = START_MS + 2 * 3_600_000;
  for (const path of ['/', '/abuot', '/about', '/posts/3x', '/posts/3', '/post/4', '/posts/4', '/talks']) {
    view(typist, BROWSERS[2] as string, t, path, path === '/');
    t += 8_000;
  }

  // A reader refused on the admin pages again and again, and one who signs in after two typos.
  const refused = '151.101.40.9';
  clients.push({ ip: refused, kind: 'reader', name: 'a reader refused on the admin pages' });
  t = START_MS + 3 * 3_600_000;
  for (const path of ['/', '/admin', '/admin', '/admin/settings', '/admin', '/posts/5', '/admin/settings']) {
    send(refused, BROWSERS[3] as string, t, path);
    t += 4_000;
  }
  const user = '151.101.41.3';
  clients.push({ ip: user, kind: 'reader', name: 'a user who mistypes a password twice' });
  t = START_MS + 3 * 3_600_000 + 60_000;
  send(user, BROWSERS[1] as string, t, '/login', 'POST', false);
  send(user, BROWSERS[1] as string, t + 5_000, '/login', 'POST', false);
  send(user, BROWSERS[1] as string, t + 12_000, '/login', 'POST', true);

  // A crawler following every link of the site, the broken ones and five malformed ones too.
  const crawler = '66.249.70.14';
  clients.push({ ip: crawler, kind: 'crawler', name: 'a crawler following broken links' });
  const crawlerUa = 'Mozilla/5.0 (compatible; ExampleBot/2.1; +https://bot.example.org/)';
  t = START_MS + 4 * 3_600_000;
  const malformed = ['/posts/posts/1', '/posts/1/%20', '/talks/node-security/', '/posts/2)', '/about.html'];
  for (const path of [...PAGES, ...BROKEN_LINKS, ...malformed, '/favicon.ico']) {
    send(crawler, crawlerUa, t, path);
    t += 2_000;
  }

  // A scanner walking the probe list, one address.
  const scanner = '45.148.10.81';
  clients.push({
    ip: scanner,
    kind: 'scanner',
    name: 'a scanner with a probe list',
    bannedBy: 'scanners',
    within: 2,
  });
  t = START_MS + 5 * 3_600_000;
  for (const path of PROBES) {
    send(scanner, 'Mozilla/5.0 zgrab/0.x', t, path);
    t += 700;
  }

  // The same list spread over five addresses in five networks: four probes each.
  for (let i = 0; i < 5; i++) {
    const ip = `185.${220 + i}.101.${17 + i}`;
    clients.push({
      ip,
      kind: 'scanner',
      name: `a spread scanner (${i + 1} of 5)`,
      bannedBy: 'scanners',
      within: 2,
    });
    t = START_MS + 5 * 3_600_000 + 30 * 60_000 + i * 1_000;
    for (const path of PROBES.slice(i * 4, i * 4 + 4)) {
      send(ip, 'Mozilla/5.0 (Windows NT 10.0; Win64; x64)', t, path);
      t += 5_000;
    }
  }

  // A scanner guessing paths on no signature list.
  const guesser = '194.26.29.113';
  clients.push({
    ip: guesser,
    kind: 'scanner',
    name: 'a scanner guessing paths',
    bannedBy: 'scanners',
    within: 10,
  });
  t = START_MS + 6 * 3_600_000;
  for (const path of GUESSES) {
    send(guesser, 'python-requests/2.31', t, path);
    t += 1_500;
  }

  // An attacker with 9 addresses in 3 networks, each asking for the same guesses: trying to make
  // them look like the site's broken links (three networks never reach the bound of eight).
  for (let n = 0; n < 3; n++) {
    for (let h = 0; h < 3; h++) {
      const ip = `103.${77 + n}.14.${10 + h}`;
      clients.push({
        ip,
        kind: 'scanner',
        name: `an attacker making its probes look shared (network ${n + 1}, address ${h + 1})`,
        bannedBy: 'scanners',
        within: 10,
      });
      t = START_MS + 6 * 3_600_000 + 20 * 60_000 + (n * 3 + h) * 1_000;
      for (const path of GUESSES.slice(0, 16)) {
        send(ip, 'Go-http-client/1.1', t, path);
        t += 24_000;
      }
    }
  }

  // An authorization prober: the admin pages of thirty users.
  const prober = '198.18.7.44';
  clients.push({
    ip: prober,
    kind: 'scanner',
    name: 'an authorization prober',
    bannedBy: 'forbidden',
    within: 20,
  });
  t = START_MS + 7 * 3_600_000;
  for (let i = 1; i <= 30; i++) {
    send(prober, 'curl/8.5.0', t, `/admin/users/${i}`);
    t += 1_000;
  }

  // A password guesser.
  const guesserLogin = '198.18.9.2';
  clients.push({
    ip: guesserLogin,
    kind: 'scanner',
    name: 'a password guesser',
    bannedBy: 'login',
    within: 5,
  });
  t = START_MS + 7 * 3_600_000 + 10 * 60_000;
  for (let i = 0; i < 12; i++) {
    send(guesserLogin, 'python-requests/2.31', t, '/login', 'POST', false);
    t += 2_000;
  }

  // A bad bot of fail2ban's list, reading pages.
  const bot = '198.18.12.5';
  clients.push({
    ip: bot,
    kind: 'scanner',
    name: 'an e-mail harvester (bad bot)',
    bannedBy: 'badBots',
    within: 1,
  });
  t = START_MS + 7 * 3_600_000 + 20 * 60_000;
  for (const path of PAGES.slice(0, 6)) {
    send(bot, 'EmailSiphon', t, path);
    t += 3_000;
  }

  requests.sort((a, b) => a.timeMs - b.timeMs);
  return { clients, requests };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** One request as a combined-format access-log line, answered as the site answers it. */
export function logLine(r: Request): string {
  const d = new Date(r.timeMs);
  const p = (n: number) => String(n).padStart(2, '0');
  const time = `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
  const status = statusOf(r.method, r.path, r.ok);
  return `${r.ip} - - [${time}] "${r.method} ${r.path} HTTP/1.1" ${status} ${status === 200 ? 5120 : 153} "-" "${r.ua}"`;
}

/**
 * The config file replay reads: the presets, imported from `from` (the package name in an app;
 * the built file's URL in a test that runs outside the workspace).
 */
export function presetConfigModule(from = '@jailkeeper/core'): string {
  return `import { presets } from '${from}';

export default {
  jails: {
    login: presets.login,
    scanners: presets.scanners,
    forbidden: presets.forbidden,
    badBots: presets.badBots,
  },
};
`;
}

/** The day as an access log. */
export function accessLog(traffic: Traffic = siteTraffic()): string {
  return `${traffic.requests.map(logLine).join('\n')}\n`;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [log = 'access.log', config = 'jailkeeper.config.mjs'] = process.argv.slice(2);
  await writeFile(log, accessLog());
  await writeFile(config, presetConfigModule());
  console.log(`wrote ${log} and ${config}`);
}
