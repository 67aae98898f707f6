/** One access-log line, as replay needs it. */
export interface LogEntry {
  ip: string;
  timeMs: number;
  method: string;
  path: string;
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
 * Parses the combined (and common) log format's time, `10/Oct/2000:13:55:36 -0700`, by position:
 * a log has millions of lines and Date's parser does not take this form.
 */
export function parseClfTime(text: string): number {
  if (text.length < 26) return Number.NaN;
  const day = Number(text.slice(0, 2));
  const month = MONTHS[text.slice(3, 6)];
  const year = Number(text.slice(7, 11));
  const hour = Number(text.slice(12, 14));
  const minute = Number(text.slice(15, 17));
  const second = Number(text.slice(18, 20));
  const sign = text[21] === '-' ? -1 : 1;
  const offset = sign * (Number(text.slice(22, 24)) * 60 + Number(text.slice(24, 26)));
  if (month === undefined) return Number.NaN;
  return Date.UTC(year, month, day, hour, minute, second) - offset * 60_000;
}

/** Strips the query string: jails match paths, and a query is attacker-chosen noise. */
function pathOnly(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

/**
 * A parser of combined-format lines that keeps the last time it parsed: consecutive lines mostly
 * share their second, so most lines skip the date arithmetic.
 */
export function createCombinedParser(): (line: string) => LogEntry | undefined {
  let lastTimeText = '';
  let lastTimeMs = Number.NaN;
  return (line) => {
    const sp = line.indexOf(' ');
    if (sp <= 0) return undefined;
    const open = line.indexOf('[', sp);
    const close = open === -1 ? -1 : line.indexOf(']', open);
    if (close === -1) return undefined;
    const timeText = line.slice(open + 1, close);
    if (timeText !== lastTimeText) {
      lastTimeText = timeText;
      lastTimeMs = parseClfTime(timeText);
    }
    const q1 = line.indexOf('"', close);
    const q2 = q1 === -1 ? -1 : line.indexOf('"', q1 + 1);
    if (q2 === -1) return undefined;
    const request = line.slice(q1 + 1, q2);
    const m = request.indexOf(' ');
    const m2 = m === -1 ? -1 : request.indexOf(' ', m + 1);
    const method = m === -1 ? request : request.slice(0, m);
    const target = m === -1 ? '/' : m2 === -1 ? request.slice(m + 1) : request.slice(m + 1, m2);
    const status = Number(line.slice(q2 + 2, q2 + 5));
    if (!(status >= 100 && status <= 599) || Number.isNaN(lastTimeMs)) return undefined;
    // The user agent is the last quoted field of the combined format.
    let userAgent = '';
    if (line.charCodeAt(line.length - 1) === 34) {
      const uaStart = line.lastIndexOf('"', line.length - 2);
      if (uaStart > q2) userAgent = line.slice(uaStart + 1, line.length - 1);
    }
    return { ip: line.slice(0, sp), timeMs: lastTimeMs, method, path: pathOnly(target), status, userAgent };
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
    status,
    userAgent: typeof userAgent === 'string' ? userAgent : '',
  };
}
