/** One access-log line, as replay needs it. */
export interface LogEntry {
  ip: string;
  timeMs: number;
  method: string;
  path: string;
  /** The query string, without the `?`, when the request had one: a guess in it is a distinct 404. */
  query?: string;
  status: number;
  userAgent: string;
}

const MONTHS: Record<string, number> = {
  Jan: 0,
  Feb: 1,
  Mar: 2,
  Apr: 3,
  May: 4,
  Jun: 5,
  Jul: 6,
  Aug: 7,
  Sep: 8,
  Oct: 9,
  Nov: 10,
  Dec: 11,
};

/**
 * Month names as servers running under another locale write them (Apache's `%t` follows the
 * C library's locale on some builds): lower case, without accents and the abbreviation's dot,
 * first three or four letters. English, French, German, Spanish, Italian, Portuguese, Dutch and
 * the Scandinavian languages; none of them is another month in another of these languages.
 */
const LOCAL_MONTHS: Record<string, number> = {
  jan: 0,
  janv: 0,
  ene: 0,
  gen: 0,
  feb: 1,
  fev: 1,
  fevr: 1,
  febr: 1,
  mar: 2,
  mars: 2,
  marz: 2,
  maer: 2,
  mrt: 2,
  apr: 3,
  avr: 3,
  avri: 3,
  abr: 3,
  abri: 3,
  apri: 3,
  may: 4,
  mai: 4,
  mayo: 4,
  mag: 4,
  magg: 4,
  mei: 4,
  maj: 4,
  maio: 4,
  jun: 5,
  juin: 5,
  juni: 5,
  giu: 5,
  giug: 5,
  junh: 5,
  juno: 5,
  jul: 6,
  juil: 6,
  juli: 6,
  lug: 6,
  lugl: 6,
  julh: 6,
  aug: 7,
  aout: 7,
  ago: 7,
  agos: 7,
  augu: 7,
  sep: 8,
  sept: 8,
  set: 8,
  sett: 8,
  setm: 8,
  setb: 8,
  oct: 9,
  okt: 9,
  ott: 9,
  out: 9,
  octo: 9,
  okto: 9,
  otto: 9,
  outu: 9,
  nov: 10,
  nove: 10,
  novi: 10,
  dec: 11,
  dez: 11,
  dic: 11,
  deze: 11,
  dice: 11,
  dece: 11,
};

const LOCALIZED_TIME =
  /^(\d{1,2})\/([^/\d\s]{2,10})\/(\d{4}):(\d{2}):(\d{2}):(\d{2})(?: ([+-])(\d{2})(\d{2}))?\s*$/u;

/** The month of a localized name (`sept.`, `févr.`, `Mär`), or undefined. */
function localMonth(name: string): number | undefined {
  const plain = name
    .normalize('NFD')
    .replace(/[\u0300-\u036f.]/g, '')
    .toLowerCase();
  return LOCAL_MONTHS[plain] ?? LOCAL_MONTHS[plain.slice(0, 4)] ?? LOCAL_MONTHS[plain.slice(0, 3)];
}

/** The slow reading of a time the fast one refused: a month written in another language or length. */
function parseLocalizedClfTime(text: string): number {
  const m = LOCALIZED_TIME.exec(text);
  if (m === null) return Number.NaN;
  const month = localMonth(m[2] as string);
  if (month === undefined) return Number.NaN;
  const [day, year, hour, minute, second] = [m[1], m[3], m[4], m[5], m[6]].map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  if (m[7] === undefined) return new Date(year, month, day, hour, minute, second).getTime();
  const offset = (m[7] === '-' ? -1 : 1) * (Number(m[8]) * 60 + Number(m[9]));
  return Date.UTC(year, month, day, hour, minute, second) - offset * 60_000;
}

/**
 * Parses the combined (and common) log format's time, `10/Oct/2000:13:55:36 -0700`, by position:
 * a log has millions of lines and Date's parser does not take this form. A time without a zone
 * (`10/Oct/2000:13:55:36`, as some Apache formats write it) is read as this machine's local time:
 * see {@link clfTimeHasZone}. NaN when the text is not such a time.
 */
