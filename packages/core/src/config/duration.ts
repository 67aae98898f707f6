import { invalid } from '../errors.js';

/** A duration: milliseconds, or a fail2ban-style string such as `'10m'`, `'1d12h'`, `'1w'`, `'1mo'`. */
export type Duration = number | string;

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
// fail2ban's own values: a year is 365.25 days and a month a twelfth of it.
const YEAR = (365 * 3 + 366) * (DAY / 4);
const MONTH = YEAR / 12;

const UNITS: Record<string, number> = {
  ms: 1,
  s: SECOND,
  sec: SECOND,
  second: SECOND,
  seconds: SECOND,
  m: MINUTE,
  min: MINUTE,
  minute: MINUTE,
  minutes: MINUTE,
  h: HOUR,
  hour: HOUR,
  hours: HOUR,
  d: DAY,
  day: DAY,
  days: DAY,
  w: 7 * DAY,
  week: 7 * DAY,
  weeks: 7 * DAY,
  mo: MONTH,
  mon: MONTH,
  month: MONTH,
  months: MONTH,
  y: YEAR,
  year: YEAR,
  years: YEAR,
};

const PART = /(\d+(?:\.\d+)?)\s*([a-z]+)\s*/gy;

/**
 * Parses a duration into milliseconds. Strings are sequences of `<number><unit>` with units
 * ms, s, m, h, d, w, mo, y (and their long forms); a bare numeric string is seconds, as in fail2ban.
 * Returns `undefined` when the text does not parse.
 */
export function parseDuration(value: Duration): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const text = value.trim().toLowerCase();
  if (text === '') return undefined;
  if (/^\d+(?:\.\d+)?$/.test(text)) return Number(text) * SECOND;
  let total = 0;
  PART.lastIndex = 0;
  let consumed = 0;
  for (let match = PART.exec(text); match !== null; match = PART.exec(text)) {
    const unit = UNITS[match[2] as string];
    if (unit === undefined) return undefined;
    total += Number(match[1]) * unit;
    consumed = PART.lastIndex;
  }
  return consumed === text.length ? Math.round(total) : undefined;
}

/** Validates and converts a positive duration option; `path` names the option in the error. */
export function toDurationMs(path: string, value: unknown, { allowZero = false } = {}): number {
  const ms = typeof value === 'number' || typeof value === 'string' ? parseDuration(value) : undefined;
  if (ms === undefined || ms < 0 || (!allowZero && ms === 0) || !Number.isSafeInteger(Math.round(ms))) {
    invalid(
      path,
      `a ${allowZero ? 'non-negative' : 'positive'} duration (ms or a string such as "10m", "1d12h")`,
      value,
      'JK_ERR_INVALID_DURATION',
    );
  }
  return Math.round(ms);
}

/** A ban duration: a positive duration, or `-1` / `'permanent'` for a ban that never ends (Infinity). */
export function toBanTimeMs(path: string, value: unknown): number {
  if (value === -1 || value === 'permanent' || value === '-1') return Number.POSITIVE_INFINITY;
  const ms = typeof value === 'number' || typeof value === 'string' ? parseDuration(value) : undefined;
  if (ms === undefined || ms <= 0 || !Number.isSafeInteger(Math.round(ms))) {
    invalid(
      path,
      'a positive duration (ms or "10m"), or -1 / "permanent" for a ban that never ends',
      value,
      'JK_ERR_INVALID_DURATION',
    );
  }
  return Math.round(ms);
}

/** Formats milliseconds the fail2ban way, for messages and tables: `1d2h`, `45s`, `permanent`. */
export function formatDuration(ms: number): string {
  if (ms === Number.POSITIVE_INFINITY) return 'permanent';
  if (ms < SECOND) return `${Math.max(0, Math.round(ms))}ms`;
  let rest = Math.round(ms / SECOND) * SECOND;
  let out = '';
  for (const [unit, size] of [
    ['w', 7 * DAY],
    ['d', DAY],
    ['h', HOUR],
    ['m', MINUTE],
    ['s', SECOND],
  ] as const) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out;
}
