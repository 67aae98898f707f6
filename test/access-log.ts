/**
 * A synthetic combined-format access log with known answers, for replay's test and benchmark:
 * clean clients (some with a typo at login, some opening /ws and getting 403), the admin failing
 * from an ignored address, and attackers failing at login in bursts.
 */

import { once } from 'node:events';
import { createWriteStream } from 'node:fs';

export const REPLAY_CONFIG = {
  jails: {
    login: {
      statuses: [401],
      paths: ['/login'],
      methods: ['POST'],
      maxRetry: 5,
      findTime: '10m',
      banTime: '1h',
    },
    forbidden: { statuses: [403], exempt: ['/ws'], maxRetry: 2, findTime: '10m', banTime: '1h' },
  },
  ignoreIp: ['127.0.0.1'],
};

export interface Expected {
  lines: number;
  /** Attacker address → the line number of its 5th failure, where the ban must fall. */
  banLines: Map<string, number>;
  wsLines: number;
  adminFailures: number;
  /** Attacker requests after their ban: replay must count them as refused. */
  refused: number;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function clf(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** Writes `total` lines over six hours; attackers = total / 5000. */
export async function writeAccessLog(file: string, total = 1_000_000): Promise<Expected> {
  const out = createWriteStream(file, { highWaterMark: 1 << 20 });
  const start = Date.UTC(2026, 10, 20, 6);
  const stepMs = (6 * 3600_000) / total;
  const attackers = Math.max(1, Math.floor(total / 5000));
  const burst = new Map<number, string>(); // line → attacker
  const banLines = new Map<string, number>();
  let refused = 0;
  for (let a = 0; a < attackers; a++) {
    const ip = `203.0.${113 + Math.floor(a / 250)}.${(a % 250) + 1}`;
    const first = 1000 + a * 4000;
    for (let k = 0; k < 20; k++) {
      burst.set(first + k * 7, ip);
      if (k === 4) banLines.set(ip, first + k * 7);
      if (k > 4) refused++;
    }
  }
  let wsLines = 0;
  let adminFailures = 0;
  const typos = new Map<number, number>();
  let buffer = '';
  for (let line = 1; line <= total; line++) {
    const time = clf(start + line * stepMs);
    const attacker = burst.get(line);
    let text: string;
    if (attacker !== undefined) {
      text = `${attacker} - - [${time}] "POST /login HTTP/1.1" 401 31 "-" "python-requests/2.31"`;
    } else if (line % 997 === 0) {
      adminFailures++;
      text = `127.0.0.1 - - [${time}] "POST /login HTTP/1.1" 401 31 "-" "curl/8.5"`;
    } else {
      const c = line % 5003;
      const ip = `10.${(c >> 8) & 255}.${c & 255}.${1 + (c % 7)}`;
      if (line % 50 === 0) {
        wsLines++;
        text = `${ip} - - [${time}] "GET /ws HTTP/1.1" 403 0 "https://example.com/" "Mozilla/5.0"`;
      } else if (line % 211 === 0 && (typos.get(c) ?? 0) < 2) {
        typos.set(c, (typos.get(c) ?? 0) + 1);
        text = `${ip} - - [${time}] "POST /login HTTP/1.1" 401 31 "https://example.com/login" "Mozilla/5.0"`;
      } else {
        text = `${ip} - - [${time}] "GET /products/${line % 300}?page=2 HTTP/1.1" 200 5120 "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64)"`;
      }
    }
    buffer += `${text}\n`;
    if (buffer.length > 1 << 20) {
      if (!out.write(buffer)) await once(out, 'drain');
      buffer = '';
    }
  }
  out.end(buffer);
  await once(out, 'finish');
  return { lines: total, banLines, wsLines, adminFailures, refused };
}