export function parseClfTime(text: string): number {
  if (
    text.length < 20 ||
    text.charCodeAt(2) !== 47 || // '/'
    text.charCodeAt(6) !== 47 ||
    text.charCodeAt(11) !== 58 || // ':'
    text.charCodeAt(14) !== 58 ||
    text.charCodeAt(17) !== 58
  )
    return parseLocalizedClfTime(text);
  const day = Number(text.slice(0, 2));
  const month = MONTHS[text.slice(3, 6)];
  const year = Number(text.slice(7, 11));
  const hour = Number(text.slice(12, 14));
  const minute = Number(text.slice(15, 17));
  const second = Number(text.slice(18, 20));
  if (month === undefined) return parseLocalizedClfTime(text);
  if (!clfTimeHasZone(text)) {
    if (text.slice(20).trim() !== '') return Number.NaN;
    return new Date(year, month, day, hour, minute, second).getTime();
  }
  const sign = text[21] === '-' ? -1 : 1;
  const offset = sign * (Number(text.slice(22, 24)) * 60 + Number(text.slice(24, 26)));
  return Date.UTC(year, month, day, hour, minute, second) - offset * 60_000;
}

/** Whether a combined-format time carries its zone (`+0100`); without one it is read as local time. */
export function clfTimeHasZone(text: string): boolean {
  return /:\d{2} [+-]\d{4}\s*$/.test(text);
}

/** Strips the query string: jails match paths, and a query is attacker-chosen noise. */
function pathOnly(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

/** The query string of a request target, when it has a non-empty one: `distinct` counts it on a 404. */
function queryOf(target: string): { query?: string } {
  const q = target.indexOf('?');
  return q === -1 || q === target.length - 1 ? {} : { query: target.slice(q + 1) };
}

/** The index of the quote closing the field opened at `open`: the next one not escaped by a backslash. */
function closingQuote(line: string, open: number): number {
  let q = line.indexOf('"', open + 1);
  while (q !== -1) {
    let backslashes = 0;
    while (line.charCodeAt(q - 1 - backslashes) === 92) backslashes++;
    if (backslashes % 2 === 0) return q;
    q = line.indexOf('"', q + 1);
  }
  return -1;
}

/**
 * An address as logs write it: digits and three dots (IPv4), or hex digits with two colons or more
 * (IPv6). Cheap, by character, to tell a virtual host name apart on every line.
 */
function looksLikeAddress(token: string): boolean {
  let dots = 0;
  let colons = 0;
  let hexLetters = 0;
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if (c === 46) dots++;
    else if (c === 58) colons++;
    else if ((c >= 97 && c <= 102) || (c >= 65 && c <= 70)) hexLetters++;
    else if (!((c >= 48 && c <= 57) || c === 37 || c === 91 || c === 93)) return false; // digits, % [ ]
  }
  return colons >= 2 || (dots === 3 && colons === 0 && hexLetters === 0);
}

/** A combined-format line, and what the parser noticed about it. */
export interface CombinedEntry extends LogEntry {
  /** The time had no zone: it was read as local time. */
  readonly localTime: boolean;
}

/**
 * A parser of combined-format lines (and common, and vhost_combined: `www.example.com 192.0.2.1
 * - - [...]`), that keeps the last time it parsed: consecutive lines mostly share their second,
 * so most lines skip the date arithmetic. The user agent is the second quoted field after the
 * status (fields may follow it). A client field that is not an address is returned as written:
 * the caller reports the line as not attributable.
 */
export function createCombinedParser(): (line: string) => CombinedEntry | undefined {
  let lastTimeText = '';
  let lastTimeMs = Number.NaN;
  let lastLocal = false;
  return (line) => {
    let sp = line.indexOf(' ');
    if (sp <= 0) return undefined;
    let ip = line.slice(0, sp);
    if (!looksLikeAddress(ip)) {
      // vhost_combined: the virtual host first, then the client.
      const next = line.indexOf(' ', sp + 1);
      const second = next === -1 ? '' : line.slice(sp + 1, next);
      if (looksLikeAddress(second)) {
        ip = second;
        sp = next;
      }
    }
    const open = line.indexOf('[', sp);
    const close = open === -1 ? -1 : line.indexOf(']', open);
    if (close === -1) return undefined;
    const timeText = line.slice(open + 1, close);
    if (timeText !== lastTimeText) {
      lastTimeText = timeText;
      lastTimeMs = parseClfTime(timeText);
      lastLocal = !clfTimeHasZone(timeText);
    }
    if (Number.isNaN(lastTimeMs)) return undefined;
    const q1 = line.indexOf('"', close);
    const q2 = q1 === -1 ? -1 : closingQuote(line, q1);
    if (q2 === -1) return undefined;
    const request = line.slice(q1 + 1, q2);
    const m = request.indexOf(' ');
    const m2 = m === -1 ? -1 : request.indexOf(' ', m + 1);
    const method = m === -1 ? request : request.slice(0, m);
    const target = m === -1 ? '/' : m2 === -1 ? request.slice(m + 1) : request.slice(m + 1, m2);
    const status = Number(line.slice(q2 + 2, q2 + 5));
    if (!(status >= 100 && status <= 599)) return undefined;
    // The user agent is the field after the referer: the second quoted field after the status.
    let userAgent = '';
    const r1 = line.indexOf('"', q2 + 5);
    const r2 = r1 === -1 ? -1 : closingQuote(line, r1);
    const u1 = r2 === -1 ? -1 : line.indexOf('"', r2 + 1);
    const u2 = u1 === -1 ? -1 : closingQuote(line, u1);
    if (u2 !== -1) userAgent = line.slice(u1 + 1, u2);
    return {
      ip,
      timeMs: lastTimeMs,
      method,
      path: pathOnly(target),
      ...queryOf(target),
      status,
      userAgent,
      localTime: lastLocal,
    };
  };
}

function pick(obj: Record<string, unknown>, names: string[]): unknown {
  for (const name of names) {
    const value = obj[name];
    if (value !== undefined && value !== null) return value;
  }
  return undefined;
}

function timeOf(value: unknown): number {
  if (typeof value === 'number') return value < 1e11 ? value * 1000 : value; // seconds or ms
  if (typeof value === 'string') {
    const asNumber = Number(value);
    if (value.trim() !== '' && Number.isFinite(asNumber)) return timeOf(asNumber);
    const clf = parseClfTime(value);
    return Number.isNaN(clf) ? Date.parse(value) : clf;
  }
  return Number.NaN;
}

/**
 * Parses a JSON access-log line: flat (nginx `log_format escape=json`, Caddy-like) or pino-http's
 * `{ req: { method, url, remoteAddress, headers }, res: { statusCode }, time }`.
 */
export function parseJsonLine(line: string): LogEntry | undefined {
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof data !== 'object' || data === null) return undefined;
  const req = (typeof data.req === 'object' && data.req !== null ? data.req : (data.request ?? {})) as Record<
    string,
    unknown
  >;
  const res = (typeof data.res === 'object' && data.res !== null ? data.res : {}) as Record<string, unknown>;
  const headers = (typeof req.headers === 'object' && req.headers !== null ? req.headers : {}) as Record<
    string,
    unknown
  >;
  const ip =
    pick(data, ['remote_addr', 'remoteAddress', 'client_ip', 'clientIp', 'ip', 'remote_ip']) ??
    pick(req, ['remoteAddress', 'remote_ip', 'ip']);
  const method = pick(data, ['method', 'request_method']) ?? pick(req, ['method']);
  let target = pick(data, ['path', 'uri', 'url', 'request_uri']) ?? pick(req, ['url', 'uri', 'path']);
  if (target === undefined && typeof data.request === 'string') target = data.request.split(' ')[1];
  const status = Number(
    pick(data, ['status', 'statusCode', 'status_code']) ?? pick(res, ['statusCode', 'status']),
  );
  const time = timeOf(pick(data, ['time', 'timestamp', '@timestamp', 'time_local', 'ts', 'msec']));
  const userAgent = pick(data, ['http_user_agent', 'user_agent', 'userAgent']) ?? headers['user-agent'] ?? '';
  if (
    typeof ip !== 'string' ||
    typeof target !== 'string' ||
    !(status >= 100 && status <= 599) ||
    Number.isNaN(time)
  ) {
    return undefined;
  }
  return {
    ip,
    timeMs: time,
    method: typeof method === 'string' ? method : 'GET',
    path: pathOnly(target),
    ...queryOf(target),
    status,
    userAgent: typeof userAgent === 'string' ? userAgent : '',
  };
}
